/**
 * A second, opt-in sink for the metrics the stack's alarms watch: CloudWatch `PutMetricData`, with
 * the namespace, metric names and `Pipeline` dimension of the embedded-metric-format log lines
 * (telemetry.ts). LocalStack turns no log line into a metric, so without it no alarm on Sluice's
 * metrics can move there. On with `SLUICE_METRICS_API=1` (construct prop `metricsViaApi`); on AWS
 * it costs one PutMetricData request per batch, and the EMF lines already give the same metrics.
 *
 * Publishing is best effort: a failed request is logged (`metrics.putFailed`), never fails a batch.
 *
 * @module
 */
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { type BatchManifest, ConfigError } from '../../shared/index.ts';
import { LAMBDA_ENV } from './env-names.ts';

/** The namespace of every Sluice metric (as in the EMF lines and the alarms). */
export const METRICS_NAMESPACE = 'Sluice';

export interface MetricsApiSink {
  /** A committed batch: SchedulingDelayMs (the scheduling-delay alarm) and FailedBatches 0. */
  batch(m: BatchManifest): void;
  /** A failed batch: FailedBatches 1 (the failed-batches alarm). */
  failed(): void;
  /** Waits for every request in flight (before the invocation returns and Lambda freezes it). */
  flush(): Promise<void>;
}

type Unit = 'Milliseconds' | 'Count';

export function createMetricsApiSink(
  pipeline: string,
  options: { client?: CloudWatchClient; log?: (fields: Record<string, unknown>) => void } = {},
): MetricsApiSink {
  const client = options.client ?? new CloudWatchClient({});
  const inFlight = new Set<Promise<void>>();
  const put = (metrics: Record<string, { value: number; unit: Unit }>) => {
    const timestamp = new Date();
    const p = client
      .send(
        new PutMetricDataCommand({
          Namespace: METRICS_NAMESPACE,
          MetricData: Object.entries(metrics).map(([name, { value, unit }]) => ({
            MetricName: name,
            Dimensions: [{ Name: 'Pipeline', Value: pipeline }],
            Timestamp: timestamp,
            Value: value,
            Unit: unit,
          })),
        }),
      )
      .then(
        () => {},
        (err: unknown) => options.log?.({ event: 'metrics.putFailed', error: String(err) }),
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  return {
    batch: (m) =>
      put({
        SchedulingDelayMs: { value: m.schedulingDelayMs, unit: 'Milliseconds' },
        FailedBatches: { value: 0, unit: 'Count' },
      }),
    failed: () => put({ FailedBatches: { value: 1, unit: 'Count' } }),
    flush: async () => {
      await Promise.all([...inFlight]);
    },
  };
}

/** The sink if `SLUICE_METRICS_API` is `1` (or `true`); a value other than those, `0` or empty fails at start-up. */
export function metricsApiSinkFromEnv(
  pipeline: string,
  env: NodeJS.ProcessEnv = process.env,
  log?: (fields: Record<string, unknown>) => void,
): MetricsApiSink | undefined {
  const raw = env[LAMBDA_ENV.metricsViaApi];
  if (raw === undefined || raw === '' || raw === '0' || raw === 'false') return undefined;
  if (raw !== '1' && raw !== 'true')
    throw new ConfigError(LAMBDA_ENV.metricsViaApi, `must be 1 (on) or 0 (off), got '${raw}'`);
  return createMetricsApiSink(pipeline, { log });
}
