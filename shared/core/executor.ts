import { GraphMismatchError, SluiceError, TaskFailedError } from '../errors.ts';

export { GraphMismatchError };

import type { ObjectStore } from '../ports/object-store.ts';
import {
  blockChecksum,
  checksum,
  decodeJson,
  encodeBlock,
  encodeJson,
  encodeJsonLines,
  encodeTextLines,
} from './codec.ts';
import type { Pipeline } from './context.ts';
import { layout } from './layout.ts';
import { parquetPart } from './parquet.ts';
import { encodeSkippingBad, unstorable } from './poison.ts';
import type { RDD, ShuffleDependency } from './rdd.ts';
import { bucketize } from './shuffle.ts';
import type { LineageRecord, TaskResult, TaskSpec } from './task.ts';
import { TaskContext } from './task-context.ts';

/**
 * Runs one task: regenerates the batch's RDDs from the pipeline, computes the partition, writes
 * it under its deterministic key, then commits by writing the lineage record with put-if-absent.
 * The same spec always writes the same bytes, so a retried or duplicated task is harmless; only
 * the first finisher's lineage is kept.
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

  let writes = 2;
  if (tc.deadLetters.length > 0) {
    writes++;
    const key = layout.deadLetter(spec.batchTimeMs, `stage${spec.stageId}-part${spec.partition}`);
    await store.put(
      key,
      encodeJsonLines(tc.deadLetters.map((d) => ({ batchTimeMs: spec.batchTimeMs, ...d }))),
    );
  }
  // an empty Parquet partition without a schema has no file (readers refuse one without columns)
  if (!(out.kind === 'file' && out.format === 'parquet' && body.length === 0)) await store.put(out.key, body);
  else writes--;
  if (spec.inject?.slowFactor && spec.inject.slowFactor > 1) {
    const worked = Math.max(1, Date.now() - started);
    await new Promise((r) => setTimeout(r, worked * (spec.inject!.slowFactor! - 1)));
  }
  if (spec.inject?.exit) (hooks.die ?? dieInProcess)(spec);
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
    committedAtMs: Date.now(),
  };
  const committed = await store.putIfAbsent(spec.commitKey, encodeJson(lineage));
  let winner = lineage;
  if (!committed) {
    const existing = await store.get(spec.commitKey);
    if (existing) winner = decodeJson<LineageRecord>(existing);
  }
  return {
    lineage: winner,
    committed,
    ...(!committed && winner.checksum !== lineage.checksum ? { nondeterministic: true } : {}),
    metrics: {
      readRequests: tc.io.readRequests + (committed ? 0 : 1),
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
