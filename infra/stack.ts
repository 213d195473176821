import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { SluicePipeline, type SluicePipelineProps } from './sluice-pipeline.ts';

/** Props of {@link SluiceStack}. */
export interface SluiceStackProps extends StackProps {
  /** The pipeline the stack deploys. */
  readonly pipeline: SluicePipelineProps;
}

/**
 * A stack holding one {@link SluicePipeline}, with outputs named for scripts
 * (`cdk deploy --outputs-file`, `sluice send --queue-url ...`): BucketName, QueueUrl,
 * DeadLetterQueueUrl, SchedulerFunctionName, PartitionFunctionName, RecoveryFunctionName, PipelineName.
 */
export class SluiceStack extends Stack {
  readonly pipeline: SluicePipeline;

  constructor(scope: Construct, id: string, props: SluiceStackProps) {
    super(scope, id, props);
    const p = (this.pipeline = new SluicePipeline(this, 'Pipeline', props.pipeline));
    const output = (name: string, value: string, description: string) =>
      new CfnOutput(this, name, { value, description });
    output('BucketName', p.bucket.bucketName, 'S3 bucket of the pipeline (inputs, RDDs, manifests, outputs)');
    output('QueueUrl', p.inputQueue.queueUrl, 'SQS queue producers send events to');
    output('DeadLetterQueueUrl', p.deadLetterQueue.queueUrl, 'Messages that never made it into a batch');
    output('SchedulerFunctionName', p.schedulerFunction.functionName, 'The driver function');
    output('PartitionFunctionName', p.partitionFunction.functionName, 'The task function');
    output('RecoveryFunctionName', p.recoveryFunction.functionName, 'The recovery function');
    output('PipelineName', p.pipelineName, 'Pipeline dimension of the Sluice metrics');
  }
}
