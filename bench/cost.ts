/**
 * `npm run bench:cost`: what a pipeline costs, from counts. Runs WordCount (examples/wordcount.ts,
 * 2 partitions, print and saveAsJsonLines) on the embedded runner idle and at a few rates, and
 * prints per batch the store requests (GET/PUT/LIST/DELETE) and task invocations its manifests
 * count, next to the driver store's own request counters (CountingObjectStore, over the whole run),
 * and the cost model's figures (cli/cost.ts): per day, idle per day, per million events. Then the
 * table of docs/DEPLOY.md: 0, 10, 1,000 and 100,000 events/s at 1 s and 10 s intervals, projected
 * from the measured batches, beside an always-on Flink application and a 3-node EMR cluster.
 *
 * Counts, not timings: they do not depend on the machine's load. (Task durations, priced as the
 * partition function's duration, are timings; on a loaded machine they overstate, and they are a
 * small part of the cost.)
 *
 *   npm run bench:cost                      # 0, 10, 1000 events/s, 60 s each
 *   npm run bench:cost -- --quick           # 15 s each
 *   npm run bench:cost -- --rates 0,10 --seconds 30 --no-write
 *
 * Writes bench/results/<stamp>-cost[-quick].json and .md, and latest-cost[-quick].json and .md.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  alternativesPerDay,
  type BatchProfile,
  DEFAULT_DEPLOYMENT,
  DEFAULT_PRICES,
  dailyCost,
  formatUsd,
  meanProfile,
  perMillionEvents,
  profileOf,
  projectProfile,
  sleepingDay,
} from '../cli/cost.ts';
import type { BatchManifest } from '../shared/index.ts';
import { DirectoryObjectStore } from '../shared/local/directory-store.ts';
import { runEmbedded } from '../shared/local/embedded-runner.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const PIPELINE = path.join(here, '..', 'examples', 'wordcount.ts');
const WARMUP_BATCHES = 2;
const INTERVAL_MS = 1000;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rates: { type: 'string', default: '0,10,1000' },
    seconds: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
});
const quick = args.quick === true;
const seconds = args.seconds !== undefined ? Number(args.seconds) : quick ? 15 : 60;
const rates = String(args.rates)
  .split(',')
  .map((r) => Number(r.trim()));
for (const r of rates) {
  if (!Number.isFinite(r) || r < 0) throw new Error(`--rates: '${args.rates}' must be numbers of 0 or more`);
}
if (!Number.isFinite(seconds) || seconds < 5)
  throw new Error(`--seconds must be 5 or more, got ${args.seconds}`);

const log = (text: string) => process.stderr.write(`${text}\n`);

/**
 * Every request to a directory store in this process, driver and tasks alike (the run uses
 * in-process tasks, workers 0): the store's own request counters, beside what the manifests count.
 */
const storeCounts = { get: 0, put: 0, list: 0, delete: 0 };
/**
 * The share of those on `lease/` that the scheduler Lambda does not make: `sluice run` renews its
 * lease every third of its duration (a LIST and a PUT); the Lambda holds it to its deadline.
 */
const renewalCounts = { put: 0, list: 0 };
{
  const proto = DirectoryObjectStore.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const count = (method: string, kind: keyof typeof storeCounts) => {
    const original = proto[method]!;
    proto[method] = function (this: unknown, ...a: unknown[]) {
      storeCounts[kind]++;
      if ((kind === 'put' || kind === 'list') && String(a[0]).startsWith('lease/')) renewalCounts[kind]++;
      return original.apply(this, a);
    };
  };
  count('get', 'get');
  count('put', 'put');
  count('putIfAbsent', 'put');
  count('list', 'list');
  count('delete', 'delete');
}

interface RateResult {
  readonly rate: number;
  readonly batches: number;
  readonly measuredBatches: number;
  /** Mean over the measured batches (after the warm-up), from their manifests. */
  readonly perBatch: BatchProfile & { readonly bytesRead: number };
  /** The store's own counters over the measured batches (driver and tasks, clean-up included), per batch. */
  readonly storeCountersPerBatch: { get: number; put: number; list: number; delete: number };
  /**
   * Store requests per batch that no manifest counts (fence checks before a batch and before its
   * manifest; lease renewals), and of those the renewals (`sluice run` only, not the Lambda).
   */
  readonly outsideManifestsPerBatch: { get: number; put: number; list: number; delete: number };
  readonly renewalsPerBatch: { put: number; list: number };
  /** What the scheduler Lambda would make outside the manifests: the above less the renewals. */
  readonly uncountedOnAwsPerBatch: { putList: number; get: number };
  readonly costPerDayUsd: number;
  readonly perMillionEventsUsd: number | undefined;
  readonly breakdown: Record<string, number>;
}

async function measure(rate: number): Promise<RateResult> {
  const storeDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-cost-'));
  const seen: BatchManifest[] = [];
  let windowStart: typeof storeCounts | undefined;
  let renewalStart: typeof renewalCounts | undefined;
  try {
    const { manifests } = await runEmbedded({
      pipelineModule: PIPELINE,
      storeDir,
      batchIntervalMs: INTERVAL_MS,
      partitions: 2,
      workers: 0,
      // idle: an HTTP source on a free port that nobody sends to
      source: rate > 0 ? 'generator' : 'http:0',
      ...(rate > 0 ? { rate } : {}),
      durationMs: seconds * 1000,
      stopWhenExhausted: false,
      printer: () => {},
      onBatch: (m) => {
        seen.push(m);
        // onBatch runs after the commit and the clean-up: the window covers whole batches
        if (seen.length === WARMUP_BATCHES) {
          windowStart = { ...storeCounts };
          renewalStart = { ...renewalCounts };
        }
        if (process.stderr.isTTY) process.stderr.write(`\r  rate ${rate}/s: ${seen.length} batches`);
      },
    });
    if (process.stderr.isTTY) process.stderr.write('\n');
    const windowEnd = { ...storeCounts };
    const renewalEnd = { ...renewalCounts };
    const measured = manifests.slice(WARMUP_BATCHES);
    if (measured.length === 0) throw new Error(`rate ${rate}: no batch after the warm-up`);
    const profile = meanProfile(measured.map(profileOf));
    const bytesRead = measured.reduce((n, m) => n + m.requests.bytesRead, 0) / measured.length;
    const start = windowStart ?? { get: 0, put: 0, list: 0, delete: 0 };
    const per = (k: keyof typeof storeCounts) => (windowEnd[k] - start[k]) / measured.length;
    const store = { get: per('get'), put: per('put'), list: per('list'), delete: per('delete') };
    const outside = {
      get: store.get - profile.get,
      put: store.put - profile.put,
      list: store.list - profile.list,
      delete: store.delete - profile.delete,
    };
    const r0 = renewalStart ?? { put: 0, list: 0 };
    const renewals = {
      put: (renewalEnd.put - r0.put) / measured.length,
      list: (renewalEnd.list - r0.list) / measured.length,
    };
    const uncountedOnAws = {
      putList: outside.put + outside.list - renewals.put - renewals.list,
      get: outside.get,
    };
    // priced as the Lambda would make them: the manifests' requests plus what they do not count
    const day = dailyCost(profile, INTERVAL_MS, (profile.events * 1000) / INTERVAL_MS, DEFAULT_PRICES, {
      ...DEFAULT_DEPLOYMENT,
      alwaysOn: true,
      uncountedPerBatch: uncountedOnAws,
    });
    return {
      rate,
      batches: manifests.length,
      measuredBatches: measured.length,
      perBatch: { ...profile, bytesRead },
      storeCountersPerBatch: store,
      outsideManifestsPerBatch: outside,
      renewalsPerBatch: renewals,
      uncountedOnAwsPerBatch: uncountedOnAws,
      costPerDayUsd: day.totalUsd,
      perMillionEventsUsd: perMillionEvents(day),
      breakdown: {
        scheduler: day.schedulerUsd,
        tasks: day.partitionUsd,
        lambdaRequests: day.lambdaRequestsUsd,
        s3PutList: day.s3PutListUsd,
        s3Get: day.s3GetUsd,
        s3Storage: day.s3StorageUsd,
        sqs: day.sqsUsd,
      },
    };
  } finally {
    await fs.rm(storeDir, { recursive: true, force: true });
  }
}

async function localstack(): Promise<string> {
  try {
    const res = await fetch('http://127.0.0.1:4566/_localstack/health', {
      signal: AbortSignal.timeout(2000),
    });
    if (!res.ok) return `skipped: LocalStack health answered ${res.status}`;
    return 'skipped: LocalStack is up, but bench:cost measures the embedded runner only (the deployed stack counts the same requests per batch in its manifests: sluice status --bucket <BucketName>)';
  } catch {
    return 'skipped: LocalStack is not up (http://127.0.0.1:4566/_localstack/health)';
  }
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

const n1 = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));

function machine() {
  let commit: string | undefined;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
  } catch {}
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    node: process.version,
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
    ...(commit ? { commit } : {}),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const startMachine = machine();
  log(`bench:cost: WordCount (examples/wordcount.ts), 2 partitions, 1 s interval, ${seconds} s per rate`);
  const results: RateResult[] = [];
  for (const rate of rates) results.push(await measure(rate));
  const ls = await localstack();

  const measuredTable = table(
    [
      'events/s',
      'batches',
      'GET',
      'PUT',
      'LIST',
      'DELETE',
      'invocations',
      'task ms',
      'store counters GET/PUT/LIST/DEL',
      'uncounted on AWS PUT+LIST/GET',
      'per day',
      'per million events',
    ],
    results.map((r) => [
      String(r.rate),
      `${r.measuredBatches} (+${r.batches - r.measuredBatches})`,
      n1(r.perBatch.get),
      n1(r.perBatch.put),
      n1(r.perBatch.list),
      n1(r.perBatch.delete),
      n1(r.perBatch.invocations),
      n1(r.perBatch.taskMs),
      [
        r.storeCountersPerBatch.get,
        r.storeCountersPerBatch.put,
        r.storeCountersPerBatch.list,
        r.storeCountersPerBatch.delete,
      ]
        .map(n1)
        .join('/'),
      `${n1(r.uncountedOnAwsPerBatch.putList)}/${n1(r.uncountedOnAwsPerBatch.get)}`,
      r.rate === 0
        ? `${formatUsd(sleepingDay(INTERVAL_MS).totalUsd)} asleep, ${formatUsd(r.costPerDayUsd)} alwaysOn`
        : formatUsd(r.costPerDayUsd),
      r.perMillionEventsUsd === undefined ? '-' : formatUsd(r.perMillionEventsUsd),
    ]),
  );

  // docs/DEPLOY.md's table: projected from the measured batches (by events per batch)
  const points = results.map((r) => r.perBatch);
  // what the Lambda would make outside the manifests: an idle batch's for no events, else the mean
  // over the rates with data
  const uncountedOf = (rs: readonly RateResult[]) =>
    rs.length === 0
      ? DEFAULT_DEPLOYMENT.uncountedPerBatch
      : {
          putList: rs.reduce((n, r) => n + r.uncountedOnAwsPerBatch.putList, 0) / rs.length,
          get: rs.reduce((n, r) => n + r.uncountedOnAwsPerBatch.get, 0) / rs.length,
        };
  const deploymentFor = (rate: number) => ({
    ...DEFAULT_DEPLOYMENT,
    alwaysOn: true,
    uncountedPerBatch: uncountedOf(results.filter((r) => (rate === 0 ? r.rate === 0 : r.rate > 0))),
  });
  const alt = alternativesPerDay();
  const projected: {
    intervalMs: number;
    rate: number;
    perDayUsd: number;
    perMillionUsd: number | undefined;
    alwaysOnPerDayUsd?: number;
  }[] = [];
  const deployRows: string[][] = [];
  for (const rate of [0, 10, 1000, 100_000]) {
    const row = [rate.toLocaleString('en-US')];
    for (const intervalMs of [1000, 10_000]) {
      const batch = projectProfile(points, (rate * intervalMs) / 1000);
      const day = dailyCost(batch, intervalMs, rate, DEFAULT_PRICES, deploymentFor(rate));
      const perMillionUsd = perMillionEvents(day);
      if (rate === 0) {
        // idle: asleep (the default), and awake all day with alwaysOn
        const asleep = sleepingDay(intervalMs).totalUsd;
        projected.push({
          intervalMs,
          rate,
          perDayUsd: asleep,
          perMillionUsd,
          alwaysOnPerDayUsd: day.totalUsd,
        });
        row.push(`${formatUsd(asleep)} (alwaysOn ${formatUsd(day.totalUsd)})`, '-');
        continue;
      }
      projected.push({ intervalMs, rate, perDayUsd: day.totalUsd, perMillionUsd });
      row.push(formatUsd(day.totalUsd), perMillionUsd === undefined ? '-' : formatUsd(perMillionUsd));
    }
    row.push(formatUsd(alt.flink.usd), formatUsd(alt.emr.usd));
    deployRows.push(row);
  }
  const deployTable = table(
    [
      'events/s',
      'Sluice 1 s: per day',
      'per million',
      'Sluice 10 s: per day',
      'per million',
      'Flink (1+1 KPU): per day',
      `EMR (3 × ${alt.emr.instanceType}): per day`,
    ],
    deployRows,
  );
  const idle = results.find((r) => r.rate === 0);
  const summary = [
    `prices: ${DEFAULT_PRICES.region} of ${DEFAULT_PRICES.date}; scheduler ${DEFAULT_DEPLOYMENT.schedulerMemoryMb} MiB all day while awake, partition function ${DEFAULT_DEPLOYMENT.partitionMemoryMb} MiB arm64`,
    idle
      ? `idle per day at 1 s: ${formatUsd(sleepingDay(INTERVAL_MS).totalUsd)} asleep (the default), ${formatUsd(idle.costPerDayUsd)} with alwaysOn`
      : 'idle: not measured (--rates without 0)',
    `uncounted by manifests, per batch on AWS (PUT+LIST/GET): ${results.map((r) => `${r.rate}/s ${n1(r.uncountedOnAwsPerBatch.putList)}/${n1(r.uncountedOnAwsPerBatch.get)}`).join(', ')}; renewals of sluice run's lease (not on AWS) left out`,
    ...results
      .filter((r) => r.rate > 0)
      .map((r) => `at ${r.rate} events/s, 1 s: ${formatUsd(r.perMillionEventsUsd ?? 0)} per million events`),
    `LocalStack: ${ls}`,
  ];
  const text = [
    'Measured (means per batch after the warm-up; GET..invocations from the manifests; store counters: every request, clean-up included):',
    '',
    measuredTable,
    '',
    'Projected (docs/DEPLOY.md):',
    '',
    deployTable,
    '',
    ...summary,
  ].join('\n');
  process.stdout.write(`${text}\n`);

  if (!args['no-write']) {
    const now = new Date();
    const stamp = now.toISOString().slice(0, 19).replace(/:/g, '-');
    const suffix = quick ? '-quick' : '';
    const doc = {
      benchmark: 'cost',
      date: now.toISOString(),
      mode: quick ? 'quick' : 'full',
      elapsedMs: Date.now() - started,
      machine: { ...startMachine, loadAverageAtEnd: os.loadavg().map((l) => Number(l.toFixed(2))) },
      method: {
        pipeline: 'examples/wordcount.ts (print + saveAsJsonLines), 2 partitions, 1 worker thread',
        intervalMs: INTERVAL_MS,
        secondsPerRate: seconds,
        warmupBatches: WARMUP_BATCHES,
        idleSource: 'http:0 (no sender)',
        prices: { region: DEFAULT_PRICES.region, date: DEFAULT_PRICES.date },
        deployment: DEFAULT_DEPLOYMENT,
      },
      results,
      projected,
      alternatives: alt,
      localstack: ls,
      table: text,
    };
    const dir = path.join(here, 'results');
    await fs.mkdir(dir, { recursive: true });
    const json = `${JSON.stringify(doc, null, 2)}\n`;
    const md = `# bench:cost ${now.toISOString()} (${quick ? 'quick' : 'full'})\n\n${text}\n`;
    await fs.writeFile(path.join(dir, `${stamp}-cost${suffix}.json`), json);
    await fs.writeFile(path.join(dir, `${stamp}-cost${suffix}.md`), md);
    await fs.writeFile(path.join(dir, `latest-cost${suffix}.json`), json);
    await fs.writeFile(path.join(dir, `latest-cost${suffix}.md`), md);
    log(`wrote bench/results/${stamp}-cost${suffix}.json and .md, latest-cost${suffix}.json and .md`);
  }
}

await main();
