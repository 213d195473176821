/**
 * Sluice: Discretized Streams (the model of Spark Streaming) for TypeScript.
 * The engine: no AWS import anywhere below this folder.
 *
 * @module
 */

export { type RunBatchOptions, type RunBatchResult, runBatch } from './batch.ts';
export { AdaptiveLimiter, type ConcurrencyRange } from './core/adaptive-limiter.ts';
export {
  BatchRetriesExhaustedError,
  type BatchRetryOptions,
  isTransientFailure,
} from './core/batch-retry.ts';
export { decodeBlock, encodeBlock } from './core/codec.ts';
export { Pipeline, StreamingContext, type StreamingContextOptions } from './core/context.ts';
export {
  type BatchManifest,
  BatchScheduler,
  type BatchSchedulerOptions,
  type GraphMeta,
} from './core/driver.ts';
export { DStream, MapWithStateDStream, type WindowOptions } from './core/dstream.ts';
export { graphReachMs, QuietTracker } from './core/empty-batch.ts';
export { runTask } from './core/executor.ts';
export { DriverCrashError, type FaultCounts, FaultInjector, type FaultOptions } from './core/faults.ts';
export { ThrottlingInvoker } from './core/faulty-invoker.ts';
export { FaultyObjectStore, StoreTimeoutError } from './core/faulty-store.ts';
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
export {
  layout,
  type OutputKey,
  outputDirsOf,
  outputKey,
  parseOutputKey,
  timeKey,
} from './core/layout.ts';
export { DriverLease, LeaseHeldError, type LeaseRecord } from './core/lease.ts';
export type { OutputFormat, ParquetSchema, ParquetType } from './core/parquet.ts';
export { BatchPlan, type Stage, type Target } from './core/planner.ts';
export {
  NotStoredError,
  queryState,
  readStoreOutputs,
  type StateQuery,
  storeOutputsSource,
} from './core/query.ts';
export { type Partitioner, RDD } from './core/rdd.ts';
export type { State } from './core/state.ts';
export type { GraphContext, InputRef, LineageRecord, TaskOutput, TaskResult, TaskSpec } from './core/task.ts';
export type { SpeculationOptions } from './core/task-runner.ts';
export * from './errors.ts';
export { DirectoryObjectStore } from './local/directory-store.ts';
export { type EmbeddedRunOptions, runEmbedded } from './local/embedded-runner.ts';
export { InProcessInvoker } from './local/in-process-invoker.ts';
export { MemoryObjectStore } from './local/memory-store.ts';
export { ReadOnlyObjectStore, ReadOnlyStoreError, ReplayOverlayStore } from './local/overlay-store.ts';
export { FileSource, GeneratorSource, HttpSource, StdinSource } from './local/sources.ts';
export { WorkerPoolInvoker } from './local/worker-pool.ts';
export type { InvokeOptions, Invoker } from './ports/invoker.ts';
export type { ByteRange, ObjectStore } from './ports/object-store.ts';
export type { DeadLetter, ReceivedBatch, ReceiveRequest, Source } from './ports/source.ts';
export { describeRemoved, planReplay, type ReplayOptions, type ReplayPlan, replay } from './replay.ts';
export {
  arraySource,
  inProcessScheduler,
  type RunBatchesOptions,
  type RunPipelineResult,
  runBatches,
  runBatches2,
  runPipeline,
} from './testing.ts';
