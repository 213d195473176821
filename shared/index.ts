/**
 * Sluice: Discretized Streams (the model of Spark Streaming) for TypeScript.
 * The engine: no AWS import anywhere below this folder.
 *
 * @module
 */

export { type RunBatchOptions, type RunBatchResult, runBatch } from './batch.ts';
export { Pipeline, StreamingContext, type StreamingContextOptions } from './core/context.ts';
export { BatchRetriesExhaustedError, type BatchRetryOptions } from './core/driver/batch-retry.ts';
export {
  type BatchManifest,
  BatchScheduler,
  type BatchSchedulerOptions,
  type GraphMeta,
} from './core/driver.ts';
export type { FaultOptions } from './core/faults.ts';
// idle fast path (issue 11): what test/unit/idle.test.ts reads from the user's entry; the rest is in sluice/engine
export { IDLE_CHUNK, listIdleSpans } from './core/idle-span.ts';
export { LeaseHeldError, type LeaseRecord } from './core/lease.ts';
export type { OutputFormat, ParquetSchema, ParquetType } from './core/parquet.ts';
export {
  NotStoredError,
  queryState,
  readStoreOutputs,
  type StateQuery,
  storeOutputsSource,
} from './core/query.ts';
export { type Partitioner, RDD } from './core/rdd.ts';
export type { State } from './core/state.ts';
export { DStream, MapWithStateDStream, type WindowOptions } from './core/streams.ts';
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
