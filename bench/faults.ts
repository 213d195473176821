/**
 * `npm run bench:faults`: the D-Streams paper's fault experiments at this machine's scale, on
 * the embedded runner (worker threads, a directory store). Not a test: it prints tables and
 * writes bench/results/<date>-faults.json and latest-faults.json.
 *
 *   1. Stragglers: WordCount batch processing time normally, with one 10x straggler per batch,
 *      and with the straggler and speculative copies.
 *   2. Recovery at 50% load: the processing time of the batch that loses a worker or a stored
 *      state partition, in batch intervals, and the intervals until the delay is back to normal.
 *   3. Backlog recovery: N closed batches re-run in parallel against one at a time.
 *   4. Checkpoint interval: processing time of a stateful pipeline by checkpointEvery.
 *   5. Overload (wall clock): input at twice the sustainable rate for 20 s (10 s with --quick),
 *      then at half of it, with the lag per batch until it is back under 2 intervals; and how long
 *      a closed backlog of 60 batches takes to catch up (bounded parallel chunks).
 *   6. The same two on LocalStack (bench/faults-localstack.ts: S3, SQS and the partition function
 *      on LocalStack, the driver in this process): overload at twice the sustainable rate, and a
 *      backlog of 60 intervals queued while no driver ran. Skipped, saying so, without LocalStack.
 *
 *   npm run bench:faults [-- --quick] [-- --only stragglers,recovery,backlog,checkpoints,overload,localstack]
 *     [-- --ls-rate <records/s>] [-- --ls-concurrency <n>] [-- --ls-backlog <batches>]
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type BatchManifest,
  BatchScheduler,
  type Invoker,
  type ReceivedBatch,
  type ReceiveRequest,
  type Source,
  type TaskSpec,
} from '../shared/index.ts';
import { DirectoryObjectStore } from '../shared/local/directory-store.ts';
import { defaultGenerate } from '../shared/local/embedded-runner.ts';
import { loadPipeline } from '../shared/local/load-pipeline.ts';
import { GeneratorSource } from '../shared/local/sources.ts';
import { WorkerPoolInvoker } from '../shared/local/worker-pool.ts';
import { formatRow, localStackOverload } from './faults-localstack.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'ls-rate': { type: 'string' },
    'ls-concurrency': { type: 'string' },
    'ls-backlog': { type: 'string' },
  },
});
/** A positive whole number option, or undefined; anything else stops the run naming the option. */
function positive(name: 'ls-rate' | 'ls-concurrency' | 'ls-backlog'): number | undefined {
  const raw = args[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`--${name} must be a whole number above 0, got '${raw}'\n`);
    process.exit(2);
  }
  return n;
}
const lsRate = positive('ls-rate');
const lsConcurrency = positive('ls-concurrency');
const lsBacklog = positive('ls-backlog');
const only = args.only?.split(',');
const wanted = (name: string) => !only || only.includes(name);
const quick = args.quick;
const WORKERS = 2;
const PARTITIONS = 4;
const INTERVAL = 1000;

interface Setup {
  module: string;
  workers?: number;
  rate: number;
  faults?: ConstructorParameters<typeof BatchScheduler>[1]['faults'];
  speculation?: boolean;
  checkpointEvery?: number;
  /** Wraps the invoker (to slow one task per batch, say). */
  wrap?: (inner: Invoker) => Invoker;
}

async function scheduler(setup: Setup) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-faults-'));
  const loaded = await loadPipeline(path.join(here, 'pipelines', setup.module), {
    batchIntervalMs: INTERVAL,
    partitions: PARTITIONS,
  });
  const store = new DirectoryObjectStore(dir);
  const pool = new WorkerPoolInvoker({
    pipelineModule: path.join(here, 'pipelines', setup.module),
    storeDir: dir,
    batchIntervalMs: INTERVAL,
    partitions: PARTITIONS,
    workers: setup.workers ?? WORKERS,
  });
  await pool.ready();
  const invoker = setup.wrap ? setup.wrap(pool) : pool;
  const s = new BatchScheduler(loaded.ctx, {
    store,
    invoker,
    sources: { input: new GeneratorSource({ ratePerSec: setup.rate, generate: defaultGenerate }) },
    clock: 'manual',
    zeroTimeMs: 0,
    lease: false,
    backpressure: false,
    faults: setup.faults,
    speculation: { enabled: setup.speculation !== false },
    checkpointEvery: setup.checkpointEvery,
  });
  return {
    s,
    close: async () => {
      await s.stop();
      await pool.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** Slows partition 0 of the first stage of every batch by `factor` (first attempt only). */
function oneStraggler(factor: number) {
  return (inner: Invoker): Invoker => ({
    concurrency: inner.concurrency,
    invoke: (spec: TaskSpec, o) =>
      inner.invoke(
        spec.stageId === 0 && spec.partition === 0 && spec.attempt === 0 && !spec.speculative
          ? { ...spec, inject: { slowFactor: factor } }
          : spec,
        o,
      ),
    close: () => inner.close(),
    describe: () => `straggler(${inner.describe()})`,
  });
}

async function batchTimes(setup: Setup, batches: number, warmup = 2): Promise<BatchManifest[]> {
  const { s, close } = await scheduler(setup);
  try {
    const all = await s.run({ numBatches: batches + warmup });
    return all.slice(warmup);
  } finally {
    await close();
  }
}

function log(text: string) {
  process.stderr.write(`${text}\n`);
}

async function stragglers(rate: number) {
  const n = quick ? 4 : 10;
  log(
    `stragglers: WordCount at ${rate} records/s, ${PARTITIONS} partitions, ${WORKERS} workers, ${n} batches each`,
  );
  const normal = median((await batchTimes({ module: 'wordcount.ts', rate }, n)).map((m) => m.processingMs));
  const slow = median(
    (await batchTimes({ module: 'wordcount.ts', rate, speculation: false, wrap: oneStraggler(10) }, n)).map(
      (m) => m.processingMs,
    ),
  );
  const spec = await batchTimes({ module: 'wordcount.ts', rate, wrap: oneStraggler(10) }, n);
  const withSpec = median(spec.map((m) => m.processingMs));
  const copies = spec.reduce((k, m) => k + m.tasks.speculative, 0);
  return {
    rate,
    normalMs: normal,
    stragglerMs: slow,
    stragglerWithSpeculationMs: withSpec,
    stragglerRatio: slow / normal,
    speculationRatio: withSpec / normal,
    speculativeCopies: copies,
    target: 'with speculation at most 1.3x normal (Spark Streaming in the paper: about 1.8x)',
    pass: withSpec / normal <= 1.3,
  };
}

/** The rate at which running WordCount's batches take half the interval (50% load). */
async function halfLoadRate(): Promise<number> {
  const probe = 40_000;
  const ms = median(
    (await batchTimes({ module: 'running-wordcount.ts', rate: probe }, 4)).map((m) => m.processingMs),
  );
  return Math.round((probe * (0.5 * INTERVAL)) / Math.max(1, ms) / 1000) * 1000;
}

async function recovery() {
  const n = quick ? 6 : 10;
  const at = 5; // the batch that suffers (after warm-up)
  const rate = await halfLoadRate();
  log(`recovery at 50% load: running WordCount (state) at ${rate} records/s`);
  const out: Record<string, unknown>[] = [];
  for (const kind of ['normal', 'killed worker', 'lost state partition'] as const) {
    const { s, close } = await scheduler({
      module: 'running-wordcount.ts',
      rate,
      wrap:
        kind === 'killed worker'
          ? (inner) => ({
              concurrency: inner.concurrency,
              invoke: (spec, o) =>
                inner.invoke(
                  spec.batchTimeMs === at * INTERVAL &&
                    spec.stageId === 0 &&
                    spec.partition === 0 &&
                    spec.attempt === 0
                    ? { ...spec, inject: { exit: true } }
                    : spec,
                  o,
                ),
              close: () => inner.close(),
              describe: () => 'kill',
            })
          : undefined,
    });
    try {
      const manifests: BatchManifest[] = [];
      for (let i = 1; i <= n; i++) {
        if (kind === 'lost state partition' && i === at) {
          // every partition of the previous batch's state is gone: batch `at` must recompute them
          for (let p = 0; p < PARTITIONS; p++)
            await s.store.delete(`rdd/${String((at - 1) * INTERVAL).padStart(15, '0')}/totals/${p}.blk`);
        }
        manifests.push(await s.runNextBatch());
      }
      const hit = manifests[at - 1]!;
      const others = manifests.filter((_, i) => i >= 2 && i !== at - 1).map((m) => m.processingMs);
      out.push({
        fault: kind,
        batchMs: hit.processingMs,
        normalMs: median(others),
        intervals: hit.processingMs / INTERVAL,
        recoveredWithinInterval: hit.processingMs <= INTERVAL,
        retries: hit.tasks.retries,
        recomputed: hit.tasks.recomputed,
      });
    } finally {
      await close();
    }
  }
  return out;
}

/**
 * The paper's comparison: recovering on one node (upstream backup: one worker re-runs the lost
 * batches one at a time) against parallel recovery (every worker, every batch at once).
 */
async function backlog(rate: number) {
  const n = quick ? 4 : 8;
  log(
    `backlog: ${n} closed running-WordCount batches at ${rate} records/s, one worker one batch at a time vs ${WORKERS} workers in parallel`,
  );
  const result = { oneAtATimeMs: 0, parallelMs: 0 };
  for (const parallel of [false, true]) {
    const { s, close } = await scheduler({
      module: 'running-wordcount.ts',
      rate,
      workers: parallel ? WORKERS : 1,
    });
    try {
      await s.closeBatches(n);
      const started = Date.now();
      if (parallel) await s.runBacklog(n);
      else for (let i = 0; i < n; i++) await s.runNextBatch();
      result[parallel ? 'parallelMs' : 'oneAtATimeMs'] = Date.now() - started;
    } finally {
      await close();
    }
  }
  return {
    batches: n,
    ...result,
    speedup: result.oneAtATimeMs / result.parallelMs,
    target: `close to ${WORKERS} (the workers)`,
  };
}

async function checkpoints(rate: number) {
  const n = quick ? 5 : 12;
  const rows: Record<string, number>[] = [];
  for (const every of [1, 5, 10, 50]) {
    const ms = (await batchTimes({ module: 'running-wordcount.ts', rate, checkpointEvery: every }, n)).map(
      (m) => m.processingMs,
    );
    rows.push({
      checkpointEvery: every,
      medianMs: median(ms),
      recordsPerSec: Math.round(rate / (median(ms) / 1000)),
    });
    log(`checkpointEvery ${every}: median ${median(ms)} ms`);
  }
  return rows;
}

/** A queue fed at `rateAt(batch time)` records/s: what the pipeline does not take waits (as in SQS). */
class QueueSource implements Source<string> {
  private seq = 0;
  private owed = 0;
  constructor(private readonly rateAt: (t: number) => number) {}
  async receive(request: ReceiveRequest): Promise<ReceivedBatch<string>> {
    if (typeof request.resumeFrom === 'number') this.seq = request.resumeFrom;
    this.owed += (this.rateAt(request.batchTimeMs) * request.intervalMs) / 1000;
    let n = Math.floor(this.owed);
    if (request.maxRecords !== undefined) n = Math.min(n, request.maxRecords);
    this.owed -= n;
    const records = new Array<string>(n);
    for (let i = 0; i < n; i++) records[i] = defaultGenerate(this.seq++);
    return { records, deadLetters: [], position: this.seq };
  }
  get queued(): number {
    return Math.floor(this.owed);
  }
  describe(): string {
    return 'queue';
  }
}

/**
 * Overload on the wall clock: 2x the sustainable rate for `overMs`, then half of it. Reports the
 * lag (end-to-end delay of each batch) and the records still queued, batch by batch, and how long
 * after the overload the lag is back under 2 intervals. Then a closed backlog of 60 batches.
 */
async function overload() {
  const overMs = quick ? 10_000 : 20_000;
  const afterMs = quick ? 15_000 : 25_000;
  const probe = 40_000;
  const ms = median(
    (await batchTimes({ module: 'wordcount.ts', rate: probe }, 4)).map((m) => m.processingMs),
  );
  const sustainable = Math.round((probe * INTERVAL) / Math.max(1, ms) / 1000) * 1000;
  log(
    `overload: WordCount, sustainable ~${sustainable} records/s; ${2 * sustainable}/s for ${overMs / 1000} s, then ${sustainable / 2}/s`,
  );
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-overload-'));
  const module = path.join(here, 'pipelines', 'wordcount.ts');
  const loaded = await loadPipeline(module, { batchIntervalMs: INTERVAL, partitions: PARTITIONS });
  const pool = new WorkerPoolInvoker({
    pipelineModule: module,
    storeDir: dir,
    batchIntervalMs: INTERVAL,
    partitions: PARTITIONS,
    workers: WORKERS,
  });
  await pool.ready();
  let start = 0;
  const source = new QueueSource((t) => (t - start < overMs ? 2 * sustainable : sustainable / 2));
  const rows: { t: number; records: number; lagMs: number; processingMs: number; queued: number }[] = [];
  const s = new BatchScheduler(loaded.ctx, {
    store: new DirectoryObjectStore(dir),
    invoker: pool,
    sources: { input: source },
    clock: 'wall',
    lease: false,
    onBatch: (m) =>
      rows.push({
        t: (m.batchTimeMs - start) / 1000,
        records: m.input.records,
        lagMs: m.totalDelayMs,
        processingMs: m.processingMs,
        queued: source.queued,
      }),
  });
  let backlog60: { batches: number; ratePerSec: number; catchUpMs: number; msPerBatch: number } | undefined;
  try {
    await s.start();
    start = s.nextBatchTimeMs;
    await s.run({ untilMs: start + overMs + afterMs });
    const worst = Math.max(...rows.map((r) => r.lagMs));
    const lastOver = rows.findLastIndex((r) => r.lagMs >= 2 * INTERVAL);
    const recoveredAt = lastOver >= 0 && lastOver + 1 < rows.length ? rows[lastOver + 1]!.t : undefined;
    for (const r of rows)
      log(
        `  t=${r.t.toFixed(0).padStart(3)} s  records ${String(r.records).padStart(7)}  lag ${String(r.lagMs).padStart(6)} ms  processing ${String(r.processingMs).padStart(5)} ms  queued ${r.queued}`,
      );
    await s.stop();
    // a closed backlog of 60 batches at half the sustainable rate, run in bounded chunks
    const bdir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-backlog60-'));
    const b = new BatchScheduler(loaded.ctx, {
      store: new DirectoryObjectStore(bdir),
      invoker: new WorkerPoolInvoker({
        pipelineModule: module,
        storeDir: bdir,
        batchIntervalMs: INTERVAL,
        partitions: PARTITIONS,
        workers: WORKERS,
      }),
      sources: { input: new QueueSource(() => sustainable / 2) },
      clock: 'manual',
      zeroTimeMs: 0,
      lease: false,
    });
    try {
      await b.closeBatches(60);
      const t0 = Date.now();
      await b.run({ numBatches: 60 });
      const took = Date.now() - t0;
      backlog60 = { batches: 60, ratePerSec: sustainable / 2, catchUpMs: took, msPerBatch: took / 60 };
      log(
        `  backlog of 60 batches (half load): caught up in ${took} ms (${(took / 60).toFixed(0)} ms per batch)`,
      );
    } finally {
      await b.stop();
      await b.invoker.close();
      await fs.rm(bdir, { recursive: true, force: true });
    }
    return {
      sustainablePerSec: sustainable,
      overloadMs: overMs,
      worstLagMs: worst,
      lagUnder2IntervalsAtS: recoveredAt ?? null,
      lagUnder2IntervalsAtEnd: (rows.at(-1)?.lagMs ?? 0) < 2 * INTERVAL,
      batches: rows,
      backlog60,
    };
  } finally {
    await pool.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const rate = quick ? 50_000 : 100_000;
const started = Date.now();
const results = {
  benchmark: 'faults',
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
  setup: { workers: WORKERS, partitions: PARTITIONS, intervalMs: INTERVAL },
  stragglers: wanted('stragglers') ? await stragglers(rate) : undefined,
  recovery: wanted('recovery') ? await recovery() : [],
  backlog: wanted('backlog') ? await backlog(rate) : undefined,
  checkpoints: wanted('checkpoints') ? await checkpoints(rate / 2) : [],
  overload: wanted('overload') ? await overload() : undefined,
  overloadLocalStack: wanted('localstack')
    ? await localStackOverload({
        quick,
        rate: lsRate,
        concurrency: lsConcurrency,
        backlogBatches: lsBacklog,
        log,
      })
    : undefined,
  loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
  elapsedMs: 0,
};
results.elapsedMs = Date.now() - started;

const st = results.stragglers;
if (st) {
  console.log('\nStragglers (WordCount, median batch processing time)');
  console.log(`  normal                         ${st.normalMs} ms`);
  console.log(`  one 10x straggler              ${st.stragglerMs} ms  (${st.stragglerRatio.toFixed(2)}x)`);
  console.log(
    `  straggler + speculation        ${st.stragglerWithSpeculationMs} ms  (${st.speculationRatio.toFixed(2)}x, ${st.speculativeCopies} copies) ${st.pass ? 'PASS' : 'FAIL'} (target <= 1.3x)`,
  );
}
console.log('\nRecovery at 50% load (running WordCount, 1 s interval)');
for (const r of results.recovery) {
  console.log(
    `  ${String(r.fault).padEnd(22)} batch ${r.batchMs} ms = ${(r.intervals as number).toFixed(2)} intervals (normal ${r.normalMs} ms) ${r.recoveredWithinInterval ? 'within one interval' : 'OVER one interval'}; retries ${r.retries}, recomputed ${r.recomputed}`,
  );
}
const b = results.backlog;
if (b) {
  console.log(
    `\nBacklog of ${b.batches} batches: one at a time ${b.oneAtATimeMs} ms, parallel ${b.parallelMs} ms, speedup ${b.speedup.toFixed(2)}x (${b.target})`,
  );
}
console.log('\nCheckpoint interval (running WordCount, median processing time)');
for (const c of results.checkpoints)
  console.log(
    `  every ${String(c.checkpointEvery).padStart(2)} batches: ${c.medianMs} ms (${c.recordsPerSec} records/s)`,
  );

const o = results.overload;
if (o) {
  console.log(
    `\nOverload (WordCount, wall clock): 2x the sustainable ${o.sustainablePerSec} records/s for ${o.overloadMs / 1000} s: ` +
      `worst lag ${o.worstLagMs} ms; lag under 2 intervals again at t=${o.lagUnder2IntervalsAtS ?? '-'} s ` +
      `(${o.lagUnder2IntervalsAtEnd ? 'and at the end' : 'NOT at the end'})`,
  );
  if (o.backlog60)
    console.log(
      `  backlog of 60 batches: ${o.backlog60.catchUpMs} ms (${o.backlog60.msPerBatch.toFixed(0)} ms per batch)`,
    );
}

const ls = results.overloadLocalStack;
if (ls && 'skipped' in ls) console.log(`\nOverload and backlog on LocalStack: skipped: ${ls.skipped}`);
else if (ls) {
  const lo = ls.overload;
  console.log(
    `\nOverload on LocalStack (${ls.mode}; ${ls.partitions} partitions, task concurrency ${ls.taskConcurrency}): ` +
      `2x the sustainable ${lo.sustainablePerSec} records/s for ${lo.overloadMs / 1000} s: worst lag ${lo.worstLagMs} ms; ` +
      `lag under 2 intervals again at t=${lo.lagUnder2IntervalsAtS ?? '-'} s (${lo.lagUnder2IntervalsAtEnd ? 'and at the end' : 'NOT at the end'}); throttled ${lo.throttled}`,
  );
  const bl = ls.backlog;
  console.log(
    `  backlog of ${bl.pendingAtStart} batches (${bl.recordsQueued} records queued): lag under 2 intervals after ${bl.caughtUpMs ?? 'NEVER'} ms ` +
      `(${bl.batchesToCatchUp} batches, ${bl.catchUpBatches} closed to catch up), worst lag ${bl.worstLagMs} ms, ` +
      `task concurrency ${bl.concurrency ? `${bl.concurrency.min}-${bl.concurrency.max}` : '-'}, throttled ${bl.throttled}; ` +
      `closing the catch-up batches took ${bl.closingMs} ms in all, median ${bl.recordsPerCatchUpBatch} records per catch-up batch`,
  );
  for (const r of bl.batchRows.slice(0, bl.batchesToCatchUp + 3)) console.log(formatRow(r));
}
console.log(`\nload average at the end: ${results.loadAverage.join(' ')}`);

if (ls && !('skipped' in ls)) {
  // the LocalStack figures on their own as well (they are slow to make: a partial run writes them)
  const name = `${results.date.replace(/[:.]/g, '-').slice(0, 19)}-faults-localstack${quick ? '-quick' : ''}.json`;
  const doc = `${JSON.stringify({ benchmark: 'faults-localstack', date: results.date, machine: results.machine, loadAverage: results.loadAverage, ...ls }, null, 2)}\n`;
  await fs.mkdir(path.join(here, 'results'), { recursive: true });
  await fs.writeFile(path.join(here, 'results', name), doc);
  await fs.writeFile(
    path.join(here, 'results', `latest-faults-localstack${quick ? '-quick' : ''}.json`),
    doc,
  );
  console.log(`written: bench/results/${name}`);
}
if (only) process.exit(0); // a partial run writes no results file (but the LocalStack figures above)
await fs.mkdir(path.join(here, 'results'), { recursive: true });
const file = path.join(
  here,
  'results',
  `${results.date.replace(/[:.]/g, '-').slice(0, 19)}-faults${quick ? '-quick' : ''}.json`,
);
await fs.writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
await fs.writeFile(
  path.join(here, 'results', `latest-faults${quick ? '-quick' : ''}.json`),
  `${JSON.stringify(results, null, 2)}\n`,
);
console.log(`\nwritten: ${path.relative(process.cwd(), file)}`);
process.exit(0);
