/**
 * The rate controller's backpressure cap (shared/core/driver/rate-controller.ts): after a batch whose
 * work outlasts the interval the cap lowers to what the interval can process, unless the work is a
 * fixed cost per batch that fewer records do not shorten (issue 8: on LocalStack under load the cap
 * fell batch after batch to one SQS message while the queue grew).
 */
import { describe, expect, it } from 'vitest';
import type { BatchManifest } from '../../shared/core/driver/manifest.ts';
import { RateController } from '../../shared/core/driver/rate-controller.ts';

const batch = (t: number, records: number, work: number) =>
  ({
    batchTimeMs: t,
    processingMs: work,
    phases: { receive: 0 },
    input: { records },
  }) as unknown as BatchManifest;

function controller() {
  const events: Record<string, unknown>[] = [];
  const rc = new RateController({
    intervalMs: 1000,
    maxRecordsPerBatch: undefined,
    adaptive: true,
    log: (e) => events.push(e),
  });
  rc.recordProcessing(500); // past the warm-up batch
  return { rc, events };
}

describe('RateController backpressure', () => {
  it('lowers the cap when the work grows with the records', () => {
    const { rc } = controller();
    rc.onBatchCompleted(batch(0, 4000, 4000));
    expect(rc.maxRecords).toBe(900);
    // 1000 records in 1200 ms: 750 in 900 ms if it all is per record (the fit, 267 ms fixed and
    // 0.93 ms per record, says 678: the higher of the two)
    rc.onBatchCompleted(batch(1000, 1000, 1200));
    expect(rc.maxRecords).toBe(750);
  });

  it('does not lower the cap further when fewer records take as long (a fixed cost per batch)', () => {
    const { rc, events } = controller();
    rc.onBatchCompleted(batch(0, 2000, 2200));
    expect(rc.maxRecords).toBe(818);
    for (let i = 1; i <= 5; i++) rc.onBatchCompleted(batch(i * 1000, 818, 2100 + 10 * i));
    expect(rc.maxRecords).toBe(818);
    expect(events.filter((e) => e.event === 'backpressure.fixed-cost')).toHaveLength(5);
  });
});
