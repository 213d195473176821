/**
 * The cost model: what a pipeline costs on AWS, from what its batch manifests say it did (S3
 * requests, task invocations and durations) and what the deployment does around the batches (the
 * scheduler's duration, the minute ticks, the recovery function, SQS polls, deletes and the
 * producer's sends, S3 storage), priced from a price table that names its region and date
 * (`cli/prices.json`, or `--prices <file>`).
 *
 * Pure functions, no I/O except `readPriceTable`. Used by `sluice status`, the web UI's per-batch
 * cost and `npm run bench:cost`; docs/DEPLOY.md's cost table is computed with it.
 *
 * Three figures: the cost per day at the observed rate, the idle cost per day (what the same
 * pipeline costs when no event arrives: on AWS it sleeps after `idleAfter`, and a day asleep is
 * minute ticks that ask the queue and the recovery runs (`sleepingDay`); with `alwaysOn` it is
 * empty batches, the scheduler all day, the polls) and the cost per million events (the day's cost at the observed rate divided by the day's events, so the fixed
 * costs are spread over the events, as a bill would be).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type { BatchManifest } from '../shared/core/driver.ts';
import defaultTable from './prices.json' with { type: 'json' };

export interface PriceTable {
  readonly region: string;
  /** When the prices were read (YYYY-MM-DD). */
  readonly date: string;
  readonly currency: string;
  readonly lambda: {
    readonly requestPerMillion: number;
    readonly gbSecondArm64: number;
    readonly gbSecondX86: number;
    readonly source: string;
  };
  readonly s3: {
    /** PUT, COPY, POST and LIST requests, per 1,000. */
    readonly putCopyPostListPer1000: number;
    /** GET and all other requests (DELETE is free), per 1,000. */
    readonly getAndOtherPer1000: number;
    readonly storageGbMonth: number;
    readonly source: string;
  };
  readonly sqs: {
    readonly requestPerMillion: number;
    /** A request is billed once per this many bytes of payload (64 KiB). */
    readonly chunkBytes: number;
    readonly source: string;
  };
  readonly flink: {
    readonly kpuHour: number;
    readonly runningStorageGbMonth: number;
    readonly storageGbPerKpu: number;
    readonly source: string;
  };
  readonly emr: {
    readonly instanceType: string;
    readonly ec2Hour: number;
    readonly emrHour: number;
    readonly source: string;
  };
}

const NUMBER_FIELDS: Readonly<Record<string, readonly string[]>> = {
  lambda: ['requestPerMillion', 'gbSecondArm64', 'gbSecondX86'],
  s3: ['putCopyPostListPer1000', 'getAndOtherPer1000', 'storageGbMonth'],
  sqs: ['requestPerMillion', 'chunkBytes'],
  flink: ['kpuHour', 'runningStorageGbMonth', 'storageGbPerKpu'],
  emr: ['ec2Hour', 'emrHour'],
};

/**
 * Checks a parsed price table: every price a finite number of 0 or more (chunkBytes positive),
 * region and date named. Throws an Error naming the first field that is wrong.
 */
export function parsePriceTable(value: unknown): PriceTable {
  const obj = value as Record<string, unknown> | null;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new Error('must be a JSON object with region, date, lambda, s3, sqs, flink and emr');
  }
  for (const field of ['region', 'date']) {
    if (typeof obj[field] !== 'string' || obj[field] === '') {
      throw new Error(`'${field}' must name the prices' ${field} (a non-empty string)`);
    }
  }
  if (!/^\d{4}-\d{2}-\d{2}$/.test(obj.date as string)) {
    throw new Error(`'date' must be YYYY-MM-DD, got '${obj.date}'`);
  }
  for (const [section, fields] of Object.entries(NUMBER_FIELDS)) {
    const s = obj[section] as Record<string, unknown> | undefined;
    if (typeof s !== 'object' || s === null) throw new Error(`'${section}' is missing (an object of prices)`);
    for (const f of fields) {
      const n = s[f];
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || (f === 'chunkBytes' && n <= 0)) {
        throw new Error(`'${section}.${f}' must be a number of 0 or more, got ${JSON.stringify(n)}`);
      }
    }
  }
  const emr = obj.emr as Record<string, unknown>;
  if (typeof emr.instanceType !== 'string') throw new Error(`'emr.instanceType' must be a string`);
  const withSource = (section: string) => {
    const s = obj[section] as Record<string, unknown>;
    return { ...s, source: typeof s.source === 'string' ? s.source : '' };
  };
  return {
    region: obj.region as string,
    date: obj.date as string,
    currency: typeof obj.currency === 'string' ? obj.currency : 'USD',
    lambda: withSource('lambda') as unknown as PriceTable['lambda'],
    s3: withSource('s3') as unknown as PriceTable['s3'],
    sqs: withSource('sqs') as unknown as PriceTable['sqs'],
    flink: withSource('flink') as unknown as PriceTable['flink'],
    emr: withSource('emr') as unknown as PriceTable['emr'],
  };
}

/** The built-in table (cli/prices.json). */
export const DEFAULT_PRICES: PriceTable = parsePriceTable(defaultTable);

/** Reads and checks a price table file; the Error says what is wrong with it. */
export function readPriceTable(file: string): PriceTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file} is not JSON: ${(error as Error).message}`);
  }
  try {
    return parsePriceTable(parsed);
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message} (see cli/prices.json for the shape)`);
  }
}

/** What the deployment does around the batches (docs/DEPLOY.md, infra/sluice-pipeline.ts). */
export interface Deployment {
  /** The construct's `schedulerMemorySize` (MiB), default 1024; the recovery function has the same. */
  readonly schedulerMemoryMb: number;
  /** The construct's `partitionMemorySize` (MiB), default 1769. */
  readonly partitionMemoryMb: number;
  readonly architecture: 'arm64' | 'x86_64';
  /**
   * The construct's `alwaysOn` (default false): the scheduler never sleeps. Without it an idle
   * pipeline sleeps after `idleAfter` (functions/lib/sleep.ts) and an idle day is `sleepingDay`.
   */
  readonly alwaysOn: boolean;
  /**
   * A tick of a sleeping pipeline (functions/lib/sleep.ts): one GetQueueAttributes and return, no
   * lease, no batch. Its duration (measured on LocalStack, 2026-12-03, warm: median 18 ms, p90
   * 47 ms, the first 55 ms; in-region SQS answers in about as long), and its S3 GETs: a warm
   * container re-reads the marker once its knowledge is 15 minutes old (SleepMemory), 1 in 15.
   */
  readonly sleepingTickMs: number;
  readonly sleepingTickS3Get: number;
  /**
   * Cold starts of the scheduler and recovery functions a sleeping day (a tick a minute keeps a
   * container warm; Lambda still recycles them; assumed 24 each): each bills its init
   * (`coldStartInitMs`, billed since 2025-08) and reads the marker once.
   */
  readonly sleepingColdStartsPerDay: number;
  readonly coldStartInitMs: number;
  /**
   * A recovery run of a sleeping pipeline: it reads the marker (one GET) and returns
   * (functions/recovery.ts), no LIST of the lease or of the catalog.
   */
  readonly sleepingRecoveryMs: number;
  readonly sleepingRecoveryS3: { readonly putList: number; readonly get: number };
  /**
   * The fraction of the day a scheduler invocation runs. Today 1: the lease holder runs batch after
   * batch until its timeout, and the next minute tick takes over.
   */
  readonly schedulerDutyCycle: number;
  /** EventBridge wakes the scheduler every minute: 1,440 invocations a day. */
  readonly ticksPerDay: number;
  /**
   * A tick of an awake pipeline, which finds the lease held: its duration and its S3 requests
   * (read the lease, try to take it).
   */
  readonly tickMs: number;
  readonly tickS3: { readonly putList: number; readonly get: number };
  /** The recovery function, every 5 minutes: 288 a day. Duration and S3 requests (list batches, read manifests). */
  readonly recoveryPerDay: number;
  readonly recoveryMs: number;
  readonly recoveryS3: { readonly putList: number; readonly get: number };
  /**
   * Store requests a batch makes that its manifest does not count: the driver's fence checks
   * before its first write and its manifest (GETs of the lease epoch after its own, fencing.ts)
   * and, on `sluice run`, the lease renewals (a LIST and a PUT every third of the lease); manifests
   * count the rest, the clean-up too. Set from `npm run bench:cost` (store counters minus manifests).
   */
  readonly uncountedPerBatch: { readonly putList: number; readonly get: number };
  /** SqsSource's long-poll loops (`parallelPolls`, default 4) and an empty receive's round trip. */
  readonly parallelPolls: number;
  readonly pollRoundTripMs: number;
  /** Bytes of one event on the queue (the bench's lines are about 100 bytes). */
  readonly eventBytes: number;
  /** The producer buffers events this long and sends them packed (SqsProducer, `sluice send`). */
  readonly producerFlushMs: number;
  /** What a day's writes cost in storage: kept this many days (the input retention, `retainInputs`). */
  readonly storageDays: number;
}

export const DEFAULT_DEPLOYMENT: Deployment = {
  schedulerMemoryMb: 1024,
  partitionMemoryMb: 1769,
  architecture: 'arm64',
  alwaysOn: false,
  sleepingTickMs: 50,
  sleepingTickS3Get: 1 / 15,
  sleepingColdStartsPerDay: 48,
  coldStartInitMs: 500,
  sleepingRecoveryMs: 50,
  sleepingRecoveryS3: { putList: 0, get: 1 },
  schedulerDutyCycle: 1,
  ticksPerDay: 1440,
  tickMs: 100,
  tickS3: { putList: 1, get: 1 },
  recoveryPerDay: 288,
  recoveryMs: 500,
  recoveryS3: { putList: 2, get: 2 },
  // measured by bench:cost (2026-12-03): 2 GETs a batch with data (the fence checks before the
  // batch and before its manifest), 1 an idle batch; no PUT or LIST once renewals are left out
  uncountedPerBatch: { putList: 0, get: 2 },
  parallelPolls: 4,
  pollRoundTripMs: 20,
  eventBytes: 100,
  producerFlushMs: 1000,
  storageDays: 7,
};

const DAY_MS = 86_400_000;
/** Days in the month S3 and Flink storage are priced by (730 hours). */
const DAYS_PER_MONTH = 730 / 24;

/** What one batch did, on average: from manifests, or projected for another rate. */
export interface BatchProfile {
  /** Input events of the batch. */
  readonly events: number;
  readonly put: number;
  readonly list: number;
  readonly get: number;
  readonly delete: number;
  /** Partition function invocations (task attempts). */
  readonly invocations: number;
  /** Partition function duration, summed over the batch's task attempts (ms). */
  readonly taskMs: number;
  readonly bytesWritten: number;
}

export const EMPTY_PROFILE: BatchProfile = {
  events: 0,
  put: 0,
  list: 0,
  get: 0,
  delete: 0,
  invocations: 0,
  taskMs: 0,
  bytesWritten: 0,
};

/** One manifest as a profile. */
export function profileOf(m: BatchManifest): BatchProfile {
  return {
    events: m.input.records,
    put: m.requests.put,
    list: m.requests.list,
    get: m.requests.get,
    delete: m.requests.delete,
    // a stage run in the driver (a tiny batch, issue 11) invokes no partition function: its time is
    // the scheduler's, which the model prices as running anyway
    invocations: m.stages.some((s) => s.inDriver)
      ? m.stages.reduce((n, s) => n + (s.inDriver ? 0 : s.attempts), 0)
      : m.tasks.attempts,
    taskMs: m.stages.reduce((n, s) => n + (s.inDriver ? 0 : s.taskDurationsMs.reduce((a, b) => a + b, 0)), 0),
    bytesWritten: m.requests.bytesWritten,
  };
}

/** The mean of profiles (EMPTY_PROFILE for none). */
export function meanProfile(profiles: readonly BatchProfile[]): BatchProfile {
  if (profiles.length === 0) return EMPTY_PROFILE;
  const sum = (f: keyof BatchProfile) => profiles.reduce((n, p) => n + p[f], 0) / profiles.length;
  return {
    events: sum('events'),
    put: sum('put'),
    list: sum('list'),
    get: sum('get'),
    delete: sum('delete'),
    invocations: sum('invocations'),
    taskMs: sum('taskMs'),
    bytesWritten: sum('bytesWritten'),
  };
}

/**
 * The profile of a batch of `events` events, from measured profiles (one of them ideally of an empty
 * batch): linear between the two measured points around it, extrapolated from the last two beyond
 * them (requests then stay as measured; durations and bytes grow with the events). Never below 0.
 */
export function projectProfile(measured: readonly BatchProfile[], events: number): BatchProfile {
  const points = [...measured].sort((a, b) => a.events - b.events);
  if (points.length === 0) throw new Error('projectProfile: no measured batch');
  const exact = points.find((p) => p.events === events);
  if (exact) return { ...exact };
  if (points.length === 1) return { ...points[0]!, events };
  let lo = points[0]!;
  let hi = points[1]!;
  for (let i = 1; i < points.length; i++) {
    lo = points[i - 1]!;
    hi = points[i]!;
    if (events <= hi.events) break;
  }
  const f = (events - lo.events) / (hi.events - lo.events);
  const beyond = events > hi.events;
  const lerp = (k: keyof BatchProfile, grows: boolean) =>
    Math.max(0, beyond && !grows ? hi[k] : lo[k] + (hi[k] - lo[k]) * f);
  return {
    events,
    put: lerp('put', false),
    list: lerp('list', false),
    get: lerp('get', false),
    delete: lerp('delete', false),
    invocations: lerp('invocations', false),
    taskMs: lerp('taskMs', true),
    bytesWritten: lerp('bytesWritten', true),
  };
}

/** What one batch's own requests and tasks cost (S3 requests, partition invocations and duration). */
export function batchCost(
  p: BatchProfile,
  prices: PriceTable = DEFAULT_PRICES,
  deployment: Deployment = DEFAULT_DEPLOYMENT,
): { s3Usd: number; lambdaUsd: number; totalUsd: number } {
  const s3Usd =
    ((p.put + p.list) / 1000) * prices.s3.putCopyPostListPer1000 +
    (p.get / 1000) * prices.s3.getAndOtherPer1000;
  const lambdaUsd =
    (p.invocations / 1e6) * prices.lambda.requestPerMillion +
    (p.taskMs / 1000) * (deployment.partitionMemoryMb / 1024) * gbSecond(prices, deployment);
  return { s3Usd, lambdaUsd, totalUsd: s3Usd + lambdaUsd };
}

function gbSecond(prices: PriceTable, deployment: Deployment): number {
  return deployment.architecture === 'arm64' ? prices.lambda.gbSecondArm64 : prices.lambda.gbSecondX86;
}

/**
 * ReceiveMessage requests SqsSource makes in one interval on an empty queue (aws/sqs-source.ts):
 * each of `parallelPolls` loops long-polls for whole seconds while more than a second (plus 150 ms)
 * is left before the deadline (the interval minus its margin, 20% between 50 ms and 2 s), then
 * short-polls once; loop 0 keeps short-polling every 100 ms (plus the round trip) until the deadline.
 */
export function idleReceivesPerInterval(intervalMs: number, parallelPolls = 4, roundTripMs = 20): number {
  const margin = Math.min(2_000, Math.max(50, intervalMs * 0.2));
  const deadline = Math.max(0, intervalMs - margin);
  let total = 0;
  for (let index = 0; index < parallelPolls; index++) {
    let t = 0;
    let first = true;
    for (;;) {
      const remaining = deadline - t;
      if (remaining <= 0 && !first) break;
      first = false;
      const waitSeconds = Math.max(0, Math.min(20, Math.floor((remaining - 150) / 1000)));
      total++;
      t += waitSeconds * 1000 + roundTripMs;
      if (waitSeconds < 1) {
        if (index > 0) break;
        t += Math.min(Math.max(0, deadline - t), 100);
      }
    }
  }
  return total;
}

/** SQS requests a day at a rate: receives (idle polls plus those that return messages), deletes, sends. */
export function sqsRequestsPerDay(
  eventsPerSecond: number,
  intervalMs: number,
  prices: PriceTable = DEFAULT_PRICES,
  deployment: Deployment = DEFAULT_DEPLOYMENT,
): { receive: number; delete: number; send: number } {
  const batchesPerDay = DAY_MS / intervalMs;
  const idle = idleReceivesPerInterval(intervalMs, deployment.parallelPolls, deployment.pollRoundTripMs);
  if (eventsPerSecond <= 0) return { receive: idle * batchesPerDay, delete: 0, send: 0 };
  const chunk = prices.sqs.chunkBytes;
  const maxMessage = 256 * 1024;
  // the producer: one flush per flush interval (fewer when events are rarer than that)
  const eventsPerDay = eventsPerSecond * 86_400;
  const flushesPerDay = Math.min(DAY_MS / deployment.producerFlushMs, eventsPerDay);
  const bytesPerFlush = (eventsPerDay / flushesPerDay) * deployment.eventBytes;
  const send = flushesPerDay * Math.ceil(bytesPerFlush / chunk);
  const messagesPerDay = flushesPerDay * Math.ceil(bytesPerFlush / maxMessage);
  // the scheduler: a receive returns up to 10 messages, billed per 64 KiB chunk; deletes 10 a request
  const bytesPerDay = eventsPerDay * deployment.eventBytes;
  const batchesWithData = Math.min(batchesPerDay, messagesPerDay);
  const messagesPerDataBatch = messagesPerDay / batchesWithData;
  const bytesPerDataBatch = bytesPerDay / batchesWithData;
  const receive =
    idle * batchesPerDay +
    batchesWithData * Math.max(Math.ceil(messagesPerDataBatch / 10), Math.ceil(bytesPerDataBatch / chunk));
  const del = batchesWithData * Math.ceil(messagesPerDataBatch / 10);
  return { receive, delete: del, send };
}

/** A day's cost by component (USD). */
export interface DailyCost {
  readonly intervalMs: number;
  readonly eventsPerSecond: number;
  /** The scheduler's duration (plus the ticks' and the recovery function's). */
  readonly schedulerUsd: number;
  /** The partition functions' duration. */
  readonly partitionUsd: number;
  /** Lambda requests: task invocations, ticks, recovery runs. */
  readonly lambdaRequestsUsd: number;
  readonly s3PutListUsd: number;
  readonly s3GetUsd: number;
  readonly s3StorageUsd: number;
  readonly sqsUsd: number;
  readonly totalUsd: number;
  /** The request counts behind the figures, per day. */
  readonly counts: {
    readonly batches: number;
    readonly invocations: number;
    readonly s3PutList: number;
    readonly s3Get: number;
    readonly sqs: {
      readonly receive: number;
      readonly delete: number;
      readonly send: number;
      /** GetQueueAttributes of sleeping ticks. */
      readonly attributes?: number;
    };
  };
}

/** A day at `eventsPerSecond`, every batch doing what `batch` says. */
export function dailyCost(
  batch: BatchProfile,
  intervalMs: number,
  eventsPerSecond: number,
  prices: PriceTable = DEFAULT_PRICES,
  deployment: Deployment = DEFAULT_DEPLOYMENT,
): DailyCost {
  if (!(intervalMs > 0)) throw new Error(`dailyCost: interval must be positive, got ${intervalMs}`);
  const batches = DAY_MS / intervalMs;
  const gbs = gbSecond(prices, deployment);
  const schedulerGb = deployment.schedulerMemoryMb / 1024;
  const schedulerSeconds =
    86_400 * deployment.schedulerDutyCycle +
    (deployment.ticksPerDay * deployment.tickMs + deployment.recoveryPerDay * deployment.recoveryMs) / 1000;
  const schedulerUsd = schedulerSeconds * schedulerGb * gbs;
  const partitionUsd = batches * (batch.taskMs / 1000) * (deployment.partitionMemoryMb / 1024) * gbs;
  const invocations = batches * batch.invocations + deployment.ticksPerDay + deployment.recoveryPerDay;
  const lambdaRequestsUsd = (invocations / 1e6) * prices.lambda.requestPerMillion;
  const s3PutList =
    batches * (batch.put + batch.list + deployment.uncountedPerBatch.putList) +
    deployment.ticksPerDay * deployment.tickS3.putList +
    deployment.recoveryPerDay * deployment.recoveryS3.putList;
  const s3Get =
    batches * (batch.get + deployment.uncountedPerBatch.get) +
    deployment.ticksPerDay * deployment.tickS3.get +
    deployment.recoveryPerDay * deployment.recoveryS3.get;
  const s3PutListUsd = (s3PutList / 1000) * prices.s3.putCopyPostListPer1000;
  const s3GetUsd = (s3Get / 1000) * prices.s3.getAndOtherPer1000;
  const storedGb = (batches * batch.bytesWritten * deployment.storageDays) / 1e9;
  const s3StorageUsd = (storedGb * prices.s3.storageGbMonth) / DAYS_PER_MONTH;
  const sqs = sqsRequestsPerDay(eventsPerSecond, intervalMs, prices, deployment);
  const sqsUsd = ((sqs.receive + sqs.delete + sqs.send) / 1e6) * prices.sqs.requestPerMillion;
  return {
    intervalMs,
    eventsPerSecond,
    schedulerUsd,
    partitionUsd,
    lambdaRequestsUsd,
    s3PutListUsd,
    s3GetUsd,
    s3StorageUsd,
    sqsUsd,
    totalUsd:
      schedulerUsd + partitionUsd + lambdaRequestsUsd + s3PutListUsd + s3GetUsd + s3StorageUsd + sqsUsd,
    counts: { batches, invocations, s3PutList, s3Get, sqs },
  };
}

/**
 * An idle day of a sleeping pipeline (the construct's default, `alwaysOn` off): no batch, no poll;
 * every minute tick asks the queue (one GetQueueAttributes) and returns (`sleepingTickMs`, a GET of
 * the marker now and then: `sleepingTickS3Get`), some start cold; the recovery function still runs
 * every 5 minutes and returns after reading the marker. The `idleAfter` (2 minutes) awake before it falls asleep is left
 * out: the day is asleep from its start.
 */
export function sleepingDay(
  intervalMs: number,
  prices: PriceTable = DEFAULT_PRICES,
  deployment: Deployment = DEFAULT_DEPLOYMENT,
): DailyCost {
  const gbs = gbSecond(prices, deployment);
  const ticks = deployment.ticksPerDay;
  const cold = Math.min(deployment.sleepingColdStartsPerDay, ticks);
  const recoveries = deployment.recoveryPerDay;
  const schedulerSeconds =
    (ticks * deployment.sleepingTickMs +
      cold * deployment.coldStartInitMs +
      recoveries * deployment.sleepingRecoveryMs) /
    1000;
  const schedulerUsd = schedulerSeconds * (deployment.schedulerMemoryMb / 1024) * gbs;
  const invocations = ticks + recoveries;
  const lambdaRequestsUsd = (invocations / 1e6) * prices.lambda.requestPerMillion;
  const s3PutList = recoveries * deployment.sleepingRecoveryS3.putList;
  const s3Get = ticks * deployment.sleepingTickS3Get + cold + recoveries * deployment.sleepingRecoveryS3.get;
  const s3PutListUsd = (s3PutList / 1000) * prices.s3.putCopyPostListPer1000;
  const s3GetUsd = (s3Get / 1000) * prices.s3.getAndOtherPer1000;
  // GetQueueAttributes is an SQS request like any other
  const sqs = { receive: 0, delete: 0, send: 0, attributes: ticks };
  const sqsUsd = (ticks / 1e6) * prices.sqs.requestPerMillion;
  return {
    intervalMs,
    eventsPerSecond: 0,
    schedulerUsd,
    partitionUsd: 0,
    lambdaRequestsUsd,
    s3PutListUsd,
    s3GetUsd,
    s3StorageUsd: 0,
    sqsUsd,
    totalUsd: schedulerUsd + lambdaRequestsUsd + s3PutListUsd + s3GetUsd + sqsUsd,
    counts: { batches: 0, invocations, s3PutList, s3Get, sqs },
  };
}

/** USD per million events for a day's cost at its rate (undefined at rate 0). */
export function perMillionEvents(day: DailyCost): number | undefined {
  return day.eventsPerSecond > 0 ? (day.totalUsd / (day.eventsPerSecond * 86_400)) * 1e6 : undefined;
}

/** The three figures `sluice status` prints, from a store's manifests. */
export interface CostFigures {
  readonly prices: { readonly region: string; readonly date: string };
  readonly deployment: Deployment;
  readonly batches: number;
  readonly emptyBatches: number;
  /** Events per second over the batches' span. */
  readonly eventsPerSecond: number;
  /** The mean batch, and the mean empty batch (the batch with fewest events when none was empty). */
  readonly meanBatch: BatchProfile;
  readonly idleBatch: BatchProfile;
  readonly idleBasis: 'empty batches' | 'smallest batch';
  readonly observed: DailyCost;
  /** An idle day as the deployment has it: asleep (`sleepingDay`), or awake with `alwaysOn`. */
  readonly idle: DailyCost;
  readonly idleAsleep: DailyCost;
  /** An idle day with `alwaysOn`: empty batches (the idle batch), the scheduler and polls all day. */
  readonly idleAlwaysOn: DailyCost;
  readonly perMillionEventsUsd: number | undefined;
}

export function costFigures(
  manifests: readonly BatchManifest[],
  intervalMs: number,
  prices: PriceTable = DEFAULT_PRICES,
  deployment: Deployment = DEFAULT_DEPLOYMENT,
): CostFigures {
  const profiles = manifests.map(profileOf);
  const empty = profiles.filter((p) => p.events === 0);
  const smallest = [...profiles].sort((a, b) => a.events - b.events)[0];
  const idleBatch = empty.length > 0 ? meanProfile(empty) : { ...(smallest ?? EMPTY_PROFILE), events: 0 };
  const meanBatch = meanProfile(profiles);
  const eventsPerSecond = profiles.length > 0 ? (meanBatch.events * 1000) / intervalMs : 0;
  const observed = dailyCost(meanBatch, intervalMs, eventsPerSecond, prices, deployment);
  const idleAlwaysOn = dailyCost(idleBatch, intervalMs, 0, prices, deployment);
  const idleAsleep = sleepingDay(intervalMs, prices, deployment);
  return {
    prices: { region: prices.region, date: prices.date },
    deployment,
    batches: profiles.length,
    emptyBatches: empty.length,
    eventsPerSecond,
    meanBatch,
    idleBatch,
    idleBasis: empty.length > 0 || profiles.length === 0 ? 'empty batches' : 'smallest batch',
    observed,
    idle: deployment.alwaysOn ? idleAlwaysOn : idleAsleep,
    idleAsleep,
    idleAlwaysOn,
    perMillionEventsUsd: perMillionEvents(observed),
  };
}

/** The always-on alternatives of docs/DEPLOY.md, per day. */
export function alternativesPerDay(prices: PriceTable = DEFAULT_PRICES): {
  flink: { kpus: number; usd: number };
  emr: { nodes: number; instanceType: string; usd: number };
} {
  const appKpus = 1;
  const kpus = appKpus + 1; // plus the orchestration KPU every application is billed
  const flink =
    kpus * prices.flink.kpuHour * 24 +
    (appKpus * prices.flink.storageGbPerKpu * prices.flink.runningStorageGbMonth) / DAYS_PER_MONTH;
  const nodes = 3;
  const emr = nodes * (prices.emr.ec2Hour + prices.emr.emrHour) * 24;
  return { flink: { kpus, usd: flink }, emr: { nodes, instanceType: prices.emr.instanceType, usd: emr } };
}

/** Dollars for a line of text: $0.0012, $1.23, $270. */
export function formatUsd(x: number): string {
  if (x === 0) return '$0';
  if (x >= 100) return `$${x.toFixed(0)}`;
  if (x >= 1) return `$${x.toFixed(2)}`;
  return `$${x.toPrecision(2)}`;
}
