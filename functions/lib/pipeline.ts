import * as pipelineModule from 'sluice-pipeline';
import { Pipeline, StreamingContext } from '../../shared/index.ts';
import type { SluiceEnv } from './env.ts';

export interface PipelineModuleLike {
  default: (ctx: StreamingContext) => void | Promise<void>;
  options?: { onRecordError?: 'deadLetter' | 'fail' };
}

/** The bundled pipeline module (esbuild alias `sluice-pipeline`). */
export const bundledPipeline: PipelineModuleLike = pipelineModule as PipelineModuleLike;

/** Builds the pipeline's graph once per container, as every worker does. */
export async function buildContext(module: PipelineModuleLike, env: SluiceEnv): Promise<StreamingContext> {
  const ctx = new StreamingContext({
    batchIntervalMs: env.batchIntervalMs,
    partitions: env.partitions,
    printer: (text) => process.stdout.write(text),
    onRecordError: module.options?.onRecordError,
  });
  await module.default(ctx);
  ctx.graph.freeze();
  return ctx;
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
