import { MissingDataError, RecordError } from '../errors.ts';
import type { ObjectStore } from '../ports/object-store.ts';
import type { DeadLetter } from '../ports/source.ts';
import { CorruptBlockError, decodeBlock, decodeSealed } from './codec.ts';
import { inSpans } from './idle-span.ts';
import { layout } from './layout.ts';
import { describeValue } from './poison.ts';
import type { RDD, ShuffleDependency, Sink, StoredRDD } from './rdd.ts';
import { bucketize } from './shuffle.ts';
import type { InputRef, ParentRef } from './task.ts';

type ShuffleRead = Extract<InputRef, { kind: 'shuffle' }>;

export interface IoCounters {
  readRequests: number;
  writeRequests: number;
  bytesRead: number;
  bytesWritten: number;
  recordsIn: number;
}

/**
 * What a running task sees: the store, the batch, what it may read instead of recomputing, and
 * counters. The same class serves worker tasks (shuffle inputs given by the driver) and the
 * driver's local evaluation of `collect()` (shuffles done in memory).
 */
export class TaskContext {
  readonly store: ObjectStore;
  readonly batchTimeMs: number;
  readonly io: IoCounters = {
    readRequests: 0,
    writeRequests: 0,
    bytesRead: 0,
    bytesWritten: 0,
    recordsIn: 0,
  };
  readonly parents: ParentRef[] = [];
  /** Records that made user code throw (with `onRecordError: 'deadLetter'`). */
  readonly deadLetters: DeadLetter[] = [];
  private readonly failOnRecordError: boolean;
  /** The batch is being skipped (`sluice run --skip-batch`): its own input blocks read as empty. */
  private readonly skipInput: boolean;
  private readonly materialized: Map<string, string>;
  /** Idle spans (issue 11): a stored RDD or input block of a batch inside one reads as empty. */
  private readonly idleSpans: readonly (readonly [number, number])[] | undefined;
  private readonly shuffles: Map<string, ShuffleRead[]> | undefined;
  private readonly localShuffles = new Map<string, Promise<(readonly [unknown, unknown])[][]>>();
  /** issue 14: input partitions written during the interval, as lists of blocks (by logical key). */
  private readonly blockLists: Map<string, readonly string[]>;

  constructor(options: {
    store: ObjectStore;
    batchTimeMs: number;
    /** rdd id -> stored name, for RDDs materialized earlier in this batch. */
    materialized?: Map<string, string>;
    /** Shuffle inputs by shuffle id; when absent, shuffles are computed in memory (driver-side collect). */
    inputs?: readonly InputRef[];
    onRecordError?: 'deadLetter' | 'fail';
    skipInput?: boolean;
    idleSpans?: readonly (readonly [number, number])[];
    /** Input partitions that are lists of blocks (driver-side collect; tasks get them in `inputs`). */
    blockLists?: ReadonlyMap<string, readonly string[]>;
  }) {
    this.blockLists = new Map(options.blockLists ?? []);
    this.store = options.store;
    this.idleSpans = options.idleSpans;
    this.skipInput = options.skipInput === true;
    this.failOnRecordError = options.onRecordError === 'fail';
    this.batchTimeMs = options.batchTimeMs;
    this.materialized = options.materialized ?? new Map();
    if (options.inputs) {
      this.shuffles = new Map();
      for (const input of options.inputs) {
        if (input.kind === 'materialized') this.materialized.set(input.rddId, input.name);
        else if (input.kind === 'block' && input.blocks) this.blockLists.set(input.key, input.blocks);
        else if (input.kind === 'shuffle') {
          let list = this.shuffles.get(input.shuffleId);
          if (!list) this.shuffles.set(input.shuffleId, (list = []));
          list.push(input);
        }
      }
    }
  }

  /** Pushes partition `p` of `rdd` into `sink`: read if materialized in this batch, else computed. */
  iterate<T>(rdd: RDD<T>, p: number, sink: Sink<T>): Promise<void> {
    const name = this.materialized.get(rdd.id);
    if (name !== undefined) {
      return this.readBlock(layout.rddPartition(this.batchTimeMs, name, p), sink, {
        rddId: name,
        batchTimeMs: this.batchTimeMs,
        partition: p,
      });
    }
    return rdd.iterate(p, this, sink);
  }

  /**
   * Wraps the record function of an operator: a record that makes user code throw is set aside
   * with the error (the batch goes on without it) unless the pipeline asked to fail instead.
   */
  guard<T>(rdd: RDD<unknown>, sink: Sink<T>): Sink<T> {
    return (x) => {
      try {
        sink(x);
      } catch (err) {
        // only user code runs inside a record sink: the operator's function and those after it
        // (operators after it that fold or keep state catch their own errors)
        if (err instanceof RecordError) throw err;
        this.recordError(rdd.operator, err, x, undefined, `${rdd.id}/${this.batchTimeMs}`);
      }
    };
  }

  /**
   * A record made `operator` throw (`err` is an Error or the reason as text) or cannot be stored:
   * with `onRecordError: 'deadLetter'` (the default) it is set aside with its key and the reason
   * and the task goes on without it; with 'fail' the task fails with a RecordError (not retried).
   */
  recordError(operator: string, err: unknown, record: unknown, key?: unknown, origin?: string): void {
    const reason =
      typeof err === 'string'
        ? err
        : `${operator} threw: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`;
    const keyText = key === undefined ? undefined : describeValue(key, 200);
    if (this.failOnRecordError) {
      const what = `${keyText === undefined ? 'record' : `key ${keyText}, record`} ${describeValue(record, 200)}`;
      throw new RecordError(operator, what, reason, err);
    }
    this.deadLetters.push({
      raw: describeValue(record),
      reason,
      operator,
      ...(keyText === undefined ? {} : { key: keyText }),
      origin: origin ?? `${operator}/${this.batchTimeMs}`,
    });
  }

  async readStored<T>(rdd: StoredRDD<T>, p: number, sink: Sink<T>): Promise<void> {
    if (this.skipInput && rdd.storedTimeMs === this.batchTimeMs && rdd.storedName.startsWith('input:'))
      return;
    if (!rdd.format && inSpans(this.idleSpans, rdd.storedTimeMs)) {
      // idle fast path (issue 11): the batch was committed idle, it stored nothing: empty, no request
      const key = rdd.keyOfPartition(p);
      this.parents.push({
        rddId: rdd.storedName,
        batchTimeMs: rdd.storedTimeMs,
        partition: p,
        key,
        idle: true,
      });
      return;
    }
    if (rdd.format) {
      const key = rdd.keyOfPartition(p);
      this.parents.push({ rddId: rdd.storedName, batchTimeMs: rdd.storedTimeMs, partition: p, key });
      const bytes = await this.store.get(key);
      this.io.readRequests++;
      if (!bytes) throw new MissingDataError(key, 'is missing (a stored dataset: put it in the store first)');
      this.io.bytesRead += bytes.length;
      const lines = Buffer.from(bytes)
        .toString('utf8')
        .split('\n')
        .filter((l) => l.length > 0);
      const from = Math.floor((p * lines.length) / rdd.numPartitions);
      const to = Math.floor(((p + 1) * lines.length) / rdd.numPartitions);
      for (let i = from; i < to; i++) {
        const line = lines[i]!;
        sink((rdd.format === 'jsonl' ? JSON.parse(line) : line) as T);
      }
      return;
    }
    const ref = { rddId: rdd.storedName, batchTimeMs: rdd.storedTimeMs, partition: p };
    const blocks = this.blockLists.get(rdd.keyOfPartition(p));
    if (blocks) {
      // issue 14: blocks written during the interval, in the order they were cut (none: the
      // partition received nothing; its logical key stays the lineage's input leaf)
      if (blocks.length === 0) this.parents.push({ ...ref, key: rdd.keyOfPartition(p) });
      for (const key of blocks) await this.readBlock(key, sink, ref);
      return;
    }
    return this.readBlock(rdd.keyOfPartition(p), sink, ref);
  }

  async readShuffle(
    dep: ShuffleDependency,
    p: number,
    sink: Sink<readonly [unknown, unknown]>,
  ): Promise<void> {
    if (!this.shuffles) {
      const buckets = await this.localShuffle(dep);
      for (const kv of buckets[p] ?? []) sink(kv);
      return;
    }
    const reads = this.shuffles.get(dep.id);
    if (!reads) throw new Error(`task has no inputs for shuffle ${dep.id}`);
    for (const read of reads) {
      this.parents.push({
        rddId: `shuffle:${dep.id}`,
        batchTimeMs: this.batchTimeMs,
        partition: read.map,
        key: read.key,
      });
      if (read.end <= read.start) continue;
      const bytes = await this.store.get(read.key, { start: read.start, end: read.end });
      this.io.readRequests++;
      if (!bytes) throw new MissingDataError(read.key, 'is missing (shuffle output)');
      this.io.bytesRead += bytes.length;
      const records = this.decode<readonly [unknown, unknown]>(read.key, bytes, true);
      for (let i = 0; i < records.length; i++) sink(records[i]!);
    }
  }

  private async readBlock<T>(key: string, sink: Sink<T>, ref: Omit<ParentRef, 'key'>): Promise<void> {
    this.parents.push({ ...ref, key });
    const bytes = await this.store.get(key);
    this.io.readRequests++;
    if (!bytes) throw new MissingDataError(key, 'is missing');
    this.io.bytesRead += bytes.length;
    const records = this.decode<T>(key, bytes);
    this.io.recordsIn += records.length;
    for (let i = 0; i < records.length; i++) sink(records[i]!);
  }

  private decode<T>(key: string, bytes: Uint8Array, range = false): T[] {
    try {
      return range ? decodeSealed<T>(bytes) : decodeBlock<T>(bytes);
    } catch (err) {
      if (err instanceof CorruptBlockError) throw new MissingDataError(key, `is corrupt (${err.message})`);
      throw err;
    }
  }

  /** Driver-side shuffle: every map partition computed here, bucketed in memory (once per shuffle). */
  private localShuffle(dep: ShuffleDependency): Promise<(readonly [unknown, unknown])[][]> {
    let result = this.localShuffles.get(dep.id);
    if (!result) {
      result = (async () => {
        const all: (readonly [unknown, unknown])[][] = Array.from(
          { length: dep.partitioner.numPartitions },
          () => [],
        );
        for (let m = 0; m < dep.rdd.numPartitions; m++) {
          const buckets = await bucketize(dep, (sink) => this.iterate(dep.rdd, m, sink), this);
          for (let i = 0; i < buckets.length; i++) for (const kv of buckets[i]!) all[i]!.push(kv);
        }
        return all;
      })();
      this.localShuffles.set(dep.id, result);
    }
    return result;
  }
}
