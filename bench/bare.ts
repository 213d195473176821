/**
 * The bare single-threaded loops the engine is compared with: the same work as the benchmark
 * pipelines, on the same lines, with no engine around it (no blocks, no store, no tasks).
 *
 *   wordcount: split every line on ' ' and count the words into one Map
 *   grep:      count the lines that include the pattern
 *
 * `measureBare` runs the loop in this thread (the figure the issue asks for); `measureBareThreads`
 * runs it on N worker threads at once, which shows how much parallel CPU the (shared, 2-core)
 * machine actually gives at that moment.
 *
 * Run alone: `npx tsx bench/bare.ts`.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { defaultGenerate } from '../shared/local/embedded-runner.ts';
import { PATTERN } from './pipelines/grep.ts';

export type Job = 'wordcount' | 'grep';

/** Lines per chunk: one pass over as many lines as the generator's pool holds. */
const CHUNK = 65_536;

let lines: string[] | undefined;

/** The lines the loops read: the generator's first 65,536 records (the same distribution as its pool). */
export function benchLines(): string[] {
  lines ??= Array.from({ length: CHUNK }, (_, i) => defaultGenerate(i));
  return lines;
}

/** Keeps results alive so the optimizer cannot drop the loops. */
export let blackhole = 0;

export function wordCountChunk(input: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < input.length; i++) {
    const words = input[i]!.split(' ');
    for (let j = 0; j < words.length; j++) {
      const w = words[j]!;
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}

export function grepChunk(input: readonly string[], pattern = PATTERN): number {
  let n = 0;
  for (let i = 0; i < input.length; i++) if (input[i]!.includes(pattern)) n++;
  return n;
}

export interface BareResult {
  readonly job: Job;
  /** Median over the timed chunks. */
  readonly linesPerSec: number;
  readonly minLinesPerSec: number;
  readonly maxLinesPerSec: number;
  readonly chunks: number;
  readonly linesPerChunk: number;
}

/**
 * Lines per second of the bare loop: a few warm-up chunks, then chunks of 65,536 lines for about
 * `durationMs`, reported as the median chunk rate (robust to a neighbour stealing the core).
 */
export function measureBare(job: Job, durationMs = 1500): BareResult {
  const input = benchLines();
  const run = job === 'wordcount' ? () => wordCountChunk(input).size : () => grepChunk(input);
  for (let i = 0; i < 3; i++) blackhole += run();
  const rates: number[] = [];
  const until = performance.now() + durationMs;
  while (rates.length < 5 || (performance.now() < until && rates.length < 1000)) {
    const s = performance.now();
    blackhole += run();
    rates.push(input.length / ((performance.now() - s) / 1000));
  }
  rates.sort((a, b) => a - b);
  return {
    job,
    linesPerSec: Math.round(rates[Math.floor(rates.length / 2)]!),
    minLinesPerSec: Math.round(rates[0]!),
    maxLinesPerSec: Math.round(rates[rates.length - 1]!),
    chunks: rates.length,
    linesPerChunk: input.length,
  };
}

export interface BareThreadsResult {
  readonly job: Job;
  readonly threads: number;
  /** Lines per second of all threads together. */
  readonly linesPerSec: number;
  readonly perThread: number[];
}

interface BareWorkerData {
  readonly bareJob: Job;
  readonly durationMs: number;
}

/** The same loop on `threads` worker threads started together; lines/s of all of them. */
export async function measureBareThreads(
  job: Job,
  threads: number,
  durationMs = 1500,
): Promise<BareThreadsResult> {
  const workers = Array.from(
    { length: threads },
    () =>
      new Worker(new URL('./bare-worker.mjs', import.meta.url), {
        workerData: { bareJob: job, durationMs } satisfies BareWorkerData,
      }),
  );
  try {
    const ready = workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          w.once('message', () => resolve());
          w.once('error', reject);
        }),
    );
    await Promise.all(ready);
    const done = workers.map(
      (w) =>
        new Promise<{ lines: number; ms: number }>((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
        }),
    );
    for (const w of workers) w.postMessage('go');
    const results = await Promise.all(done);
    const perThread = results.map((r) => Math.round((r.lines * 1000) / r.ms));
    return { job, threads, linesPerSec: perThread.reduce((a, b) => a + b, 0), perThread };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Worker side of measureBareThreads: warm up, say ready, wait for 'go', run for the duration. */
function bareWorker(data: BareWorkerData): void {
  const input = benchLines();
  const run = data.bareJob === 'wordcount' ? () => wordCountChunk(input).size : () => grepChunk(input);
  for (let i = 0; i < 3; i++) blackhole += run();
  parentPort!.once('message', () => {
    const start = performance.now();
    let lines = 0;
    while (performance.now() - start < data.durationMs) {
      blackhole += run();
      lines += input.length;
    }
    parentPort!.postMessage({ lines, ms: performance.now() - start });
  });
  parentPort!.postMessage('ready');
}

if (!isMainThread && (workerData as Partial<BareWorkerData> | null)?.bareJob)
  bareWorker(workerData as BareWorkerData);

/** Words per line and the share of lines matching the grep pattern, for checking the engine's output. */
export function lineStats(): { wordsPerLine: number; grepMatchShare: number; bytesPerLine: number } {
  const input = benchLines();
  let words = 0;
  let bytes = 0;
  for (const [, c] of wordCountChunk(input)) words += c;
  for (const l of input) bytes += Buffer.byteLength(l);
  return {
    wordsPerLine: words / input.length,
    grepMatchShare: grepChunk(input) / input.length,
    bytesPerLine: bytes / input.length,
  };
}

if (isMainThread && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const stats = lineStats();
  console.log(
    `lines: ${stats.bytesPerLine.toFixed(1)} bytes, ${stats.wordsPerLine.toFixed(2)} words each; ` +
      `'${PATTERN}' in ${(stats.grepMatchShare * 100).toFixed(2)}% of them`,
  );
  for (const job of ['wordcount', 'grep'] as const) {
    const r = measureBare(job, 3000);
    console.log(
      `${job.padEnd(9)} ${r.linesPerSec.toLocaleString('en-US')} lines/s (median of ${r.chunks} chunks of ${r.linesPerChunk}; ` +
        `min ${r.minLinesPerSec.toLocaleString('en-US')}, max ${r.maxLinesPerSec.toLocaleString('en-US')})`,
    );
    const t = await measureBareThreads(job, 2, 3000);
    console.log(
      `${job.padEnd(9)} ${t.linesPerSec.toLocaleString('en-US')} lines/s on 2 threads at once ` +
        `(${t.perThread.map((n) => n.toLocaleString('en-US')).join(' + ')})`,
    );
  }
}
