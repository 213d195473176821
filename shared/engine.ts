/**
 * `sluice/engine`: everything `sluice` exports (the API and the testing helpers), plus the engine's
 * lower layers for those who build their own runner: key hashing and ordering, the request-counting
 * store, the task runner, and the pipeline module loader. No AWS import anywhere below this folder.
 */

export { type CatalogSnapshot, catalog } from './core/catalog.ts';
export { CountingObjectStore, type RequestCounts } from './core/counting-store.ts';
export { canonicalKey, compareKeys, KeyMap, stableHash } from './core/keys.ts';
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
