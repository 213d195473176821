/**
 * `npm run bench:peers`: the sustainable rate of the benchmark's WordCount and Grep on Sluice
 * (embedded, 2 workers) and on its peers, measured in one run, engines in turn per configuration:
 *
 *   spark-receiver  Spark Streaming (Java DStreams), a custom Receiver generating the lines, local[3]
 *   spark-wal       the same with the receiver write-ahead log (spark.streaming.receiver.writeAheadLog.enable)
 *   spark-queue     queueStream of RDDs whose tasks generate the lines: no ingestion, local[2]
 *   flink           Flink DataStream, parallelism 2, keyed tumbling windows of the interval
 *
 * Same lines (the generator's pool, written to a file the JVMs read), same rule (every measured
 * batch processed within the interval, see bench/README.md), the same search (bench/search.ts).
 * The Java sources are in bench/peers/; their jars are resolved with Maven into bench/.cache/
 * (git-ignored) and the sources compiled with javac. Without Java or Maven the peers are skipped
 * and said so. See bench/README.md, "Peers".
 *
 *   npm run bench:peers                  full run
 *   npm run bench:peers -- --quick       smoke run (fewer batches and search steps)
 *   npm run bench:peers -- --only grep --intervals 1000 --engines sluice,spark-wal
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  promises as fs,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { percentile } from '../cli/format.ts';
import { demoLine } from '../shared/local/embedded-runner.ts';
import { type Job, lineStats, measureBare } from './bare.ts';
import { fmt, nice, searchParams, searchSustainable, warmupOf } from './search.ts';
import { runTrial } from './trial.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const cache = path.join(here, '.cache');
const peersDir = path.join(here, 'peers');

const ENGINES = ['sluice', 'spark-receiver', 'spark-wal', 'spark-queue', 'flink'] as const;
type Engine = (typeof ENGINES)[number];
const SLUICE_WORKERS = 2;
const PARTITIONS = 2;

// ---- options -------------------------------------------------------------------------------

function usage(message: string): never {
  process.stderr.write(`bench:peers: ${message} (see --help)\n`);
  process.exit(2);
}

let args: {
  quick?: boolean;
  only?: string;
  intervals?: string;
  engines?: string;
  batches?: string;
  'no-write'?: boolean;
  help?: boolean;
};
try {
  args = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string', default: 'wordcount,grep' },
      intervals: { type: 'string', default: '1000,100' },
      engines: { type: 'string', default: ENGINES.join(',') },
      batches: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (err) {
  usage((err as Error).message);
}

if (args.help) {
  process.stdout.write(`npm run bench:peers -- [options]
  --quick              fewer measured batches (10) and search steps: a smoke run
  --only <jobs>        wordcount, grep or both (default both)
  --intervals <ms,..>  batch intervals (default 1000,100)
  --engines <e,..>     ${ENGINES.join(', ')} (default all)
  --batches <n>        measured batches per full trial (default 30, quick 10)
  --no-write           do not write results under bench/results/
Needs a JDK (java, javac; 17 or newer) and Maven (mvn) for the peers; without them only Sluice runs.
Take figures on an idle machine: the rule is strict, one slow batch fails a rate.
`);
  process.exit(0);
}

function list<T extends string>(text: string, option: string, allowed: readonly T[]): T[] {
  const out = text.split(',').map((s) => s.trim());
  for (const v of out)
    if (!allowed.includes(v as T)) usage(`--${option}: unknown '${v}' (expected ${allowed.join(', ')})`);
  return out as T[];
}

const jobs = list(args.only!, 'only', ['wordcount', 'grep'] as const);
const engines = list(args.engines!, 'engines', ENGINES);
const intervals = args.intervals!.split(',').map((s) => {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n < 10) usage(`--intervals: expected milliseconds >= 10, got '${s}'`);
  return n;
});
const quick = args.quick!;
const measuredBatches = args.batches ? Number(args.batches) : quick ? 10 : 30;
if (!Number.isInteger(measuredBatches) || measuredBatches < 1)
  usage(`--batches: expected a positive integer, got '${args.batches}'`);

const search = searchParams(quick, measuredBatches);

// ---- helpers -------------------------------------------------------------------------------

const log = (text: string) => process.stderr.write(`${text}\n`);
const tty = process.stderr.isTTY;
function status(text: string): void {
  if (tty) process.stderr.write(`\r\x1b[2K${text}`);
}
function clearStatus(): void {
  if (tty) process.stderr.write('\r\x1b[2K');
}
function which(cmd: string): boolean {
  try {
    execFileSync(cmd, ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// ---- the peers: jars, classes, processes -----------------------------------------------------

/** JVM options Spark's launcher passes on Java 17 (module access for Spark and Kryo). */
const JVM_OPENS = [
  'java.lang',
  'java.lang.invoke',
  'java.lang.reflect',
  'java.io',
  'java.net',
  'java.nio',
  'java.util',
  'java.util.concurrent',
  'java.util.concurrent.atomic',
  'jdk.internal.ref',
  'sun.nio.ch',
  'sun.nio.cs',
  'sun.security.action',
  'sun.util.calendar',
].map((p) => `--add-opens=java.base/${p}=ALL-UNNAMED`);

type PeerFamily = 'spark' | 'flink';

interface PeerSpec {
  readonly family: PeerFamily;
  readonly main: string;
  readonly args: (job: Job, intervalMs: number, workDir: string) => string[];
}

const PEERS: Record<Exclude<Engine, 'sluice'>, PeerSpec> = {
  'spark-receiver': {
    family: 'spark',
    main: 'sluice.bench.SparkPeer',
    // one core runs the receiver, two the tasks
    args: (job, interval, work) => ['receiver', job, String(interval), 'local[3]', String(PARTITIONS), work],
  },
  'spark-wal': {
    family: 'spark',
    main: 'sluice.bench.SparkPeer',
    args: (job, interval, work) => ['wal', job, String(interval), 'local[3]', String(PARTITIONS), work],
  },
  'spark-queue': {
    family: 'spark',
    main: 'sluice.bench.SparkPeer',
    args: (job, interval, work) => ['queue', job, String(interval), 'local[2]', String(PARTITIONS), work],
  },
  flink: {
    family: 'flink',
    main: 'sluice.bench.FlinkPeer',
    args: (job, interval, work) => [job, String(interval), '2', work],
  },
};

const poolFile = path.join(cache, 'pool.txt');

/** Writes the generator's pool of lines for the JVMs (bench/peers/common/Lines.java). */
async function writePool(): Promise<void> {
  const body = `${Array.from({ length: 65_536 }, (_, i) => demoLine(i)).join('\n')}\n`;
  const current = existsSync(poolFile) ? await fs.readFile(poolFile, 'utf8') : '';
  if (current !== body) await fs.writeFile(poolFile, body);
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * Resolves the family's jars with Maven (cached: bench/.cache/m2, re-resolved when the pom
 * changes) and compiles the sources with javac (when they changed). Returns the classpath.
 */
function build(family: PeerFamily): string {
  const pom = path.join(peersDir, family, 'pom.xml');
  const cpFile = path.join(cache, `${family}.classpath`);
  const stale = (file: string, since: number) => !existsSync(file) || statSync(file).mtimeMs < since;
  if (stale(cpFile, statSync(pom).mtimeMs)) {
    log(`[${family}] resolving jars with Maven into bench/.cache/m2 (first run: a few hundred MB)...`);
    execFileSync(
      'mvn',
      [
        '-B',
        '-q',
        `-Dmaven.repo.local=${path.join(cache, 'm2')}`,
        '-f',
        pom,
        'dependency:build-classpath',
        `-Dmdep.outputFile=${cpFile}`,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
  }
  const jars = readFileSync(cpFile, 'utf8').trim();
  const classes = path.join(cache, family, 'classes');
  const stamp = path.join(classes, '.built');
  const sources = [path.join(peersDir, 'common'), path.join(peersDir, family)];
  const newest = Math.max(...sources.map(newestMtime), statSync(cpFile).mtimeMs);
  if (stale(stamp, newest)) {
    log(`[${family}] compiling bench/peers/${family}/*.java with javac`);
    mkdirSync(classes, { recursive: true });
    const files = sources.flatMap((d) =>
      readdirSync(d)
        .filter((f) => f.endsWith('.java'))
        .map((f) => path.join(d, f)),
    );
    execFileSync('javac', ['-nowarn', '-cp', jars, '-d', classes, ...files], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    writeFileSync(stamp, '');
  }
  return `${classes}${path.delimiter}${jars}`;
}
interface PeerBatch {
  readonly batchTimeMs: number;
  readonly records: number;
  readonly processingMs: number;
  readonly schedulingDelayMs: number;
  readonly backlog: number;
}

interface PeerTrialResult {
  readonly rate: number;
  readonly passed: boolean;
  readonly reason?: string;
  readonly warmupBatches: number;
  readonly elapsedMs: number;
  readonly measured: PeerBatch[];
  readonly warmup: PeerBatch[];
}

/** One JVM running the trials of one engine x job x interval, driven over stdin/stdout. */
class PeerProcess {
  private readonly child: ChildProcess;
  private waiting: ((msg: Record<string, unknown> | Error) => void) | undefined;
  private exited: Error | undefined;
  onBatch?: (msg: Record<string, unknown>) => void;
  version = '';

  private constructor(engine: Engine, cmd: string, argv: string[], logFile: string) {
    const logStream = createWriteStream(logFile);
    this.child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.pipe(logStream);
    const rl = createInterface({ input: this.child.stdout! });
    rl.on('line', (line) => {
      if (!line.startsWith('@@ ')) {
        logStream.write(`${line}\n`);
        return;
      }
      const msg = JSON.parse(line.slice(3)) as Record<string, unknown>;
      if ('batch' in msg) this.onBatch?.(msg);
      else this.resolve(msg);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = new Error(
        `${engine}: the JVM exited (${signal ?? code}); see ${path.relative(process.cwd(), logFile)}`,
      );
      this.resolve(this.exited);
    });
  }

  private resolve(msg: Record<string, unknown> | Error): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.(msg);
  }

  private next(): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      this.waiting = (msg) => (msg instanceof Error ? reject(msg) : resolve(msg));
    });
  }

  static async start(engine: Engine, cmd: string, argv: string[], logFile: string): Promise<PeerProcess> {
    const p = new PeerProcess(engine, cmd, argv, logFile);
    const ready = await p.next();
    p.version = String(ready.version ?? '');
    return p;
  }

  async trial(rate: number, batches: number, minWarmup: number, maxWarmup: number): Promise<PeerTrialResult> {
    const result = this.next();
    this.child.stdin!.write(`trial ${Math.round(rate)} ${batches} ${minWarmup} ${maxWarmup}\n`);
    return (await result) as unknown as PeerTrialResult;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await done;
    clearTimeout(timer);
  }
}

// ---- trials --------------------------------------------------------------------------------

interface TrialRecord {
  readonly kind: 'screen' | 'full';
  readonly rate: number;
  readonly passed: boolean;
  readonly reason?: string;
  readonly warmupBatches: number;
  readonly measuredBatches: number;
  readonly p50ProcessingMs: number;
  readonly maxProcessingMs: number;
  readonly elapsedMs: number;
}

interface EngineResult {
  readonly engine: Engine;
  readonly job: Job;
  readonly intervalMs: number;
  readonly version?: string;
  /** Highest rate that passed a full trial (0: none did; undefined: skipped). */
  readonly sustainableRate?: number;
  readonly failedAt?: number;
  readonly skipped?: string;
  readonly atSustainable?: {
    recordsPerBatch: number;
    processingMs: { p50: number; p99: number; max: number };
    schedulingDelayMs: { max: number };
  };
  readonly trials: TrialRecord[];
  readonly elapsedMs: number;
}

interface Sample {
  readonly records: number;
  readonly processingMs: number;
  readonly schedulingDelayMs: number;
}

function summarize(samples: readonly Sample[]): EngineResult['atSustainable'] {
  const proc = samples.map((s) => s.processingMs);
  return {
    recordsPerBatch: Math.round(samples.reduce((a, s) => a + s.records, 0) / Math.max(1, samples.length)),
    processingMs: { p50: percentile(proc, 0.5), p99: percentile(proc, 0.99), max: Math.max(...proc) },
    schedulingDelayMs: { max: Math.max(...samples.map((s) => s.schedulingDelayMs)) },
  };
}

type Uniform = {
  passed: boolean;
  reason?: string;
  warmupBatches: number;
  elapsedMs: number;
  measured: Sample[];
};

async function measureEngine(
  engine: Engine,
  job: Job,
  intervalMs: number,
  startRate: number,
  classpaths: Partial<Record<PeerFamily, string>>,
): Promise<EngineResult> {
  const t0 = performance.now();
  const trials: TrialRecord[] = [];
  const { minWarmup, maxWarmup } = warmupOf(intervalMs, quick);
  const tag = `[${engine} ${job} ${intervalMs}ms]`;
  let peer: PeerProcess | undefined;
  let workDir: string | undefined;
  let runOne: (rate: number, batches: number, prefix: string) => Promise<Uniform>;
  if (engine === 'sluice') {
    runOne = async (rate, batches, prefix) => {
      const r = await runTrial({
        job,
        intervalMs,
        workers: SLUICE_WORKERS,
        partitions: PARTITIONS,
        rate,
        measuredBatches: batches,
        minWarmup,
        maxWarmup,
        onBatch: ({ index, warm, measured, sample }) =>
          status(
            `${prefix}: ${warm ? `warm-up ${index}` : `batch ${measured}/${batches}`} ${fmt(sample.records)} records, ${sample.processingMs} ms`,
          ),
      });
      return { ...r, measured: [...r.measured] };
    };
  } else {
    const spec = PEERS[engine];
    const cp = classpaths[spec.family];
    if (!cp) return { engine, job, intervalMs, skipped: 'not built', trials, elapsedMs: 0 };
    const work = await fs.mkdtemp(path.join(os.tmpdir(), `sluice-peer-${engine}-`));
    workDir = work;
    const logFile = path.join(cache, 'logs', `${engine}-${job}-${intervalMs}.log`);
    await fs.mkdir(path.dirname(logFile), { recursive: true });
    try {
      peer = await PeerProcess.start(
        engine,
        'java',
        [
          '-Xmx3g',
          '-XX:+IgnoreUnrecognizedVMOptions',
          ...JVM_OPENS,
          '-Djdk.reflect.useDirectMethodHandle=false',
          '-Dio.netty.tryReflectionSetAccessible=true',
          `-Dsluice.pool=${poolFile}`,
          '-cp',
          cp,
          spec.main,
          ...spec.args(job, intervalMs, work),
        ],
        logFile,
      );
    } catch (err) {
      await fs.rm(work, { recursive: true, force: true });
      log(`${tag} could not start: ${(err as Error).message}`);
      return { engine, job, intervalMs, skipped: (err as Error).message, trials, elapsedMs: 0 };
    }
    const p = peer;
    runOne = async (rate, batches, prefix) => {
      p.onBatch = (m) =>
        status(
          `${prefix}: ${m.warm ? `warm-up ${m.batch}` : `batch ${m.measured}/${batches}`} ${fmt(m.records as number)} records, ${m.processingMs} ms`,
        );
      return p.trial(rate, batches, minWarmup, maxWarmup);
    };
    if (peer.version) log(`${tag} ${peer.version}, work directory ${work}`);
    // JIT and the engine's own start-up: one untimed trial at half the start rate, so that the
    // search's first screen does not fail on a cold JVM
    const w = await peer.trial(startRate / 2, 1, minWarmup, maxWarmup).catch((err: Error) => err);
    log(
      w instanceof Error
        ? `${tag} JVM warm-up failed: ${w.message}`
        : `${tag} JVM warm-up at ${fmt(startRate / 2)}/s: ${w.passed ? 'passed' : `failed (${w.reason})`}, not counted [${(w.elapsedMs / 1000).toFixed(1)} s]`,
    );
  }
  let n = 0;
  const stalls: number[] = [];
  let best: { rate: number; result: Uniform } | undefined;
  let failedAt: number | undefined;
  try {
    ({ best, failedAt } = await searchSustainable(
      async (rate, kind, batches) => {
        const prefix = `${tag} trial ${++n} (${kind}) ${fmt(rate)}/s`;
        const r = await runOne(rate, batches, prefix);
        clearStatus();
        if (r.reason?.startsWith('no batch completed')) stalls.push(rate);
        const proc = r.measured.map((s) => s.processingMs);
        trials.push({
          kind,
          rate,
          passed: r.passed,
          ...(r.reason ? { reason: r.reason } : {}),
          warmupBatches: r.warmupBatches,
          measuredBatches: r.measured.length,
          p50ProcessingMs: percentile(proc, 0.5),
          maxProcessingMs: proc.length ? Math.max(...proc) : Number.NaN,
          elapsedMs: Math.round(r.elapsedMs),
        });
        log(
          `${prefix}: ${r.passed ? 'PASS' : 'FAIL'} max ${fmt(Math.max(...proc))} ms, p50 ${fmt(percentile(proc, 0.5))} ms over ${r.measured.length} batches (+${r.warmupBatches} warm-up)${r.reason ? ` - ${r.reason}` : ''} [${(r.elapsedMs / 1000).toFixed(1)} s]`,
        );
        // a stalled engine (Spark's write-ahead log at 100 ms: no batch for 30 s, then a two-minute
        // stop) stalls again at half the rate: two stalls end its search instead of ten minutes more
        if (stalls.length >= 2) {
          throw new Error(
            `stalled at ${stalls.map((x) => `${fmt(x)}/s`).join(' and ')} (no batch completed for 30 s); search stopped`,
          );
        }
        return r;
      },
      startRate,
      search,
    ));
  } catch (err) {
    log(`${tag} failed: ${(err as Error).message}`);
    return {
      engine,
      job,
      intervalMs,
      skipped: (err as Error).message,
      trials,
      elapsedMs: Math.round(performance.now() - t0),
    };
  } finally {
    await peer?.close();
    if (workDir) await fs.rm(workDir, { recursive: true, force: true });
  }
  const result: EngineResult = {
    engine,
    job,
    intervalMs,
    ...(peer?.version ? { version: peer.version } : {}),
    sustainableRate: best?.rate ?? 0,
    ...(failedAt !== undefined ? { failedAt } : {}),
    ...(best ? { atSustainable: summarize(best.result.measured) } : {}),
    trials,
    elapsedMs: Math.round(performance.now() - t0),
  };
  log(`${tag} sustainable ${fmt(result.sustainableRate)}/s (fails at ${fmt(failedAt)}/s)`);
  return result;
}

/** The filesystem type a directory is on (tmpfs: in memory; the input then never meets a disk). */
function filesystemOf(dir: string): string {
  const r = spawnSync('df', ['--output=fstype', dir], { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout.trim().split('\n')[1]?.trim() ?? 'unknown') : 'unknown';
}

// ---- tables --------------------------------------------------------------------------------

interface ConfigResult {
  readonly job: Job;
  readonly intervalMs: number;
  /** Bare single-threaded loop, lines/s: mean of before and after the engines. */
  readonly bareLinesPerSec: number;
  readonly engines: EngineResult[];
}

const ENGINE_LABEL: Record<Engine, string> = {
  sluice: `Sluice, ${SLUICE_WORKERS} workers`,
  'spark-receiver': 'Spark receiver',
  'spark-wal': 'Spark receiver + WAL',
  'spark-queue': 'Spark queueStream',
  flink: 'Flink, p2',
};

/** 'none (< R)': no full trial passed; R is the lowest rate a full trial failed at. */
function noneBelow(e: EngineResult): string {
  const failed = e.trials.filter((t) => t.kind === 'full' && !t.passed).map((t) => t.rate);
  return failed.length > 0 ? `none (< ${fmt(Math.min(...failed))})` : 'none';
}

function markdownTable(results: readonly ConfigResult[]): string {
  const rows: string[][] = [
    [
      'job',
      'interval',
      'bare 1t lines/s',
      'engine',
      'sustainable/s',
      'engine/bare',
      'Sluice/engine',
      'proc p50 / max ms',
    ],
  ];
  for (const c of results) {
    const sluice = c.engines.find((e) => e.engine === 'sluice')?.sustainableRate;
    for (const e of c.engines) {
      const rate = e.sustainableRate;
      rows.push([
        c.job,
        `${c.intervalMs} ms`,
        fmt(c.bareLinesPerSec),
        ENGINE_LABEL[e.engine],
        e.skipped ? 'skipped' : rate ? fmt(rate) : noneBelow(e),
        rate ? (rate / c.bareLinesPerSec).toFixed(3) : '-',
        e.engine === 'sluice' || !rate || sluice === undefined ? '-' : `${(sluice / rate).toFixed(2)}x`,
        e.atSustainable
          ? `${fmt(e.atSustainable.processingMs.p50)} / ${fmt(e.atSustainable.processingMs.max)}`
          : '-',
      ]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    `| ${r.map((c, i) => (i < 1 || i === 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [
    line(rows[0]!),
    `|${widths.map((w, i) => (i < 1 || i === 3 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.slice(1).map(line),
  ].join('\n');
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const load = os.loadavg().map((l) => Number(l.toFixed(2)));
  const stats = lineStats();
  log(
    `sluice bench:peers: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, load ${load.join(' ')}; ${quick ? 'quick' : 'full'} run, ${measuredBatches} measured batches per trial; stores and work directories under ${os.tmpdir()} (${filesystemOf(os.tmpdir())})`,
  );
  if (load[0]! > os.cpus().length)
    log(
      `warning: load average ${load[0]} on ${os.cpus().length} cores: the figures will be noisy; take them on an idle machine`,
    );

  await fs.mkdir(cache, { recursive: true });
  const wanted = new Set(
    engines.filter((e) => e !== 'sluice').map((e) => PEERS[e as Exclude<Engine, 'sluice'>].family),
  );
  const classpaths: Partial<Record<PeerFamily, string>> = {};
  const skipped: Record<string, string> = {};
  if (wanted.size > 0) {
    const missing = [!which('java') && 'java', !which('javac') && 'javac', !which('mvn') && 'mvn'].filter(
      Boolean,
    ) as string[];
    if (missing.length > 0) {
      const why = `${missing.join(', ')} not found: install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)`;
      log(`SKIPPING the peers (Spark, Flink): ${why}. Their rows read 'skipped'.`);
      for (const f of wanted) skipped[f] = why;
    } else {
      await writePool();
      for (const family of wanted) {
        try {
          classpaths[family] = build(family);
        } catch (err) {
          skipped[family] = `build failed: ${(err as Error).message.split('\n')[0]}`;
          log(`SKIPPING ${family}: ${skipped[family]}`);
        }
      }
    }
  }

  const results: ConfigResult[] = [];
  for (const job of jobs) {
    for (const intervalMs of intervals) {
      const before = measureBare(job);
      log(`[${job} ${intervalMs}ms] bare loop: ${fmt(before.linesPerSec)} lines/s on 1 thread`);
      const out: EngineResult[] = [];
      for (const engine of engines) {
        const family = engine === 'sluice' ? undefined : PEERS[engine].family;
        if (family && skipped[family]) {
          out.push({ engine, job, intervalMs, skipped: skipped[family], trials: [], elapsedMs: 0 });
          continue;
        }
        const sluice = out.find((e) => e.engine === 'sluice')?.sustainableRate;
        const previous = results
          .flatMap((r) => r.engines)
          .filter((e) => e.engine === engine && e.job === job && e.sustainableRate)
          .at(-1);
        const startRate = previous?.sustainableRate
          ? previous.sustainableRate * (intervalMs >= previous.intervalMs ? 1 : 0.6)
          : sluice || before.linesPerSec * SLUICE_WORKERS * 0.15;
        out.push(await measureEngine(engine, job, intervalMs, nice(startRate), classpaths));
      }
      const after = measureBare(job);
      results.push({
        job,
        intervalMs,
        bareLinesPerSec: Math.round((before.linesPerSec + after.linesPerSec) / 2),
        engines: out,
      });
    }
  }

  const loadAtEnd = os.loadavg().map((l) => Number(l.toFixed(2)));
  const table = markdownTable(results);
  process.stdout.write(
    `\nSustainable rate (every measured batch processed within the interval); Sluice/engine > 1: Sluice sustains more:\n${table}\n`,
  );
  const reasons = [
    ...new Set(
      results.flatMap((r) => r.engines).flatMap((e) => (e.skipped ? [`${e.engine}: ${e.skipped}`] : [])),
    ),
  ];
  if (reasons.length > 0) process.stdout.write(`skipped: ${reasons.join('; ')}\n`);
  const elapsedMs = Math.round(performance.now() - started);
  process.stdout.write(
    `\n${(elapsedMs / 60_000).toFixed(1)} min; load average ${load.join(' ')} at start, ${loadAtEnd.join(' ')} at end\n`,
  );

  if (!args['no-write']) {
    const now = new Date();
    const stamp = now.toISOString().slice(0, 19).replace(/:/g, '-');
    const suffix = quick ? '-quick' : '';
    let commit: string | undefined;
    try {
      commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
    } catch {}
    const doc = {
      benchmark: 'peers',
      date: now.toISOString(),
      mode: quick ? 'quick' : 'full',
      elapsedMs,
      machine: {
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        cpus: os.cpus().length,
        node: process.version,
        java: javaVersion(),
        totalMemMB: Math.round(os.totalmem() / 2 ** 20),
        loadAverage: load,
        loadAverageAtEnd: loadAtEnd,
        ...(commit ? { commit } : {}),
      },
      method: {
        sustainable:
          'highest rate (records/s) at which every measured batch had processing < interval, scheduling delay < interval and no backlog at the source, after warm-up (bench/trial.ts; bench/peers/common/Judge.java for the JVM peers)',
        ...search,
        warmup: Object.fromEntries(intervals.map((i) => [i, warmupOf(i, quick)])),
        sluice: `embedded runner, ${SLUICE_WORKERS} worker threads, ${PARTITIONS} partitions, generator source`,
        spark:
          'Java DStreams; receiver variants local[3] (one core for the receiver), a custom Receiver storing one line at a time, block interval min(200 ms, interval/2), MEMORY_AND_DISK_SER; wal adds spark.streaming.receiver.writeAheadLog.enable and a checkpoint directory; queue: queueStream of RDDs generating their lines in the tasks, local[2]',
        flink:
          "DataStream, parallelism 2, DataGeneratorSource at the rate; event time = the line's scheduled time; tumbling windows of the interval; a batch = a window, its processing time = wall clock when all its results arrived - window end",
      },
      input: stats,
      skipped,
      results,
      table,
    };
    const dir = path.join(here, 'results');
    await fs.mkdir(dir, { recursive: true });
    const body = `${JSON.stringify(doc, null, 2)}\n`;
    const file = path.join(dir, `${stamp}-peers${suffix}.json`);
    await fs.writeFile(file, body);
    await fs.writeFile(path.join(dir, `latest-peers${suffix}.json`), body);
    await fs.writeFile(
      path.join(dir, `latest-peers${suffix}.md`),
      `# bench:peers, ${now.toISOString()} (${quick ? 'quick' : 'full'} run)\n\nLoad average ${load.join(' ')} at start, ${loadAtEnd.join(' ')} at end; ${os.cpus().length} cores.\n\n${table}\n`,
    );
    log(
      `wrote ${path.relative(process.cwd(), file)}, latest-peers${suffix}.json and latest-peers${suffix}.md`,
    );
  }
}

function javaVersion(): string | undefined {
  const r = spawnSync('java', ['-version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stderr.split('\n')[0]?.trim() : undefined;
}

await main();
