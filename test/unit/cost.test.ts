/**
 * The cost model (cli/cost.ts) against figures computed by hand from the price table: one batch's
 * cost, SqsSource's idle polls, SQS requests a day, a day's cost by component, projection between
 * measured batches, the three figures of `sluice status`, the always-on alternatives, and the price
 * table's checks.
 */
import { describe, expect, it } from 'vitest';
import {
  alternativesPerDay,
  type BatchProfile,
  batchCost,
  costFigures,
  DEFAULT_DEPLOYMENT,
  DEFAULT_PRICES,
  type Deployment,
  dailyCost,
  idleReceivesPerInterval,
  parsePriceTable,
  perMillionEvents,
  profileOf,
  projectProfile,
  sleepingDay,
  sqsRequestsPerDay,
} from '../../cli/cost.ts';
import { costOf } from '../../cli/ui/api.ts';
import type { BatchManifest } from '../../shared/core/driver.ts';

/** The empty 1 s WordCount batch of issue 11: 17 puts, 8 gets, 6 task invocations. */
const EMPTY_WORDCOUNT: BatchProfile = {
  events: 0,
  put: 17,
  list: 0,
  get: 8,
  delete: 0,
  invocations: 6,
  taskMs: 0,
  bytesWritten: 0,
};

/** Only the scheduler around the batches: no ticks, no recovery runs (simpler hand sums). */
const BARE: Deployment = {
  ...DEFAULT_DEPLOYMENT,
  ticksPerDay: 0,
  recoveryPerDay: 0,
  uncountedPerBatch: { putList: 0, get: 0 },
};

function manifest(
  records: number,
  put: number,
  get: number,
  attempts: number,
  taskMs: number[],
): BatchManifest {
  return {
    batchTimeMs: 1000,
    input: { records, deadLetters: 0, capped: false },
    stages: [{ taskDurationsMs: taskMs }],
    tasks: { total: attempts, attempts, retries: 0, speculative: 0, recomputed: 0 },
    requests: { get, put, list: 0, delete: 0, bytesRead: 0, bytesWritten: 1000 },
  } as unknown as BatchManifest;
}

describe('cost model', () => {
  it('prices one batch: S3 PUT/LIST and GET tiers, task invocations and duration at the partition memory', () => {
    const c = batchCost({ ...EMPTY_WORDCOUNT, taskMs: 600 });
    // 17 × $0.005/1000 + 8 × $0.0004/1000
    expect(c.s3Usd).toBeCloseTo(0.000085 + 0.0000032, 12);
    // 6 × $0.20/1e6 + 0.6 s × 1769/1024 GB × $0.0000133334 (arm64)
    expect(c.lambdaUsd).toBeCloseTo(0.0000012 + 0.6 * 1.7275390625 * 0.0000133334, 12);
    expect(c.totalUsd).toBeCloseTo(c.s3Usd + c.lambdaUsd, 15);
    // x86 costs more per GB-second
    const x86 = batchCost({ ...EMPTY_WORDCOUNT, taskMs: 600 }, DEFAULT_PRICES, {
      ...DEFAULT_DEPLOYMENT,
      architecture: 'x86_64',
    });
    expect(x86.lambdaUsd).toBeCloseTo(0.0000012 + 0.6 * 1.7275390625 * 0.0000166667, 12);
  });

  it("the web UI's per-batch cost is the model's", () => {
    const m = manifest(10, 17, 12, 6, [100, 50]);
    const c = costOf(m);
    expect(c.totalUsd).toBeCloseTo(batchCost(profileOf(m)).totalUsd, 15);
    expect(c.s3Usd).toBeCloseTo(0.000085 + 12 * 0.0000004, 12);
  });

  it("counts SqsSource's receives on an empty queue per interval", () => {
    // 1 s: deadline 800 ms, no whole second for a long poll: 4 short polls, then loop 0 every 120 ms
    // (at 120, 240, ..., 720): 4 + 6
    expect(idleReceivesPerInterval(1000)).toBe(10);
    // 10 s: deadline 8 s; each loop long-polls 7 s, then one short poll; loop 0 short-polls at
    // 7020, 7140, ..., 7980 ms (9): 4 long + 3 short + 9 short
    expect(idleReceivesPerInterval(10_000)).toBe(16);
    expect(idleReceivesPerInterval(1000, 1)).toBe(7);
  });

  it('counts SQS requests a day: polls, receives and deletes of 10 messages, sends in 64 KiB chunks', () => {
    expect(sqsRequestsPerDay(0, 1000)).toEqual({ receive: 864_000, delete: 0, send: 0 });
    // 10 events/s of 100 bytes, flushed every second: one 1,000-byte message a second
    expect(sqsRequestsPerDay(10, 1000)).toEqual({ receive: 864_000 + 86_400, delete: 86_400, send: 86_400 });
    // 100,000 events/s: 10 MB a second = 153 chunks of 64 KiB, in 39 messages of at most 256 KiB
    expect(sqsRequestsPerDay(100_000, 1000)).toEqual({
      receive: 864_000 + 153 * 86_400,
      delete: 4 * 86_400,
      send: 153 * 86_400,
    });
    // one event every 1,000 s: 86.4 sends, receives and deletes a day on top of the idle polls
    const rare = sqsRequestsPerDay(0.001, 1000);
    expect(rare.send).toBeCloseTo(86.4, 9);
    expect(rare.receive).toBeCloseTo(864_000 + 86.4, 6);
  });

  it("prices a day of empty 1 s batches: issue 11's $9 a day", () => {
    const day = dailyCost(EMPTY_WORDCOUNT, 1000, 0, DEFAULT_PRICES, BARE);
    expect(day.counts.batches).toBe(86_400);
    expect(day.s3PutListUsd).toBeCloseTo(86_400 * 17 * 0.000005, 9); // $7.344
    expect(day.s3GetUsd).toBeCloseTo(86_400 * 8 * 0.0000004, 9); // $0.27648
    expect(day.lambdaRequestsUsd).toBeCloseTo(86_400 * 6 * 0.0000002, 9); // $0.10368
    expect(day.schedulerUsd).toBeCloseTo(86_400 * 1 * 0.0000133334, 9); // $1.152, 1 GB all day
    expect(day.sqsUsd).toBeCloseTo(864_000 * 0.0000004, 9); // $0.3456
    expect(day.partitionUsd).toBe(0);
    expect(day.s3StorageUsd).toBe(0);
    expect(day.totalUsd).toBeCloseTo(7.344 + 0.27648 + 0.10368 + 1.15200576 + 0.3456, 6);
    expect(perMillionEvents(day)).toBeUndefined();
    // the ticks and the recovery function (1,728 invocations, 2,016 PUT/LIST and 2,016 GET a day),
    // and the fence checks' 2 GETs a batch that no manifest counts
    const full = dailyCost(EMPTY_WORDCOUNT, 1000, 0);
    expect(full.counts.invocations).toBe(86_400 * 6 + 1440 + 288);
    expect(full.counts.s3PutList).toBe(86_400 * 17 + 1440 + 576);
    expect(full.counts.s3Get).toBe(86_400 * (8 + 2) + 1440 + 576);
    expect(full.schedulerUsd).toBeCloseTo((86_400 + 144 + 144) * 0.0000133334, 9);
  });

  it('prices an idle day asleep: minute ticks that ask the queue, cold starts, the recovery runs; no batch, no poll', () => {
    const day = sleepingDay(1000);
    expect(DEFAULT_DEPLOYMENT.alwaysOn).toBe(false);
    expect(day.counts.batches).toBe(0);
    // 1,440 ticks of 50 ms, 48 cold starts of a 500 ms init, 288 recovery runs of 50 ms, at 1 GiB
    expect(day.schedulerUsd).toBeCloseTo(((1440 * 50 + 48 * 500 + 288 * 50) / 1000) * 0.0000133334, 12);
    expect(day.counts.invocations).toBe(1440 + 288);
    expect(day.lambdaRequestsUsd).toBeCloseTo(1728 * 0.0000002, 12);
    // one GetQueueAttributes a tick; no ReceiveMessage
    expect(day.counts.sqs).toEqual({ receive: 0, delete: 0, send: 0, attributes: 1440 });
    expect(day.sqsUsd).toBeCloseTo(1440 * 0.0000004, 12);
    // S3: the marker re-read once a quarter hour (96), at each cold start (48) and by each recovery
    // run (288), which then returns: no LIST at all
    expect(day.counts.s3Get).toBeCloseTo(96 + 48 + 288, 9);
    expect(day.counts.s3PutList).toBe(0);
    expect(day.partitionUsd + day.s3StorageUsd).toBe(0);
    // issue 11's target: at most $0.05 a day; the interval does not matter asleep
    expect(day.totalUsd).toBeLessThan(0.05);
    expect(day.totalUsd).toBeCloseTo(0.00257, 5);
    expect(sleepingDay(10_000).totalUsd).toBeCloseTo(day.totalUsd, 12);
    // awake all day (alwaysOn) the same pipeline pays the scheduler and the source's polls
    const awake = dailyCost({ ...EMPTY_WORDCOUNT, put: 0.1, get: 1, invocations: 0 }, 1000, 0);
    expect(awake.totalUsd).toBeGreaterThan(1.5);
    expect(awake.totalUsd / day.totalUsd).toBeGreaterThan(200);
  });

  it('prices storage as a day of writes kept for the retention, and per million events at a rate', () => {
    const batch = { ...EMPTY_WORDCOUNT, events: 10, taskMs: 100, bytesWritten: 10_000 };
    const day = dailyCost(batch, 1000, 10, DEFAULT_PRICES, BARE);
    // 864 MB written a day, kept 7 days: 6.048 GB at $0.023 per GB-month of 730/24 days
    expect(day.s3StorageUsd).toBeCloseTo((6.048 * 0.023 * 24) / 730, 9);
    // 0.1 s a batch at 1769 MiB
    expect(day.partitionUsd).toBeCloseTo(86_400 * 0.1 * 1.7275390625 * 0.0000133334, 9);
    expect(perMillionEvents(day)).toBeCloseTo((day.totalUsd / 864_000) * 1e6, 9);
    // a 10 s interval: a tenth of the batches
    const ten = dailyCost(batch, 10_000, 10, DEFAULT_PRICES, BARE);
    expect(ten.s3PutListUsd).toBeCloseTo(day.s3PutListUsd / 10, 9);
    expect(ten.schedulerUsd).toBeCloseTo(day.schedulerUsd, 12);
  });

  it('projects a batch between and beyond measured batches: durations grow, request counts stay', () => {
    const measured: BatchProfile[] = [
      EMPTY_WORDCOUNT,
      { ...EMPTY_WORDCOUNT, events: 10, put: 19, taskMs: 100, bytesWritten: 1000 },
      { ...EMPTY_WORDCOUNT, events: 1000, put: 19, taskMs: 1090, bytesWritten: 100_000 },
    ];
    expect(projectProfile(measured, 0)).toEqual(EMPTY_WORDCOUNT);
    const five = projectProfile(measured, 5);
    expect(five.put).toBe(18);
    expect(five.taskMs).toBe(50);
    const mid = projectProfile(measured, 505);
    expect(mid.taskMs).toBeCloseTo(100 + 990 * (495 / 990), 9);
    const far = projectProfile(measured, 100_000);
    expect(far.put).toBe(19);
    expect(far.taskMs).toBeCloseTo(1090 + 99_000 * 1, 9); // 1 ms an event, from the last two
    expect(far.bytesWritten).toBeCloseTo(100_000 + 99_000 * 100, 6);
    expect(() => projectProfile([], 1)).toThrow(/no measured batch/);
  });

  it("sluice status's figures: observed rate, idle from the empty batches, per million events", () => {
    const manifests = [
      manifest(0, 17, 8, 6, [10, 10]),
      manifest(0, 15, 8, 6, [10, 10]),
      manifest(1000, 19, 12, 6, [300, 300]),
      manifest(1000, 21, 12, 6, [300, 300]),
    ];
    const f = costFigures(manifests, 1000, DEFAULT_PRICES, BARE);
    expect(f.batches).toBe(4);
    expect(f.emptyBatches).toBe(2);
    expect(f.idleBasis).toBe('empty batches');
    expect(f.eventsPerSecond).toBe(500);
    expect(f.idleBatch.put).toBe(16);
    expect(f.idleBatch.taskMs).toBe(20);
    expect(f.meanBatch.put).toBe(18);
    expect(f.meanBatch.taskMs).toBe(310); // (20 + 20 + 600 + 600) / 4
    // with alwaysOn an idle day is the empty batches all day; by default the pipeline sleeps
    expect(f.idleAlwaysOn.s3PutListUsd).toBeCloseTo(86_400 * 16 * 0.000005, 9);
    expect(f.idle).toEqual(f.idleAsleep);
    expect(f.idle.counts.batches).toBe(0);
    expect(costFigures(manifests, 1000, DEFAULT_PRICES, { ...BARE, alwaysOn: true }).idle).toEqual(
      f.idleAlwaysOn,
    );
    expect(f.observed.s3PutListUsd).toBeCloseTo(86_400 * 18 * 0.000005, 9);
    expect(f.perMillionEventsUsd).toBeCloseTo((f.observed.totalUsd / (500 * 86_400)) * 1e6, 9);
    // no empty batch: the smallest batch stands in, said so
    const busy = costFigures(manifests.slice(2), 1000, DEFAULT_PRICES, BARE);
    expect(busy.idleBasis).toBe('smallest batch');
    expect(busy.idleBatch.events).toBe(0);
    expect(busy.idleBatch.put).toBe(19);
  });

  it('prices the always-on alternatives: Flink with its orchestration KPU, a 3-node EMR cluster', () => {
    const alt = alternativesPerDay();
    // 2 KPU × $0.11 × 24 h + 50 GB × $0.10 per GB-month
    expect(alt.flink.usd).toBeCloseTo(5.28 + (5 * 24) / 730, 9);
    // 3 × (EC2 $0.192 + EMR $0.048) × 24 h
    expect(alt.emr.usd).toBeCloseTo(17.28, 9);
    expect(alt.emr.instanceType).toBe('m5.xlarge');
  });

  it('checks a price table and names the field that is wrong', () => {
    expect(DEFAULT_PRICES.region).toBe('us-east-1');
    expect(DEFAULT_PRICES.date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const good = JSON.parse(JSON.stringify(DEFAULT_PRICES)) as Record<string, Record<string, unknown>>;
    expect(parsePriceTable(good).s3.putCopyPostListPer1000).toBe(0.005);
    expect(() => parsePriceTable([])).toThrow(/JSON object/);
    expect(() => parsePriceTable({ ...good, date: 'yesterday' })).toThrow(/'date' must be YYYY-MM-DD/);
    expect(() => parsePriceTable({ ...good, region: '' })).toThrow(/'region'/);
    expect(() => parsePriceTable({ ...good, s3: { ...good.s3, getAndOtherPer1000: -1 } })).toThrow(
      /'s3.getAndOtherPer1000' must be a number of 0 or more, got -1/,
    );
    expect(() => parsePriceTable({ ...good, sqs: { ...good.sqs, chunkBytes: 0 } })).toThrow(
      /'sqs.chunkBytes'/,
    );
    const { lambda: _lambda, ...noLambda } = good;
    expect(() => parsePriceTable(noLambda)).toThrow(/'lambda' is missing/);
  });
});
