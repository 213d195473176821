import { SluiceError } from '../shared/errors.ts';

/**
 * A `SluicePipeline` prop (or a CDK context value that feeds one) that cannot work. Raised while the
 * app is being built, before anything is bundled or synthesized; the message names the prop, says
 * what it must be and what it got. Retrying cannot help: fix the value.
 */
export class SluicePipelinePropsError extends SluiceError {
  /** The offending prop, e.g. `partitions`, or the context key, e.g. `batchIntervalMs`. */
  readonly prop: string;

  constructor(where: string, prop: string, message: string) {
    super(`${where}: invalid '${prop}': ${message}`);
    this.name = 'SluicePipelinePropsError';
    this.prop = prop;
  }
}
