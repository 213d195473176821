/**
 * The Sluice CDK app: one stack deploying one pipeline (default: examples/wordcount.ts as
 * `SluiceWordCount`). Run by the CDK CLI through cdk.json (`npx tsx infra/app.ts`):
 *
 *   npx cdk synth
 *   npx cdk deploy -c pipeline=examples/grep.ts -c partitions=8 -c batchIntervalMs=1000 -c stackName=SluiceGrep
 *
 * See infra/context.ts for every context key and docs/DEPLOY.md for the whole story.
 *
 * @module
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { configFromContext } from './context.ts';
import { SluicePipelinePropsError } from './errors.ts';
import { SluiceStack } from './stack.ts';

const app = new App();
try {
  const config = configFromContext(app.node);
  new SluiceStack(app, config.stackName, {
    description: `Sluice pipeline ${config.pipeline.pipeline} (D-Streams micro-batches on Lambda, S3 and SQS)`,
    pipeline: config.pipeline,
    // Nothing in the stack looks anything up, so a placeholder account keeps `cdk synth` offline;
    // `cdk deploy` sets CDK_DEFAULT_ACCOUNT/REGION from the credentials in use.
    env: {
      account: process.env.CDK_DEFAULT_ACCOUNT ?? '000000000000',
      region: process.env.CDK_DEFAULT_REGION ?? 'us-east-1',
    },
  });
} catch (err) {
  // A bad prop or context value is the user's to fix: say which, without a stack trace.
  if (!(err instanceof SluicePipelinePropsError)) throw err;
  console.error(`Error: ${err.message}`);
  process.exit(1);
}

// AWS Solutions checks run at synthesis; an unacknowledged error fails `cdk synth`. The deliberate
// findings are acknowledged, each with its reason, in SluicePipeline.acknowledgeNagFindings.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
