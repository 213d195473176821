/**
 * The alarms' metrics on LocalStack (issue 9 item 9): LocalStack turns no embedded-metric-format
 * log line into a metric, so with SLUICE_METRICS_API=1 (construct prop `metricsViaApi`) the
 * scheduler also publishes them with PutMetricData. The bundled scheduler handler runs in-process
 * against LocalStack's S3, SQS and CloudWatch: one batch fails (FailedBatchesAlarm's metric), the
 * next invocation re-runs it late (SchedulingDelayAlarm's metric), and CloudWatch's ListMetrics
 * and GetMetricStatistics must show both, with the namespace, names and dimension the alarms watch
 * (infra/sluice-pipeline.ts).
 */
import { CloudWatchClient, GetMetricStatisticsCommand, ListMetricsCommand } from '@aws-sdk/client-cloudwatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqsProducer } from '../../aws/producer.ts';
import { bundleHandler, importBundle } from './bundle.ts';
import { type LocalLambdaEndpoint, startLocalLambdaEndpoint } from './local-lambda-endpoint.ts';
import { createBucket, createQueue, requireLocalStack, uniqueName } from './localstack.ts';

type Handler = (event: unknown, context?: unknown) => Promise<unknown>;
let partitionBundle: {
  createPartitionHandler(d: unknown): Handler;
  partitionDepsFromEnv(e: NodeJS.ProcessEnv): unknown;
};
let schedulerBundle: {
  createSchedulerHandler(d: unknown): (e: unknown, c: unknown) => Promise<Record<string, unknown>>;
  schedulerDepsFromEnv(e: NodeJS.ProcessEnv): Record<string, unknown>;
};
let endpoint: LocalLambdaEndpoint | undefined;

beforeAll(async () => {
  await requireLocalStack();
  partitionBundle = await importBundle(await bundleHandler('partition', 'examples/wordcount.ts'));
  schedulerBundle = await importBundle(await bundleHandler('scheduler', 'examples/wordcount.ts'));
});
afterAll(async () => {
  await endpoint?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the alarms metrics through PutMetricData (SLUICE_METRICS_API=1)', () => {
  it('a failed batch and a late one move FailedBatches and SchedulingDelayMs on LocalStack', async () => {
    const pipelineName = uniqueName('metrics-it');
    const queueUrl = await createQueue();
    const env: NodeJS.ProcessEnv = {
      SLUICE_BUCKET: await createBucket(),
      SLUICE_PREFIX: 'pipeline',
      SLUICE_BATCH_INTERVAL_MS: '1000',
      SLUICE_PARTITIONS: '2',
      SLUICE_PIPELINE_NAME: pipelineName,
      SLUICE_QUEUE_URL: queueUrl,
      SLUICE_PARTITION_FUNCTION: 'partition',
      SLUICE_TASK_CONCURRENCY: '4',
      SLUICE_RUN_MS_BEFORE_TIMEOUT: '1500',
      SLUICE_METRICS_API: '1',
    };
    const partition = partitionBundle.createPartitionHandler(partitionBundle.partitionDepsFromEnv(env));
    let failing = true;
    endpoint = await startLocalLambdaEndpoint({
      functions: {
        partition: async (event: unknown) => {
          if (failing) throw new Error('injected: the partition function fails');
          return partition(event);
        },
      },
    });
    process.env.AWS_ENDPOINT_URL_LAMBDA = endpoint.url;
    const invoke = (runMs: number) => {
      const deps = {
        ...schedulerBundle.schedulerDepsFromEnv(env),
        tinyBatch: false as const, // the failing partition function is the subject
        batchRetry: { attempts: 1, backoffMs: 1 },
      };
      const deadline = Date.now() + runMs;
      return schedulerBundle.createSchedulerHandler(deps)(
        { source: 'aws.events' },
        { awsRequestId: uniqueName('req'), getRemainingTimeInMillis: () => deadline - Date.now() },
      );
    };
    await new SqsProducer({ queueUrl }).send(['to be or not to be', 'that is the question']);

    // 1. every task fails: the batch fails (transient), FailedBatches 1
    const first = await invoke(6_000);
    expect(first.status).toBe('failed-transient');
    // 2. three intervals later the next invocation re-runs that batch from its stored input: late
    await sleep(3_000);
    failing = false;
    const second = await invoke(5_000);
    expect(second.status).toBe('handed-over');
    expect(second.batches as number).toBeGreaterThan(0);

    const cw = new CloudWatchClient({});
    const dimensions = [{ Name: 'Pipeline', Value: pipelineName }];
    const listed = await cw.send(new ListMetricsCommand({ Namespace: 'Sluice', Dimensions: dimensions }));
    const names = new Set((listed.Metrics ?? []).map((m) => m.MetricName));
    expect([...names].sort()).toEqual(['FailedBatches', 'SchedulingDelayMs']);
    for (const m of listed.Metrics ?? []) expect(m.Dimensions).toEqual(dimensions);

    const stat = async (name: string, statistic: 'Sum' | 'Maximum') => {
      const res = await cw.send(
        new GetMetricStatisticsCommand({
          Namespace: 'Sluice',
          MetricName: name,
          Dimensions: dimensions,
          StartTime: new Date(Date.now() - 10 * 60_000),
          EndTime: new Date(Date.now() + 60_000),
          Period: 60, // the alarms' period
          Statistics: [statistic],
        }),
      );
      return (res.Datapoints ?? []).map((d) => d[statistic] ?? 0);
    };
    // FailedBatchesAlarm: Sum >= 1 in a minute; one failure, and 0 for every committed batch
    const failed = await stat('FailedBatches', 'Sum');
    expect(failed.reduce((a, b) => a + b, 0)).toBe(1);
    // SchedulingDelayAlarm: Maximum > 2 intervals (2,000 ms); the re-run batch started >= 3 s late
    const delay = await stat('SchedulingDelayMs', 'Maximum');
    expect(Math.max(...delay)).toBeGreaterThan(3_000);
    cw.destroy();
  });
});
