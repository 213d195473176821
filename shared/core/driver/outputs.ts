/**
 * What a batch produces, as Spark's `DStreamGraph.generateJobs`: the targets of batch t (streams
 * it materializes for later batches, RDDs a `foreachRDD` reads, saved outputs), and the output
 * operations run on the driver after the tasks (`_SUCCESS` markers, `foreachRDD`, `print`).
 *
 * @module
 */
import { MissingDataError } from '../../errors.ts';
import type { ObjectStore } from '../../ports/object-store.ts';
import type { Pipeline, StreamingContext } from '../context.ts';
import type { DStream } from '../dstream.ts';
import type { BatchGeneration } from '../generation.ts';
import { layout } from '../layout.ts';
import type { BatchPlan, Target } from '../planner.ts';

/** The targets of a batch: what its stages must compute and store. */
export function targetsOf(
  ctx: StreamingContext,
  pipeline: Pipeline,
  gen: BatchGeneration,
  skipped: boolean,
): Target[] {
  const t = gen.batchTimeMs;
  const targets: Target[] = [];
  const outputsByStream = new Map<DStream<unknown>, string[]>();
  for (const op of ctx.graph.outputs) {
    const list = outputsByStream.get(op.stream) ?? [];
    list.push(op.kind);
    outputsByStream.set(op.stream, list);
  }
  for (const stream of pipeline.targetStreams()) {
    const rdd = gen.rddOf(stream, t);
    if (!rdd) continue;
    const kinds = outputsByStream.get(stream) ?? [];
    if (stream.persisted || kinds.includes('foreach')) {
      const reason = stream.persisted
        ? stream.kind.includes('State') || stream.kind === 'mapWithState'
          ? 'state'
          : 'window'
        : 'output';
      targets.push({ rdd, name: stream.storageName, kind: 'rdd', reason });
    }
  }
  for (const op of ctx.graph.outputs) {
    if (op.kind !== 'save') continue;
    const rdd = gen.rddOf(op.stream, t);
    if (!rdd) continue;
    const { prefix, suffix, format, schema } = op.save!;
    const ext = suffix ? `.${suffix}` : '';
    targets.push({
      rdd,
      name: prefix,
      kind: 'file',
      format,
      ext,
      reason: 'save',
      ...(schema ? { schema } : {}),
    });
  }
  // a skipped batch keeps only what later batches read (state, window data): no outputs
  if (skipped) return targets.filter((x) => x.reason === 'state' || x.reason === 'window');
  return targets;
}

/**
 * Runs batch t's output operations on the driver: `_SUCCESS` of saved outputs, then each
 * `foreachRDD` in the order the pipeline declared them. A materialized partition an output reads
 * that was lost is recomputed (`recover`) and the output runs again. An idle batch (issue 11)
 * has no plan: it saved nothing, only its `foreachRDD`s run (on an empty RDD).
 */
export async function runOutputs(
  ctx: StreamingContext,
  store: ObjectStore,
  t: number,
  gen: BatchGeneration,
  plan: BatchPlan | undefined,
  recover: (key: string) => Promise<boolean>,
): Promise<void> {
  for (const target of plan?.targets ?? []) {
    if (target.kind === 'file') await store.put(layout.outputSuccess(target.name, t), new Uint8Array(0));
  }
  let i = 0;
  for (const op of ctx.graph.outputs) {
    i++;
    if (op.kind !== 'foreach') continue;
    const rdd = gen.rddOf(op.stream, t);
    if (!rdd) continue;
    for (let tries = 0; ; tries++) {
      try {
        await gen.inScope(`out${i}`, () => op.fn!(rdd, t));
        break;
      } catch (err) {
        // a materialized partition the output reads was lost: recompute it, run the output again
        if (!(err instanceof MissingDataError) || tries >= 3 || !(await recover(err.key))) throw err;
      }
    }
  }
}
