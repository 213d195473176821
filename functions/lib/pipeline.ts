import * as pipelineModule from 'sluice-pipeline';
import { buildPipeline, type PipelineModule } from '../../shared/core/pipeline-module.ts';
import { Pipeline, type StreamingContext } from '../../shared/index.ts';
import type { SluiceEnv } from './env.ts';

/** The pipeline module type every runner loads (shared/core/pipeline-module.ts). */
export type PipelineModuleLike = PipelineModule;

/** The bundled pipeline module (esbuild alias `sluice-pipeline`). */
export const bundledPipeline: PipelineModule = pipelineModule as PipelineModule;

/**
 * Builds the pipeline's graph once per container, as every worker does: the construct's
 * `partitions` (SLUICE_PARTITIONS) if it set one, else the module's `options.partitions`, as
 * `sluice run` does.
 */
export function buildContext(module: PipelineModule, env: SluiceEnv): Promise<StreamingContext> {
  return buildPipeline(module, {
    batchIntervalMs: env.batchIntervalMs,
    partitions: env.partitions ?? module.options?.partitions ?? env.defaultPartitions,
    printer: (text) => process.stdout.write(text),
  });
}

/** Frozen pipelines by zero time (one per store, in practice one). */
export function pipelineCache(ctx: StreamingContext): (zeroTimeMs: number) => Pipeline {
  const cache = new Map<number, Pipeline>();
  return (zeroTimeMs) => {
    let p = cache.get(zeroTimeMs);
    if (!p) cache.set(zeroTimeMs, (p = new Pipeline(ctx, zeroTimeMs)));
    return p;
  };
}
