/**
 * The functions' telemetry (functions/lib/telemetry.ts, through Powertools): the metric names,
 * namespace and the one dimension the alarms and the dashboard select on, and structured logs
 * with the event name.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { emitBatchMetrics, emitMetrics, log } from '../../functions/lib/telemetry.ts';
import type { BatchManifest } from '../../shared/index.ts';

function captured(fn: () => void): Record<string, any>[] {
  const lines: string[] = [];
  // errors go to stderr: Lambda sends both streams to the function's log group
  const spies = [process.stdout, process.stderr].map((stream) =>
    vi.spyOn(stream, 'write').mockImplementation((chunk: unknown) => {
      lines.push(String(chunk));
      return true;
    }),
  );
  try {
    fn();
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return lines
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

afterEach(() => vi.restoreAllMocks());

describe('functions telemetry (Powertools logger and metrics)', () => {
  it('FailedBatches: namespace Sluice, exactly the Pipeline dimension, one EMF line', () => {
    const [line, ...rest] = captured(() =>
      emitMetrics('clicks', { FailedBatches: { value: 1, unit: 'Count' } }),
    );
    expect(rest).toEqual([]);
    expect(line!._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: 'Sluice',
        Dimensions: [['Pipeline']],
        Metrics: [{ Name: 'FailedBatches', Unit: 'Count' }],
      },
    ]);
    expect(line!.Pipeline).toBe('clicks');
    expect(line!.FailedBatches).toBe(1);
    expect(line!.service).toBeUndefined();
  });

  it('a committed batch: SchedulingDelayMs and the other batch metrics, with batchTimeMs as metadata', () => {
    const m = {
      batchTimeMs: 5000,
      schedulingDelayMs: 12,
      processingMs: 340,
      totalDelayMs: 352,
      input: { records: 7 },
      deadLettered: 1,
      tasks: { retries: 2 },
      requests: { get: 3, put: 4, list: 1, delete: 0 },
      delivery: { redelivered: 2, duplicates: 1 },
    } as unknown as BatchManifest;
    const [line] = captured(() => emitBatchMetrics('clicks', m));
    const defs = line!._aws.CloudWatchMetrics[0];
    expect(defs.Dimensions).toEqual([['Pipeline']]);
    expect(Object.fromEntries(defs.Metrics.map((d: any) => [d.Name, d.Unit]))).toEqual({
      SchedulingDelayMs: 'Milliseconds',
      ProcessingTimeMs: 'Milliseconds',
      TotalDelayMs: 'Milliseconds',
      InputRecords: 'Count',
      DeadLetters: 'Count',
      TaskRetries: 'Count',
      S3Requests: 'Count',
      FailedBatches: 'Count',
      RedeliveredMessages: 'Count',
      DuplicateMessages: 'Count',
    });
    expect(line).toMatchObject({
      SchedulingDelayMs: 12,
      S3Requests: 8,
      FailedBatches: 0,
      RedeliveredMessages: 2,
      DuplicateMessages: 1,
      batchTimeMs: 5000,
    });
  });

  it('logs one JSON object per line with the event name as message and field', () => {
    const lines = captured(() => {
      log({ event: 'batch', batchTimeMs: 5000, records: 7 });
      log({ event: 'batch.failed', error: 'boom', retryable: false });
    });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 'INFO',
      message: 'batch',
      event: 'batch',
      batchTimeMs: 5000,
      service: 'sluice',
    });
    expect(lines[1]).toMatchObject({
      level: 'ERROR',
      message: 'batch.failed',
      event: 'batch.failed',
      error: 'boom',
    });
    expect(typeof lines[0]!.timestamp).toBe('string');
  });
});
