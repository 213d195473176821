import { GraphError } from '../errors.ts';
import type { ObjectStore } from '../ports/object-store.ts';
import type { DStream } from './dstream.ts';
import { layout } from './layout.ts';
import { type Partitioner, type RDD, type RDDScope, StoredRDD } from './rdd.ts';
import { TaskContext } from './task-context.ts';

/** How many partitions a DStream's RDD has at some time, and how it is partitioned. */
export interface Shape {
  readonly numPartitions: number;
  readonly partitioner?: Partitioner;
}

/** What the graph needs from its owner to generate batches. */
export interface GraphTimes {
  readonly zeroTimeMs: number;
  readonly batchIntervalMs: number;
  readonly defaultPartitions: number;
  /** Shapes of past RDDs, computed once per (stream, time). */
  readonly shapeCache: Map<string, Shape>;
}

/**
 * The RDDs of one batch: every DStream that must produce at `batchTimeMs` is asked for its RDD,
 * once. RDDs of earlier batches are never recomputed here: they are read back from the store
 * (`StoredRDD`), which is what makes state and windows cheap and recovery local.
 *
 * Generation is a pure function of (pipeline module, batch time): the driver and every worker
 * get the same RDDs with the same ids.
 */
export class BatchGeneration implements RDDScope {
  readonly batchTimeMs: number;
  readonly times: GraphTimes;
  readonly rdds = new Map<string, RDD<unknown>>();
  /** Set by the driver once stages ran: rdd id -> stored name of materialized RDDs. */
  materialized = new Map<string, string>();
  /** Set by the driver for `collect()` on the driver side. */
  store: ObjectStore | undefined;
  /** Set by the driver: idle spans (issue 11) whose stored RDDs and input blocks read as empty. */
  idleSpans: [number, number][] | undefined;
  /** Set by the driver: input partitions written as lists of blocks (issue 14, received-blocks.ts). */
  inputBlocks: ReadonlyMap<string, readonly string[]> | undefined;
  private readonly memo = new Map<string, RDD<unknown> | undefined>();
  private readonly counters = new Map<string, number>();
  private scope = 'drv';

  constructor(times: GraphTimes, batchTimeMs: number) {
    this.times = times;
    this.batchTimeMs = batchTimeMs;
  }

  get defaultPartitions(): number {
    return this.times.defaultPartitions;
  }

  nextRddId(): string {
    const n = this.counters.get(this.scope) ?? 0;
    this.counters.set(this.scope, n + 1);
    return `${this.scope}.${n}`;
  }

  register(rdd: RDD<any>): void {
    this.rdds.set(rdd.id, rdd);
  }

  isValidTime(stream: DStream<unknown>, t: number): boolean {
    const since = t - this.times.zeroTimeMs;
    return since > 0 && since % stream.slideMs === 0;
  }

  /** The RDD of `stream` at time `t` (`undefined` when the stream does not produce at `t`). */
  rddOf<T>(stream: DStream<T>, t: number): RDD<T> | undefined {
    if (!this.isValidTime(stream as DStream<unknown>, t)) return undefined;
    if (t > this.batchTimeMs) {
      throw new GraphError(`${stream.describe()} asked for time ${t}, after the batch being generated`);
    }
    const memoKey = `${stream.id}@${t}`;
    if (this.memo.has(memoKey)) return this.memo.get(memoKey) as RDD<T> | undefined;
    let rdd: RDD<T>;
    if (t === this.batchTimeMs || stream.isInput) {
      const outer = this.scope;
      this.scope = t === this.batchTimeMs ? stream.name : `${stream.name}@${t}`;
      try {
        rdd = stream.compute(t, this);
      } finally {
        this.scope = outer;
      }
    } else {
      rdd = this.stored(stream, t);
    }
    this.memo.set(memoKey, rdd as RDD<unknown>);
    return rdd;
  }

  /** Like `rddOf`, for a parent that must produce whenever its child does. */
  req<T>(stream: DStream<T>, t: number): RDD<T> {
    const rdd = this.rddOf(stream, t);
    if (!rdd) throw new GraphError(`${stream.describe()} has no RDD at time ${t}`);
    return rdd;
  }

  /** RDDs of `stream` at its valid times in [fromMs, toMs], as Spark's DStream.slice. */
  slice<T>(stream: DStream<T>, fromMs: number, toMs: number): RDD<T>[] {
    const zero = this.times.zeroTimeMs;
    const s = stream.slideMs;
    const align = (t: number) => zero + Math.floor((t - zero) / s) * s;
    const out: RDD<T>[] = [];
    const to = align(toMs);
    for (let t = (fromMs - zero) % s === 0 ? fromMs : align(fromMs) + s; t <= to; t += s) {
      const rdd = this.rddOf(stream, t);
      if (rdd) out.push(rdd);
    }
    return out;
  }

  /** A past RDD of a materialized stream, read back from the store. */
  private stored<T>(stream: DStream<T>, t: number): RDD<T> {
    const shape = this.shapeOf(stream as DStream<unknown>, t);
    const outer = this.scope;
    this.scope = `${stream.name}@${t}`;
    try {
      return new StoredRDD<T>(this, {
        operator: `stored(${stream.storageName})`,
        storedTimeMs: t,
        storedName: stream.storageName,
        numPartitions: shape.numPartitions,
        partitioner: shape.partitioner,
        keyOf: (p) => layout.rddPartition(t, stream.storageName, p),
      });
    } finally {
      this.scope = outer;
    }
  }

  shapeOf(stream: DStream<unknown>, t: number): Shape {
    if (stream.fixedShape) return stream.fixedShape;
    const key = `${stream.id}@${t}`;
    let shape = this.times.shapeCache.get(key);
    if (!shape) {
      const rdd = new BatchGeneration(this.times, t).req(stream, t);
      shape = { numPartitions: rdd.numPartitions, partitioner: rdd.partitioner };
      if (this.times.shapeCache.size > 50_000) this.times.shapeCache.clear();
      this.times.shapeCache.set(key, shape);
    }
    return shape;
  }

  /** Runs `fn` with RDD ids drawn from a named scope (driver-side code such as foreachRDD). */
  inScope<R>(scope: string, fn: () => R): R {
    const outer = this.scope;
    this.scope = scope;
    try {
      return fn();
    } finally {
      this.scope = outer;
    }
  }

  async collect<T>(rdd: RDD<T>): Promise<T[]> {
    if (!this.store) {
      throw new GraphError(
        'collect() can only be called on the driver, inside foreachRDD or after a batch ran',
      );
    }
    const tc = new TaskContext({
      store: this.store,
      batchTimeMs: this.batchTimeMs,
      materialized: new Map(this.materialized),
      idleSpans: this.idleSpans,
      blockLists: this.inputBlocks,
    });
    const out: T[] = [];
    for (let p = 0; p < rdd.numPartitions; p++) await tc.iterate(rdd, p, (x) => out.push(x));
    return out;
  }
}
