/**
 * The functions' logs and metrics, through Powertools for AWS Lambda (logger and metrics).
 *
 * Logs: one JSON object per line (Powertools' structured format: level, message, timestamp,
 * service `sluice`, and the fields given); `message` is the event name (`batch`, `task`,
 * `batch.failed` ...), which is also kept as the `event` field, so CloudWatch Logs Insights
 * queries such as `filter event = 'batch.failed'` read the fields. LOG_LEVEL (or
 * POWERTOOLS_LOG_LEVEL) sets the level.
 *
 * Metrics: CloudWatch embedded metric format, written to stdout by Powertools' Metrics, in the
 * namespace `Sluice` with exactly one dimension, `Pipeline` (Powertools' default `service`
 * dimension is cleared): the alarms (FailedBatches, SchedulingDelayMs) and the dashboard read
 * those names and that dimension. Each call publishes at once; no API call is made.
 *
 * @module
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { BatchManifest } from '../../shared/index.ts';

/** Namespace of the metrics (the construct's METRICS_NAMESPACE). */
const NAMESPACE = 'Sluice';

const logger = new Logger({ serviceName: 'sluice' });

/** One structured log line; `fields.event` names it. */
export function log(fields: Record<string, unknown>): void {
  const { event, ...rest } = fields;
  const message = typeof event === 'string' ? event : 'sluice';
  if (message.endsWith('.failed') || message.endsWith('.impossible'))
    logger.error(message, { event, ...rest });
  else logger.info(message, { event, ...rest });
}

const UNITS = {
  Milliseconds: MetricUnit.Milliseconds,
  Count: MetricUnit.Count,
  Bytes: MetricUnit.Bytes,
} as const;

const metricsByPipeline = new Map<string, Metrics>();

function metricsFor(pipeline: string): Metrics {
  let metrics = metricsByPipeline.get(pipeline);
  if (!metrics) {
    metrics = new Metrics({ namespace: NAMESPACE });
    // the alarms and the dashboard select on Pipeline alone: drop Powertools' `service` dimension
    metrics.clearDefaultDimensions();
    metrics.setDefaultDimensions({ Pipeline: pipeline });
    metricsByPipeline.set(pipeline, metrics);
  }
  return metrics;
}

/**
 * Metrics in CloudWatch embedded metric format: namespace Sluice, dimension Pipeline, published
 * at once as one log line (with `extra` as metadata fields).
 */
export function emitMetrics(
  pipeline: string,
  metrics: Record<string, { value: number; unit: keyof typeof UNITS }>,
  extra: Record<string, unknown> = {},
): void {
  const m = metricsFor(pipeline);
  for (const [name, { value, unit }] of Object.entries(metrics)) m.addMetric(name, UNITS[unit], value);
  for (const [key, value] of Object.entries(extra)) m.addMetadata(key, value as string);
  m.publishStoredMetrics();
}

export function emitBatchMetrics(pipeline: string, m: BatchManifest): void {
  emitMetrics(
    pipeline,
    {
      SchedulingDelayMs: { value: m.schedulingDelayMs, unit: 'Milliseconds' },
      ProcessingTimeMs: { value: m.processingMs, unit: 'Milliseconds' },
      TotalDelayMs: { value: m.totalDelayMs, unit: 'Milliseconds' },
      InputRecords: { value: m.input.records, unit: 'Count' },
      DeadLetters: { value: m.deadLettered, unit: 'Count' },
      TaskRetries: { value: m.tasks.retries, unit: 'Count' },
      S3Requests: {
        value: m.requests.get + m.requests.put + m.requests.list + m.requests.delete,
        unit: 'Count',
      },
      FailedBatches: { value: 0, unit: 'Count' },
      // SQS messages received again and not counted (at-least-once delivery)
      RedeliveredMessages: { value: m.delivery?.redelivered ?? 0, unit: 'Count' },
      DuplicateMessages: { value: m.delivery?.duplicates ?? 0, unit: 'Count' },
    },
    { batchTimeMs: m.batchTimeMs },
  );
}
