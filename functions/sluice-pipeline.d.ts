/**
 * The user's pipeline module, bundled into every function through an esbuild alias
 * (`--alias:sluice-pipeline=<props.pipeline>`, set by the SluicePipeline construct).
 */
declare module 'sluice-pipeline' {
  import type { StreamingContext } from '../shared/index.ts';

  const build: (ctx: StreamingContext) => void | Promise<void>;
  export default build;
  export const options:
    | { batchIntervalMs?: number; partitions?: number; onRecordError?: 'deadLetter' | 'fail' }
    | undefined;
}
