export { SluiceCatalog, type SluiceCatalogOptions, type SluiceCatalogTable } from './catalog.ts';
export {
  CONTEXT_KEYS,
  configFromContext,
  DEFAULT_PIPELINE,
  DEFAULT_STACK_NAME,
  defaultStackName,
  type SluiceAppConfig,
} from './context.ts';
export { SluicePipelinePropsError } from './errors.ts';
export {
  ESM_REQUIRE_BANNER,
  FUNCTION_ENTRIES,
  METRICS_NAMESPACE,
  PIPELINE_MODULE_ALIAS,
  SluicePipeline,
  type SluicePipelineProps,
} from './sluice-pipeline.ts';
export { SluiceStack, type SluiceStackProps } from './stack.ts';
