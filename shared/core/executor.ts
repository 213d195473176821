import { GraphMismatchError, SluiceError, TaskFailedError } from '../errors.ts';

export { GraphMismatchError };

import type { ObjectStore } from '../ports/object-store.ts';
import { blockChecksum, checksum, encodeBlock, encodeJsonLines, encodeTextLines } from './codec.ts';
import type { Pipeline } from './context.ts';
import { layout } from './layout.ts';
import { commitWithLineage } from './lineage-store.ts';
import { parquetPart } from './parquet.ts';
import { encodeSkippingBad, unstorable } from './poison.ts';
import type { RDD, ShuffleDependency } from './rdd.ts';
import { bucketize } from './shuffle.ts';
import type { LineageRecord, TaskResult, TaskSpec } from './task.ts';
import { TaskContext } from './task-context.ts';

/**
 * Runs one task: regenerates the batch's RDDs from the pipeline, computes the partition and
 * writes it under its deterministic key with its lineage record in the same object, put-if-absent
 * (the commit: `lineage-store.ts`). The same spec always writes the same data, so a retried or
 * duplicated task is harmless; only the first finisher's object (and lineage) is kept.
 */
export interface RunTaskHooks {
  /** How this worker dies when a fault asks it to (worker thread: exit; in-process: throw). */
  readonly die?: (spec: TaskSpec) => never;
}

export async function runTask(
  spec: TaskSpec,
  pipeline: Pipeline,
  store: ObjectStore,
  hooks: RunTaskHooks = {},
): Promise<TaskResult> {
  const started = Date.now();
  if (spec.graph.fingerprint !== pipeline.fingerprint) {
    throw new GraphMismatchError(spec.graph.fingerprint, pipeline.fingerprint);
  }
  if (spec.inject?.delayMs) await new Promise((r) => setTimeout(r, spec.inject!.delayMs));
  if (spec.inject?.fail) throw new TaskFailedError(`injected failure of task ${describeTask(spec)}`);

  const gen = pipeline.generate(spec.batchTimeMs);
  const tc = new TaskContext({
    store,
    batchTimeMs: spec.batchTimeMs,
    inputs: spec.inputs,
    onRecordError: pipeline.ctx.onRecordError,
    skipInput: spec.skipInput === true,
    idleSpans: spec.idleSpans,
  });
  let body: Uint8Array;
  let records = 0;
  let index: [number, number][] | undefined;
  const out = spec.output;

  if (out.kind === 'shuffle') {
    const dep = findShuffle(gen.rdds, out.shuffleId);
    const buckets = await bucketize(dep, (sink) => tc.iterate(dep.rdd, spec.partition, sink), tc);
    const op = dep.operator ?? 'shuffle';
    const parts = buckets.map((b) => {
      if (b.length === 0) return EMPTY;
      const { encoded, kept } = encodeSkippingBad(b, encodeBlock, (kv, why) =>
        unstorableRecord(tc, op, kv, why, false),
      );
      records += kept;
      return kept === 0 ? EMPTY : encoded;
    });
    index = [];
    let offset = 0;
    for (let i = 0; i < parts.length; i++) {
      const len = parts[i] === EMPTY ? 0 : parts[i]!.length;
      index.push([offset, offset + len]);
      offset += len;
    }
    body = Buffer.concat(parts.filter((p) => p !== EMPTY));
  } else {
    const rdd = gen.rdds.get(spec.rddId);
    if (!rdd)
      throw new SluiceError(`RDD ${spec.rddId} does not exist in batch ${spec.batchTimeMs}`, {
        retryable: false,
      });
    const data: unknown[] = [];
    await tc.iterate(rdd, spec.partition, (x) => data.push(x));
    const op = rdd.operator;
    const { encoded, kept } =
      out.kind === 'file' && out.format === 'parquet'
        ? parquetPart(data, out.schema, (x, why) => tc.recordError(op, `saveAsParquet: ${why}`, x))
        : encodeSkippingBad(
            data,
            out.kind === 'rdd' ? encodeBlock : out.format === 'jsonl' ? encodeJsonLines : encodeTextLines,
            (x, why) => unstorableRecord(tc, op, x, why, out.kind === 'file'),
            out.kind === 'file',
          );
    body = encoded;
    records = kept;
  }

  let writes = 0;
  if (tc.deadLetters.length > 0) {
    writes++;
    const key = layout.deadLetter(spec.batchTimeMs, `stage${spec.stageId}-part${spec.partition}`);
    await store.put(
      key,
      encodeJsonLines(tc.deadLetters.map((d) => ({ batchTimeMs: spec.batchTimeMs, ...d }))),
    );
  }
  if (spec.inject?.slowFactor && spec.inject.slowFactor > 1) {
    const worked = Math.max(1, Date.now() - started);
    await new Promise((r) => setTimeout(r, worked * (spec.inject!.slowFactor! - 1)));
  }
  const lineage: LineageRecord = {
    rddId: spec.name,
    batchTimeMs: spec.batchTimeMs,
    partition: spec.partition,
    operator: spec.operators[spec.operators.length - 1] ?? 'unknown',
    operators: spec.operators,
    stageId: spec.stageId,
    parents: tc.parents,
    records,
    bytes: body.length,
    checksum: out.kind === 'rdd' ? blockChecksum(body) : checksum(body),
    attempt: spec.attempt,
    durationMs: Date.now() - started,
    fingerprint: pipeline.fingerprint,
    key: out.key,
    ...(index ? { index } : {}),
    ...(out.kind === 'shuffle' && body.length === 0 ? { empty: true as const } : {}),
    committedAtMs: Date.now(),
  };
  // issue 11: one write per task. A stored RDD partition or shuffle map output carries its lineage
  // in a trailer and is written put-if-absent (the commit: the first finisher wins); a shuffle map
  // output whose every bucket is empty writes nothing (its index says so); a saved output part is
  // written as is (readers of outputs/ see data only) and its lineage goes into the manifest.
  let committed = true;
  let winner = lineage;
  let reads = 0;
  if (out.kind === 'file') {
    // an empty Parquet partition without a schema has no file (readers refuse one without columns)
    if (!(out.format === 'parquet' && body.length === 0)) {
      await store.put(out.key, body);
      writes++;
    }
  } else if (!lineage.empty) {
    const c = await commitWithLineage(store, out.kind, body, lineage);
    committed = c.committed;
    winner = c.winner;
    reads += c.reads;
    writes += c.writes;
  }
  if (spec.inject?.exit) (hooks.die ?? dieInProcess)(spec);
  return {
    lineage: winner,
    committed,
    ...(!committed && winner.checksum !== lineage.checksum ? { nondeterministic: true } : {}),
    metrics: {
      readRequests: tc.io.readRequests + reads,
      writeRequests: writes,
      bytesRead: tc.io.bytesRead,
      bytesWritten: body.length,
      recordsIn: tc.io.recordsIn,
      recordsOut: records,
      deadLettered: tc.deadLetters.length,
    },
  };
}

const EMPTY = new Uint8Array(0);

/** A record the codec cannot store: set aside, with its key when it is a [key, value] pair. */
function unstorableRecord(
  tc: TaskContext,
  operator: string,
  record: unknown,
  why: string,
  json: boolean,
): void {
  if (Array.isArray(record) && record.length === 2) {
    // name the place inside the value when the value is what cannot be stored
    const inValue = unstorable(record[1], json);
    tc.recordError(operator, `value cannot be stored: ${inValue ?? why}`, record[1], record[0]);
  } else tc.recordError(operator, `value cannot be stored: ${why}`, record);
}

function dieInProcess(spec: TaskSpec): never {
  throw new TaskFailedError(`injected: the worker running task ${describeTask(spec)} died before committing`);
}

function findShuffle(rdds: Map<string, RDD<unknown>>, shuffleId: string): ShuffleDependency {
  for (const rdd of rdds.values()) {
    for (const dep of rdd.deps) if (dep.kind === 'shuffle' && dep.id === shuffleId) return dep;
  }
  throw new SluiceError(`shuffle ${shuffleId} does not exist in this batch`, { retryable: false });
}

export function describeTask(spec: TaskSpec): string {
  // spec.attempt counts from 0 over every copy of the task; messages count from 1
  return `${spec.batchTimeMs}/stage ${spec.stageId}/partition ${spec.partition} (attempt ${spec.attempt + 1})`;
}
