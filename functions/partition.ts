/**
 * The partition function: runs task specs (one, or a pack) against S3. Stateless: the pipeline
 * module is bundled in, every input comes from S3 and every output goes there, committed by a
 * conditional write, so Lambda may run a task twice without harm.
 *
 * @module
 */
import { handlePartitionPayload, S3ObjectStore } from '../aws/index.ts';
import { type ObjectStore, type Pipeline, runTask, type TaskSpec } from '../shared/engine.ts';
import { type SluiceEnv, sluiceEnv } from './lib/env.ts';
import { buildContext, bundledPipeline, type PipelineModuleLike, pipelineCache } from './lib/pipeline.ts';
import { log } from './lib/telemetry.ts';

export interface PartitionDeps {
  readonly module: PipelineModuleLike;
  readonly env: SluiceEnv;
  readonly store?: ObjectStore;
}

export function createPartitionHandler(deps: PartitionDeps) {
  const store = deps.store ?? new S3ObjectStore({ bucket: deps.env.bucket, prefix: deps.env.prefix });
  let pipelines: Promise<(zero: number) => Pipeline> | undefined;
  const pipelineFor = async (zero: number) => {
    pipelines ??= buildContext(deps.module, deps.env).then(pipelineCache);
    return (await pipelines)(zero);
  };
  return async (event: unknown) =>
    handlePartitionPayload(event, async (spec: TaskSpec) => {
      const result = await runTask(spec, await pipelineFor(spec.graph.zeroTimeMs), store, {
        // an injected kill: the function's process dies mid-invocation (Lambda reports Runtime.ExitError)
        die: () => process.exit(70),
      });
      log({
        event: 'task',
        batchTimeMs: spec.batchTimeMs,
        stage: spec.stageId,
        partition: spec.partition,
        attempt: spec.attempt,
        committed: result.committed,
        records: result.lineage.records,
        durationMs: result.lineage.durationMs,
      });
      return result;
    });
}

export function partitionDepsFromEnv(env: NodeJS.ProcessEnv = process.env): PartitionDeps {
  return { module: bundledPipeline, env: sluiceEnv(env) };
}

let handlerInstance: ((event: unknown) => Promise<unknown>) | undefined;

export const handler = (event: unknown) => {
  handlerInstance ??= createPartitionHandler(partitionDepsFromEnv());
  return handlerInstance(event);
};
