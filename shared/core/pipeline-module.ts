/**
 * A pipeline module, the one type every runner loads (`sluice run`, the worker threads, the
 * Lambda functions), and the one way its graph is built on a context: explicit settings (flags,
 * the Lambda environment) win over the module's own `options`, which win over the defaults.
 *
 * @module
 */
import { ConfigError } from '../errors.ts';
import { StreamingContext } from './context.ts';

/** What a pipeline module may export. */
export interface PipelineModule {
  /** Builds the graph on the context. Required. */
  default: (ctx: StreamingContext) => void | Promise<void>;
  /** The seq-th demo record, for `--source generator`. */
  generate?: (seq: number) => unknown;
  /** Defaults for the CLI and the Lambda functions (flags and the construct's props override them). */
  options?: {
    batchIntervalMs?: number;
    partitions?: number;
    onRecordError?: 'deadLetter' | 'fail';
    /** How text sources and SQS message bodies are decoded: json or lines (docs/DEPLOY.md, "Wire format"). */
    format?: 'json' | 'lines';
  };
}

/** The defaults when neither a setting nor the module's options say. */
export const PIPELINE_DEFAULTS = { batchIntervalMs: 1000, partitions: 2 } as const;

/** Settings given explicitly (flags, environment); each wins over the module's options. */
export interface PipelineSettings {
  readonly batchIntervalMs?: number;
  readonly partitions?: number;
  readonly printer?: (text: string) => void;
}

/** A new context for `module` with its settings resolved (explicit, the module's options, defaults). */
export function contextFor(module: PipelineModule, settings: PipelineSettings): StreamingContext {
  const partitions = settings.partitions ?? module.options?.partitions ?? PIPELINE_DEFAULTS.partitions;
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new ConfigError('partitions', `must be a whole number of at least 1, got ${String(partitions)}`);
  }
  return new StreamingContext({
    batchIntervalMs:
      settings.batchIntervalMs ?? module.options?.batchIntervalMs ?? PIPELINE_DEFAULTS.batchIntervalMs,
    partitions,
    printer: settings.printer,
    onRecordError: module.options?.onRecordError,
  });
}

/** Builds the module's graph on a new context and freezes it. */
export async function buildPipeline(
  module: PipelineModule,
  settings: PipelineSettings,
): Promise<StreamingContext> {
  const ctx = contextFor(module, settings);
  await module.default(ctx);
  ctx.graph.freeze();
  return ctx;
}
