/**
 * `sluice/engine`: everything `sluice` exports (the API and the testing helpers), plus the engine's
 * lower layers for those who build their own runner: key hashing and ordering, the store catalog
 * and key layout, the request-counting store, the planner and the task executor, the task runner
 * and its adaptive limiter, the lease, fault injection and the faulty port decorators, the block
 * codec, and the pipeline module loader. No AWS import anywhere below this folder.
 *
 * @module
 */

export { AdaptiveLimiter, type ConcurrencyRange } from './core/adaptive-limiter.ts';
export { type CatalogSnapshot, catalog } from './core/catalog.ts';
export { decodeBlock, encodeBlock } from './core/codec.ts';
export { CountingObjectStore, type RequestCounts } from './core/counting-store.ts';
export { isTransientFailure } from './core/driver/batch-retry.ts';
export { ThrottlingInvoker } from './core/driver/faulty-invoker.ts';
export { FaultyObjectStore, StoreTimeoutError } from './core/driver/faulty-store.ts';
export { TINY_BATCH_DEFAULTS, type TinyBatchOptions } from './core/driver/tiny-batch.ts';
export { graphReachMs, QuietTracker } from './core/empty-batch.ts';
export { runTask } from './core/executor.ts';
export { DriverCrashError, type FaultCounts, FaultInjector } from './core/faults.ts';
export { idleManifestOf } from './core/idle-path.ts';
export {
  IDLE_CHUNK,
  type IdleSpanRecord,
  idleBatchTimes,
  idleLayout,
  listIdleSpans,
  mergeSpans,
  readIdleSpan,
  type Span,
} from './core/idle-span.ts';
export { canonicalKey, compareKeys, KeyMap, stableHash } from './core/keys.ts';
export {
  layout,
  type OutputKey,
  outputDirsOf,
  outputKey,
  parseOutputKey,
  timeKey,
} from './core/layout.ts';
export { DriverLease } from './core/lease.ts';
export { BatchPlan, type Stage, type Target } from './core/planner.ts';
export { type StageOutcome, TaskRunner, type TaskRunnerOptions } from './core/task-runner.ts';
export * from './index.ts';
export {
  ensureTypeScriptLoader,
  importPipelineModule,
  type LoadedPipeline,
  loadPipeline,
  PipelineLoadError,
  type PipelineModule,
} from './local/load-pipeline.ts';
