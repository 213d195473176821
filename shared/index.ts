/**
 * Sluice: Discretized Streams (the model of Spark Streaming) for TypeScript.
 * The engine: no AWS import anywhere below this folder.
 */
export { StreamingContext, Pipeline, type StreamingContextOptions } from './core/context.ts';
export { DStream, MapWithStateDStream, type WindowOptions } from './core/dstream.ts';
export { RDD, type Partitioner } from './core/rdd.ts';
export type { State } from './core/state.ts';
export { BatchPlan, type Stage, type Target } from './core/planner.ts';
export { BatchScheduler, type BatchManifest, type BatchSchedulerOptions, type GraphMeta } from './core/driver.ts';
export { runTask } from './core/executor.ts';
export { layout, timeKey } from './core/layout.ts';
export { encodeBlock, decodeBlock } from './core/codec.ts';
export type { TaskSpec, TaskResult, LineageRecord, InputRef, TaskOutput, GraphContext } from './core/task.ts';
export type { ObjectStore, ByteRange } from './ports/object-store.ts';
export type { Source, ReceivedBatch, ReceiveRequest, DeadLetter } from './ports/source.ts';
export type { Invoker, InvokeOptions } from './ports/invoker.ts';
export { MemoryObjectStore } from './local/memory-store.ts';
export { DirectoryObjectStore } from './local/directory-store.ts';
export { InProcessInvoker } from './local/in-process-invoker.ts';
export { runBatches, runBatches2, runPipeline, arraySource, type RunBatchesOptions, type RunPipelineResult } from './testing.ts';
export * from './errors.ts';
