import type { BatchManifest } from '../../shared/index.ts';

/** One JSON object per line on stdout: CloudWatch Logs Insights reads the fields. */
export function log(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}

/**
 * Metrics in CloudWatch embedded metric format: a log line that CloudWatch turns into metrics
 * (namespace Sluice, dimension Pipeline), without any API call from the function.
 */
export function emitMetrics(
  pipeline: string,
  metrics: Record<string, { value: number; unit: 'Milliseconds' | 'Count' | 'Bytes' }>,
  extra: Record<string, unknown> = {},
): void {
  const names = Object.keys(metrics);
  const line: Record<string, unknown> = {
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        {
          Namespace: 'Sluice',
          Dimensions: [['Pipeline']],
          Metrics: names.map((name) => ({ Name: name, Unit: metrics[name]!.unit })),
        },
      ],
    },
    Pipeline: pipeline,
    ...extra,
  };
  for (const name of names) line[name] = metrics[name]!.value;
  process.stdout.write(`${JSON.stringify(line)}\n`);
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
