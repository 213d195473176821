/**
 * `npm run bench`: the sustainable input rate of WordCount and Grep (100-byte lines) on the
 * embedded runner, at 1 s and 100 ms batch intervals, on 1 and 2 worker threads, next to a bare
 * single-threaded loop doing the same work in the same run. See bench/README.md.
 *
 *   npm run bench                       full run (about 10-15 minutes)
 *   npm run bench -- --quick            smoke run (fewer batches and trials, a few minutes)
 *   npm run bench -- --only grep --intervals 100 --workers 2
 *   npm run bench -- --only wordcount --intervals 1000 --workers 2 --rate 150000
 *                                       one trial at a fixed rate, no search (for profiling)
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { percentile } from '../cli/format.ts';
import {
  type BareResult,
  type BareThreadsResult,
  type Job,
  lineStats,
  measureBare,
  measureBareThreads,
} from './bare.ts';
import { fmt, searchParams, searchSustainable, warmupOf } from './search.ts';
import { type BatchSample, runTrial, type TrialResult } from './trial.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Targets of the issue, records/s, for 2 workers; 100 ms batches need half of the 1 s figure. */
const TARGET_1S_2W: Record<Job, number> = { wordcount: 200_000, grep: 1_000_000 };
const TARGET_WORKERS = 2;

/** Rate of the fixed-cost trials: next to nothing, so processing time is the per-batch overhead. */
const FLOOR_RATE = 100;

function targetOf(job: Job, intervalMs: number, workers: number): number | undefined {
  if (workers !== TARGET_WORKERS) return undefined;
  if (intervalMs === 1000) return TARGET_1S_2W[job];
  if (intervalMs === 100) return TARGET_1S_2W[job] / 2;
  return undefined;
}

// ---- options -------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    intervals: { type: 'string', default: '1000,100' },
    workers: { type: 'string', default: '1,2' },
    partitions: { type: 'string', default: '2' },
    batches: { type: 'string' },
    rate: { type: 'string' },
    'start-rate': { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    'no-floor': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  process.stdout.write(`npm run bench -- [options]
  --quick              fewer measured batches (10) and search steps: a smoke run of a few minutes
  --only <jobs>        wordcount, grep or both (comma separated; default both)
  --intervals <ms,..>  batch intervals (default 1000,100)
  --workers <n,..>     worker threads (default 1,2)
  --partitions <n>     partitions of the input and of reduceByKey (default 2)
  --batches <n>        measured batches per full trial (default 30, quick 10)
  --rate <r>           run one trial per configuration at this rate (records/s) instead of searching
  --start-rate <r>     first rate of the search (default: from the bare loop or the previous result)
  --no-floor           skip the fixed-cost trials (${FLOOR_RATE} records/s at the shortest interval)
  --no-write           do not write JSON under bench/results/
`);
  process.exit(0);
}

function list(text: string, what: string): number[] {
  const out = text.split(',').map((s) => Number(s.trim()));
  for (const n of out) {
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${what}: expected integers, got '${text}'`);
  }
  return out;
}

const jobs: Job[] = (args.only ?? 'wordcount,grep').split(',').map((j) => {
  const job = j.trim();
  if (job !== 'wordcount' && job !== 'grep')
    throw new Error(`--only: unknown job '${job}' (wordcount, grep)`);
  return job;
});
const intervals = list(args.intervals!, 'intervals');
const workerCounts = list(args.workers!, 'workers');
const partitions = list(args.partitions!, 'partitions')[0]!;
const quick = args.quick!;
const measuredBatches = args.batches ? list(args.batches, 'batches')[0]! : quick ? 10 : 30;
const fixedRate = args.rate ? Number(args.rate) : undefined;
const startRateArg = args['start-rate'] ? Number(args['start-rate']) : undefined;

const search = searchParams(quick, measuredBatches);

// ---- helpers -------------------------------------------------------------------------------

const mean = (values: readonly number[]) =>
  values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;

const log = (text: string) => process.stderr.write(`${text}\n`);
const tty = process.stderr.isTTY;
let statusShown = false;
function status(text: string): void {
  if (!tty) return;
  process.stderr.write(`\r\x1b[2K${text}`);
  statusShown = true;
}
function clearStatus(): void {
  if (tty && statusShown) process.stderr.write('\r\x1b[2K');
  statusShown = false;
}

interface Config {
  readonly job: Job;
  readonly intervalMs: number;
  readonly workers: number;
}

const label = (c: Config) => `${c.job} ${c.intervalMs}ms ${c.workers}w`;

// ---- summaries -----------------------------------------------------------------------------

interface Summary {
  readonly batches: number;
  readonly recordsPerBatch: number;
  /**
   * Records/s one would sustain if every batch took the median processing time (records per batch
   * over p50, ignoring fixed costs): how far the tail, not the median, limits the sustainable rate.
   */
  readonly p50CapacityPerSec: number;
  readonly processingMs: { p50: number; p99: number; max: number; mean: number };
  readonly schedulingDelayMs: { p50: number; max: number };
  /**
   * Modeled arrival-to-commit latency: records of a batch arrive evenly over its interval and
   * are committed when the batch's manifest is written.
   */
  readonly latencyMs: { p50: number; p99: number };
  /**
   * Mean milliseconds per batch of the driver's phases. processingMs covers receive, tasks and
   * outputs (`other` is processing minus those); `commit` and clean-up come after it:
   * `afterProcessing` is the time from the end of processing to the batch's onBatch (commit +
   * clean-up of older batches).
   */
  readonly phasesMs: Record<string, number>;
  readonly stages: {
    id: number;
    kind: string;
    operators: string;
    tasks: number;
    meanMs: number;
    meanTaskMs: number;
    records: number;
    bytes: number;
  }[];
  readonly requestsPerBatch: Record<string, number>;
  /** Speculative task copies (stragglers) per batch. */
  readonly speculativePerBatch: number;
}

function summarize(samples: readonly BatchSample[], intervalMs: number): Summary {
  const processing = samples.map((s) => s.processingMs);
  const phaseNames = ['receive', 'tasks', 'outputs', 'commit'];
  for (const s of samples)
    for (const k of Object.keys(s.phases)) if (!phaseNames.includes(k)) phaseNames.push(k);
  const phasesMs: Record<string, number> = {};
  for (const k of phaseNames) phasesMs[k] = mean(samples.map((s) => s.phases[k] ?? 0));
  // processingMs ends before the commit phase (the manifest write), so `other` leaves commit out
  phasesMs.other = mean(
    samples.map(
      (s) => s.processingMs - Object.entries(s.phases).reduce((a, [k, v]) => (k === 'commit' ? a : a + v), 0),
    ),
  );
  // after processing: commit, clean-up of old batches, forget(), until onBatch
  phasesMs.afterProcessing = mean(samples.map((s) => s.wallMs - s.processingMs));
  const latencies: number[] = [];
  for (const s of samples) {
    for (let k = 0; k < 100; k++) {
      const arrival = s.batchTimeMs - intervalMs + ((k + 0.5) / 100) * intervalMs;
      latencies.push(s.batchTimeMs + s.totalDelayMs - arrival);
    }
  }
  const stageIds = [...new Set(samples.flatMap((s) => s.stages.map((st) => st.id)))].sort((a, b) => a - b);
  const stages = stageIds.map((id) => {
    const all = samples.flatMap((s) => s.stages.filter((st) => st.id === id));
    const first = all[0]!;
    return {
      id,
      kind: first.kind,
      operators: first.operators,
      tasks: first.tasks,
      meanMs: mean(all.map((st) => st.durationMs)),
      meanTaskMs: mean(all.map((st) => st.meanTaskMs)),
      records: mean(all.map((st) => st.records)),
      bytes: mean(all.map((st) => st.bytes)),
    };
  });
  const requestsPerBatch: Record<string, number> = {};
  for (const k of ['get', 'put', 'list', 'delete', 'bytesRead', 'bytesWritten'] as const) {
    requestsPerBatch[k] = mean(samples.map((s) => s.requests[k]));
  }
  const recordsPerBatch = mean(samples.map((s) => s.records));
  return {
    batches: samples.length,
    recordsPerBatch,
    p50CapacityPerSec: Math.round((recordsPerBatch * 1000) / Math.max(1, percentile(processing, 0.5))),
    processingMs: {
      p50: percentile(processing, 0.5),
      p99: percentile(processing, 0.99),
      max: Math.max(...processing),
      mean: mean(processing),
    },
    schedulingDelayMs: {
      p50: percentile(
        samples.map((s) => s.schedulingDelayMs),
        0.5,
      ),
      max: Math.max(...samples.map((s) => s.schedulingDelayMs)),
    },
    latencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) },
    phasesMs,
    stages,
    speculativePerBatch: mean(samples.map((s) => s.speculative)),
    requestsPerBatch,
  };
}

// ---- trials and the search ------------------------------------------------------------------

interface TrialRecord {
  readonly kind: 'screen' | 'full' | 'fixed' | 'floor';
  readonly rate: number;
  readonly passed: boolean;
  readonly reason?: string;
  readonly warmupBatches: number;
  readonly measuredBatches: number;
  readonly maxProcessingMs: number;
  readonly p50ProcessingMs: number;
  /** Measured batches whose processing took the interval or longer. */
  readonly overInterval: number;
  readonly elapsedMs: number;
  readonly firstBatchMs?: number;
  readonly wordsPerLine?: number;
}

async function trial(
  config: Config,
  rate: number,
  kind: TrialRecord['kind'],
  batches: number,
  n: number,
): Promise<{ record: TrialRecord; result: TrialResult }> {
  const judge = kind !== 'floor';
  const { minWarmup, maxWarmup } = warmupOf(config.intervalMs, quick);
  const prefix = `[${label(config)}] trial ${n} (${kind}) ${fmt(rate)}/s`;
  const result = await runTrial({
    job: config.job,
    intervalMs: config.intervalMs,
    workers: config.workers,
    partitions,
    rate,
    measuredBatches: batches,
    minWarmup,
    maxWarmup,
    judge,
    onBatch: ({ index, warm, measured, sample }) =>
      status(
        `${prefix}: ${warm ? `warm-up ${index}` : `batch ${measured}/${batches}`} ` +
          `${fmt(sample.records)} records, ${sample.processingMs} ms`,
      ),
  });
  clearStatus();
  const processing = result.measured.map((s) => s.processingMs);
  const record: TrialRecord = {
    kind,
    rate,
    passed: result.passed,
    ...(result.reason !== undefined ? { reason: result.reason } : {}),
    warmupBatches: result.warmupBatches,
    measuredBatches: result.measured.length,
    maxProcessingMs: processing.length ? Math.max(...processing) : Number.NaN,
    p50ProcessingMs: percentile(processing, 0.5),
    overInterval: processing.filter((p) => p >= config.intervalMs).length,
    elapsedMs: Math.round(result.elapsedMs),
    ...(result.firstBatchMs !== undefined ? { firstBatchMs: result.firstBatchMs } : {}),
    ...(result.wordsPerLine !== undefined ? { wordsPerLine: result.wordsPerLine } : {}),
  };
  log(
    `${prefix}: ${judge ? (result.passed ? 'PASS' : 'FAIL') : 'observed'} max ${fmt(record.maxProcessingMs)} ms, p50 ${fmt(record.p50ProcessingMs)} ms ` +
      `over ${record.measuredBatches} batches (+${record.warmupBatches} warm-up)` +
      `${judge ? '' : `, ${record.overInterval} over the interval`}` +
      `${result.reason ? ` - ${result.reason}` : ''} [${(result.elapsedMs / 1000).toFixed(1)} s]`,
  );
  return { record, result };
}

interface ConfigResult extends Config {
  readonly partitions: number;
  readonly target?: number;
  /** Highest rate that passed a full trial (0 when none did). */
  readonly sustainableRate: number;
  /** Lowest rate seen failing above it (the search's upper bracket). */
  readonly failedAt?: number;
  readonly pass?: boolean;
  readonly bare: BareMeasurements;
  /** Sustainable rate over the single-threaded bare loop (the ratio the issue asks for). */
  readonly engineOverBare: number;
  /** Sustainable rate over the bare loop run on as many threads as workers (when workers > 1). */
  readonly engineOverBareThreads?: number;
  readonly atSustainable?: Summary;
  readonly trials: TrialRecord[];
  readonly elapsedMs: number;
}

interface BareMeasurements {
  /** Single-threaded bare loop, lines/s: the mean of the measurements before and after the trials. */
  readonly linesPerSec: number;
  readonly before: BareResult;
  readonly after: BareResult;
  /** The loop on `workers` threads at once (when workers > 1), before and after the trials. */
  readonly threads?: { n: number; linesPerSec: number; before: BareThreadsResult; after: BareThreadsResult };
}

async function measureBareAround<R>(
  config: Config,
  body: () => Promise<R>,
): Promise<{ bare: BareMeasurements; value: R }> {
  const single = () => measureBare(config.job);
  const threads = () =>
    config.workers > 1 ? measureBareThreads(config.job, config.workers) : Promise.resolve(undefined);
  const before = single();
  const threadsBefore = await threads();
  log(
    `[${label(config)}] bare loop: ${fmt(before.linesPerSec)} lines/s on 1 thread` +
      `${threadsBefore ? `, ${fmt(threadsBefore.linesPerSec)} lines/s on ${config.workers} threads at once` : ''}`,
  );
  const value = await body();
  const after = single();
  const threadsAfter = await threads();
  log(
    `[${label(config)}] bare loop after: ${fmt(after.linesPerSec)} lines/s on 1 thread` +
      `${threadsAfter ? `, ${fmt(threadsAfter.linesPerSec)} lines/s on ${config.workers} threads` : ''}`,
  );
  const bare: BareMeasurements = {
    linesPerSec: Math.round((before.linesPerSec + after.linesPerSec) / 2),
    before,
    after,
    ...(threadsBefore && threadsAfter
      ? {
          threads: {
            n: config.workers,
            linesPerSec: Math.round((threadsBefore.linesPerSec + threadsAfter.linesPerSec) / 2),
            before: threadsBefore,
            after: threadsAfter,
          },
        }
      : {}),
  };
  return { bare, value };
}

function ratios(rate: number, bare: BareMeasurements) {
  return {
    engineOverBare: rate / bare.linesPerSec,
    ...(bare.threads ? { engineOverBareThreads: rate / bare.threads.linesPerSec } : {}),
  };
}

/** The search of bench/search.ts with this run's trials; records every trial. */
async function findSustainable(config: Config, startRate: number) {
  const trials: TrialRecord[] = [];
  let n = 0;
  const { best, failedAt } = await searchSustainable(
    async (rate, kind, batches) => {
      const { record, result } = await trial(config, rate, kind, batches, ++n);
      trials.push(record);
      return result;
    },
    startRate,
    search,
  );
  return { best: best?.result, trials, failedAt };
}

// ---- main ----------------------------------------------------------------------------------

function machine() {
  const cpus = os.cpus();
  let commit: string | undefined = process.env.SLUICE_BENCH_COMMIT;
  let dirty: boolean | undefined;
  if (!commit)
    try {
      commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
      dirty =
        execFileSync('git', ['status', '--porcelain'], { cwd: here, encoding: 'utf8' }).trim().length > 0;
    } catch {}
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    availableParallelism: os.availableParallelism(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    totalMemMB: Math.round(os.totalmem() / 2 ** 20),
    freeMemMB: Math.round(os.freemem() / 2 ** 20),
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
    tmpdir: os.tmpdir(),
    ...(commit ? { commit, dirty } : {}),
  };
}

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells
    .map((r, ri) => {
      const line = r.map((c, i) =>
        i < 3 && i > 0 ? c.padStart(widths[i]!) : i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!),
      );
      return ri === 0
        ? `${line.join('  ')}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`
        : line.join('  ');
    })
    .join('\n');
}

interface FloorResult {
  readonly job: Job;
  readonly intervalMs: number;
  readonly workers: number;
  readonly rate: number;
  readonly passed: boolean;
  readonly summary?: Summary;
}

/** The fixed cost of a batch: a trial at FLOOR_RATE records/s, per job and worker count. */
async function measureFloors(): Promise<FloorResult[]> {
  const intervalMs = Math.min(...intervals);
  const out: FloorResult[] = [];
  for (const job of jobs) {
    for (const workers of workerCounts) {
      const config = { job, intervalMs, workers };
      const { result } = await trial(config, FLOOR_RATE, 'floor', quick ? 10 : 20, 1);
      out.push({
        job,
        intervalMs,
        workers,
        rate: FLOOR_RATE,
        passed: result.passed,
        ...(result.measured.length > 0 ? { summary: summarize(result.measured, intervalMs) } : {}),
      });
    }
  }
  return out;
}

function floorTable(floors: readonly FloorResult[]): string {
  const rows = [
    [
      'job',
      'interval',
      'workers',
      'proc p50 ms',
      'proc max ms',
      'receive',
      'tasks',
      'outputs',
      'commit',
      'after processing',
      'stages (ms; per task; tasks)',
      'store requests/batch',
    ],
    ...floors.map((f) => {
      const s = f.summary;
      const ph = s?.phasesMs ?? {};
      const req = s?.requestsPerBatch ?? {};
      return [
        f.job,
        `${f.intervalMs} ms`,
        String(f.workers),
        fmt(s?.processingMs.p50),
        fmt(s?.processingMs.max),
        fmt(ph.receive, 1),
        fmt(ph.tasks, 1),
        fmt(ph.outputs, 1),
        fmt(ph.commit, 1),
        fmt(ph.afterProcessing, 1),
        s
          ? s.stages
              .map(
                (st) =>
                  `${st.kind === 'shuffle' ? 'map' : 'result'}#${st.id} ${fmt(st.meanMs, 1)}; ${fmt(st.meanTaskMs, 1)}; ${st.tasks}`,
              )
              .join(' | ')
          : '-',
        s
          ? `${fmt(req.put, 1)} put, ${fmt(req.get, 1)} get, ${fmt(req.list, 1)} list, ${fmt(req.delete, 1)} delete`
          : '-',
      ];
    }),
  ];
  return `Fixed cost of a batch (${FLOOR_RATE} records/s; mean ms per batch):\n${pad(rows)}\n`;
}

function tables(results: readonly ConfigResult[]): string {
  const main = [
    [
      'job',
      'interval',
      'workers',
      'sustainable/s',
      'target/s',
      'pass',
      'bare 1t lines/s',
      'engine/bare',
      'bare Nt lines/s',
      'engine/bare Nt',
      'p50 capacity/s',
      'proc p50 ms',
      'proc p99 ms',
      'latency p50/p99 ms',
    ],
    ...results.map((r) => [
      r.job,
      `${r.intervalMs} ms`,
      String(r.workers),
      r.sustainableRate > 0
        ? fmt(r.sustainableRate)
        : `none (< ${fmt(Math.min(...r.trials.filter((t) => t.kind !== 'screen').map((t) => t.rate)))})`,
      fmt(r.target),
      r.pass === undefined ? '-' : r.pass ? 'PASS' : 'FAIL',
      fmt(r.bare.linesPerSec),
      r.engineOverBare.toFixed(3),
      r.bare.threads ? `${fmt(r.bare.threads.linesPerSec)} (${r.bare.threads.n}t)` : '-',
      r.engineOverBareThreads !== undefined ? r.engineOverBareThreads.toFixed(3) : '-',
      fmt(r.atSustainable?.p50CapacityPerSec),
      fmt(r.atSustainable?.processingMs.p50),
      fmt(r.atSustainable?.processingMs.p99),
      r.atSustainable ? `${fmt(r.atSustainable.latencyMs.p50)} / ${fmt(r.atSustainable.latencyMs.p99)}` : '-',
    ]),
  ];
  const phases = [
    [
      'job',
      'interval',
      'workers',
      'records/batch',
      'receive',
      'tasks',
      'outputs',
      'other',
      'processing',
      'commit',
      'after processing',
      'stage means (ms; per task)',
    ],
    ...results.map((r) => {
      const s = r.atSustainable;
      const ph = s?.phasesMs ?? {};
      const share = (k: string) =>
        s ? `${fmt(ph[k], 1)} (${fmt((100 * (ph[k] ?? 0)) / s.processingMs.mean)}%)` : '-';
      return [
        r.job,
        `${r.intervalMs} ms`,
        String(r.workers),
        fmt(s?.recordsPerBatch),
        share('receive'),
        share('tasks'),
        share('outputs'),
        share('other'),
        fmt(s?.processingMs.mean, 1),
        fmt(ph.commit, 1),
        fmt(ph.afterProcessing, 1),
        s
          ? s.stages
              .map(
                (st) =>
                  `${st.kind === 'shuffle' ? 'map' : 'result'}#${st.id} ${fmt(st.meanMs, 1)}; ${fmt(st.meanTaskMs, 1)}`,
              )
              .join(' | ')
          : '-',
      ];
    }),
  ];
  return `Sustainable rate (processing < interval for every measured batch); bare = the same work in a plain loop, 1t = one thread, Nt = as many threads as workers:\n${pad(main)}\n\nWhere time goes at the sustainable rate (mean ms per batch, share of processing; commit and clean-up come after processing: 'after processing' = commit + clean-up):\n${pad(phases)}\n`;
}

async function main(): Promise<void> {
  const started = performance.now();
  const startMachine = machine();
  const stats = lineStats(); // also builds the generator's line pool before any trial
  log(
    `sluice bench: ${startMachine.cpus} x ${startMachine.cpuModel}, node ${startMachine.node}, ` +
      `load ${startMachine.loadAverage.join(' ')}; ${quick ? 'quick' : 'full'} run, ${measuredBatches} measured batches per trial`,
  );
  log(
    `input: ${stats.bytesPerLine.toFixed(1)}-byte lines, ${stats.wordsPerLine.toFixed(2)} words each, ` +
      `grep pattern in ${(stats.grepMatchShare * 100).toFixed(2)}% of them; partitions ${partitions}`,
  );
  const configs: Config[] = [];
  for (const job of jobs)
    for (const intervalMs of intervals)
      for (const workers of workerCounts) configs.push({ job, intervalMs, workers });

  const results: ConfigResult[] = [];
  for (const config of configs) {
    const t0 = performance.now();
    if (fixedRate !== undefined) {
      const { bare, value } = await measureBareAround(config, () =>
        trial(config, fixedRate, 'fixed', measuredBatches, 1),
      );
      const { record, result } = value;
      const sample = result.measured.length > 0 ? summarize(result.measured, config.intervalMs) : undefined;
      if (sample) log(JSON.stringify({ phasesMs: sample.phasesMs, stages: sample.stages }, null, 1));
      results.push({
        ...config,
        partitions,
        sustainableRate: record.passed ? fixedRate : 0,
        bare,
        ...ratios(record.passed ? fixedRate : 0, bare),
        ...(sample ? { atSustainable: sample } : {}),
        trials: [record],
        elapsedMs: Math.round(performance.now() - t0),
      });
      continue;
    }
    const previous = results.filter((r) => r.job === config.job && r.sustainableRate > 0).at(-1);
    const { bare, value } = await measureBareAround(config, () => {
      const startRate =
        startRateArg ??
        (previous
          ? (previous.sustainableRate *
              (config.intervalMs >= previous.intervalMs ? 1 : 0.6) *
              config.workers) /
            previous.workers
          : measureBare(config.job, 500).linesPerSec * config.workers * 0.15);
      return findSustainable(config, Math.max(search.minRate, startRate));
    });
    const { best, trials, failedAt } = value;
    const target = targetOf(config.job, config.intervalMs, config.workers);
    const sustainableRate = best?.rate ?? 0;
    const result: ConfigResult = {
      ...config,
      partitions,
      ...(target !== undefined ? { target, pass: sustainableRate >= target } : {}),
      sustainableRate,
      ...(failedAt !== undefined ? { failedAt } : {}),
      bare,
      ...ratios(sustainableRate, bare),
      ...(best ? { atSustainable: summarize(best.measured, config.intervalMs) } : {}),
      trials,
      elapsedMs: Math.round(performance.now() - t0),
    };
    results.push(result);
    log(
      `[${label(config)}] sustainable ${fmt(sustainableRate)}/s (fails at ${fmt(failedAt)}/s), ` +
        `${(result.engineOverBare * 100).toFixed(1)}% of the bare loop; ${trials.length} trials in ${(result.elapsedMs / 1000).toFixed(0)} s`,
    );
  }

  const floors = fixedRate === undefined && !args['no-floor'] ? await measureFloors() : [];
  const text = tables(results) + (floors.length > 0 ? `\n${floorTable(floors)}` : '');
  process.stdout.write(`\n${text}`);
  const elapsedMs = Math.round(performance.now() - started);
  process.stdout.write(`\n${results.length} configurations in ${(elapsedMs / 60_000).toFixed(1)} min\n`);

  if (!args['no-write'] && fixedRate === undefined) {
    const now = new Date();
    const stamp = now.toISOString().slice(0, 19).replace(/:/g, '-');
    const suffix = quick ? '-quick' : '';
    const doc = {
      benchmark: 'throughput',
      date: now.toISOString(),
      mode: quick ? 'quick' : 'full',
      elapsedMs,
      machine: { ...startMachine, loadAverageAtEnd: os.loadavg().map((l) => Number(l.toFixed(2))) },
      method: {
        sustainable:
          'highest generator rate (records/s) at which every measured batch had processing < interval, scheduling delay < interval and no backlog, after warm-up',
        measuredBatches,
        screenBatches: search.screenBatches,
        fullTrials: search.fullTrials,
        precision: search.precision,
        warmup: Object.fromEntries(intervals.map((i) => [i, warmupOf(i, quick)])),
        partitions,
        clock: 'wall',
        store: 'directory store in os.tmpdir()',
        latency: 'modeled: records arrive evenly over the interval, latency = commit time - arrival',
        bare: 'single-threaded loop over the same lines in the same process, median of 65,536-line chunks, measured before and after each configuration (mean reported); for workers > 1 also the loop on as many worker threads at once',
      },
      input: stats,
      targets: {
        oneSecondTwoWorkers: TARGET_1S_2W,
        hundredMsTwoWorkers: { wordcount: TARGET_1S_2W.wordcount / 2, grep: TARGET_1S_2W.grep / 2 },
      },
      results,
      floors,
      table: text,
    };
    const dir = path.join(here, 'results');
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, `${stamp}-throughput${suffix}.json`);
    const body = `${JSON.stringify(doc, null, 2)}\n`;
    await fs.writeFile(file, body);
    await fs.writeFile(path.join(dir, `latest-throughput${suffix}.json`), body);
    log(`wrote ${path.relative(process.cwd(), file)} and latest-throughput${suffix}.json`);
  }
}

await main();
