/**
 * One benchmark trial: runs a pipeline on the embedded runner (wall clock, worker threads, a
 * directory store in a fresh temporary directory) fed by the generator source at a fixed rate,
 * and decides whether the rate was sustained.
 *
 * A trial has two parts:
 *   warm-up   at least `minWarmup` batches (the worker threads start, the JIT warms up, and the
 *             scheduling delay left by the slow first batch is caught up), until a batch is
 *             steady: processing time and scheduling delay under the interval, no backlog, not run
 *             in the driver's catch-up backlog. Adaptive backpressure is off (see the runEmbedded
 *             call). At most `maxWarmup` batches are allowed, and the trial fails early when
 *             it is hopeless: a regular batch after `minWarmup` takes 1.1x the interval or more,
 *             batches take several intervals, or the driver still runs catch-up backlogs (batches
 *             run in parallel after it fell two intervals behind) 4 s after `minWarmup`.
 *   measured  `measuredBatches` batches, each of which must have processing time < interval,
 *             scheduling delay < interval and no backlog. The trial stops at the first that has not.
 */
import { setMaxListeners } from 'node:events';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BatchManifest } from '../shared/index.ts';
import { runEmbedded } from '../shared/local/embedded-runner.ts';
import { GeneratorSource } from '../shared/local/sources.ts';
import type { Job } from './bare.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

export function pipelinePath(job: Job): string {
  return path.join(here, 'pipelines', `${job}.ts`);
}

export interface TrialOptions {
  readonly job: Job;
  readonly intervalMs: number;
  readonly workers: number;
  readonly partitions: number;
  /** Input records per second. */
  readonly rate: number;
  readonly measuredBatches: number;
  readonly minWarmup: number;
  readonly maxWarmup: number;
  /**
   * false: only observe. Warm up for `minWarmup` batches, then record `measuredBatches` batches
   * whatever their times (for the fixed-cost trials). Default true.
   */
  readonly judge?: boolean;
  /** Called after every batch (progress display). */
  readonly onBatch?: (info: { index: number; warm: boolean; measured: number; sample: BatchSample }) => void;
}

export interface StageSample {
  readonly id: number;
  readonly kind: string;
  readonly operators: string;
  readonly tasks: number;
  readonly durationMs: number;
  readonly meanTaskMs: number;
  readonly records: number;
  readonly bytes: number;
}

export interface BatchSample {
  readonly batchTimeMs: number;
  readonly records: number;
  readonly capped: boolean;
  /** Records due from the generator but not taken by this batch (backpressure). */
  readonly backlog: number;
  readonly processingMs: number;
  /** From the batch's start to its onBatch call: processing, then commit and clean-up. */
  readonly wallMs: number;
  readonly schedulingDelayMs: number;
  readonly totalDelayMs: number;
  readonly phases: Record<string, number>;
  /** Run as part of a backlog (the driver fell two or more intervals behind and caught up in parallel). */
  readonly recovered: boolean;
  /** Speculative task copies launched (stragglers). */
  readonly speculative: number;
  readonly stages: readonly StageSample[];
  readonly requests: BatchManifest['requests'];
}

export interface TrialResult {
  readonly rate: number;
  readonly passed: boolean;
  /** Why the trial failed. */
  readonly reason?: string;
  readonly warmupBatches: number;
  readonly measured: readonly BatchSample[];
  /** The warm-up batches (for diagnosis; judged only to stop hopeless trials early). */
  readonly warmup: readonly BatchSample[];
  readonly elapsedMs: number;
  /** Processing time of the first batch (it includes starting the worker threads). */
  readonly firstBatchMs?: number;
  /** WordCount only: words counted per input line over the measured batches (a correctness check). */
  readonly wordsPerLine?: number;
}

function sampleOf(m: BatchManifest, backlog: number): BatchSample {
  return {
    batchTimeMs: m.batchTimeMs,
    records: m.input.records,
    capped: m.input.capped,
    backlog,
    processingMs: m.processingMs,
    wallMs: Date.now() - m.startedAtMs,
    schedulingDelayMs: m.schedulingDelayMs,
    totalDelayMs: m.totalDelayMs,
    phases: { ...m.phases },
    recovered: m.recovered,
    speculative: m.tasks.speculative,
    stages: m.stages.map((s) => ({
      id: s.id,
      kind: s.kind,
      operators: s.operators.join(' > '),
      tasks: s.tasks,
      durationMs: s.durationMs,
      meanTaskMs: s.taskDurationsMs.length
        ? s.taskDurationsMs.reduce((a, b) => a + b, 0) / s.taskDurationsMs.length
        : 0,
      records: s.records,
      bytes: s.bytes,
    })),
    requests: m.requests,
  };
}

export async function runTrial(options: TrialOptions): Promise<TrialResult> {
  const { intervalMs: interval, measuredBatches, minWarmup, maxWarmup } = options;
  const started = performance.now();
  const storeDir = await fs.mkdtemp(path.join(os.tmpdir(), `sluice-bench-${options.job}-`));
  const controller = new AbortController();
  // the driver adds one abort listener per batch wait and never removes it (see README)
  setMaxListeners(0, controller.signal);
  const measured: BatchSample[] = [];
  const warmup: BatchSample[] = [];
  let source: GeneratorSource<unknown> | undefined;
  let warm = true;
  let index = 0;
  let reason: string | undefined;
  const fail = (why: string) => {
    reason ??= why;
    controller.abort();
  };

  const module = (await import(pathToFileURL(pipelinePath(options.job)).href)) as {
    tally?: Map<number, number>;
  };
  module.tally?.clear();

  const recent: number[] = [];
  let regular = 0;
  /** Catch-up backlog batches seen after the minimum warm-up. */
  let lateBacklog = 0;
  const maxLateBacklog = Math.max(5, Math.ceil(4000 / interval));
  const onBatch = (m: BatchManifest) => {
    if (reason !== undefined || controller.signal.aborted) return;
    index++;
    const sample = sampleOf(m, source?.backlog ?? 0);
    if (process.env.SLUICE_BENCH_TRACE)
      process.stderr.write(
        `  batch ${m.batchTimeMs % 100_000}: ${m.input.records} rec, processing ${m.processingMs} ms, delay ${m.schedulingDelayMs} ms, phases ${JSON.stringify(m.phases)}, tasks ${JSON.stringify(m.stages.map((st) => st.taskDurationsMs))}, backlog ${sample.backlog}\n`,
      );
    const wasWarm = warm;
    // batches of a catch-up backlog run concurrently, so their processing times overlap: judge
    // only regular batches
    if (!m.recovered) {
      regular++;
      recent.push(m.processingMs);
      if (recent.length > 3) recent.shift();
    }
    if (options.judge === false) {
      if (warm) {
        warmup.push(sample);
        if (index >= minWarmup && !m.recovered) warm = false;
      } else {
        measured.push(sample);
        if (measured.length >= measuredBatches) controller.abort();
      }
    } else if (warm) {
      warmup.push(sample);
      const steady =
        sample.backlog === 0 &&
        !m.input.capped &&
        !m.recovered &&
        m.processingMs < interval &&
        m.schedulingDelayMs < interval;
      const fullBatch = (options.rate * interval) / 1000;
      const projectedMs = m.input.records > 0 ? (m.processingMs * fullBatch) / m.input.records : 0;
      const recentMedian = [...recent].sort((a, b) => a - b)[Math.floor(recent.length / 2)] ?? 0;
      if (m.recovered && index > minWarmup) lateBacklog++;
      if (lateBacklog > maxLateBacklog) {
        fail(`still catching up after ${index} batches (${lateBacklog} backlog batches after warm-up)`);
      } else if (!m.recovered && regular >= 2 && m.processingMs >= 2 * interval + 200) {
        fail(`warm-up batch ${index} took ${m.processingMs} ms: hopeless`);
      } else if (!m.recovered && regular >= 4 && recentMedian >= 1.5 * interval) {
        fail(`warm-up: 3 batches up to ${index} took a median of ${recentMedian} ms: hopeless`);
      } else if (
        !m.recovered &&
        index > minWarmup &&
        m.input.records >= fullBatch / 2 &&
        projectedMs >= 1.1 * interval
      ) {
        fail(
          `warm-up batch ${index} took ${m.processingMs} ms for ${m.input.records} records ` +
            `(~${Math.round(projectedMs)} ms for a full batch)`,
        );
      } else if (index >= minWarmup && steady) {
        warm = false;
      } else if (index >= maxWarmup) {
        fail(
          `no steady batch within ${maxWarmup} warm-up batches ` +
            `(last: ${m.processingMs} ms, scheduling delay ${m.schedulingDelayMs} ms, backlog ${sample.backlog})`,
        );
      }
    } else {
      measured.push(sample);
      if (m.processingMs >= interval)
        fail(`batch ${measured.length} processing ${m.processingMs} ms >= ${interval} ms`);
      else if (m.schedulingDelayMs >= interval) {
        fail(`batch ${measured.length} scheduling delay ${m.schedulingDelayMs} ms >= ${interval} ms`);
      } else if (sample.backlog > 0 || m.input.capped)
        fail(`batch ${measured.length} left a backlog of ${sample.backlog}`);
      else if (m.recovered)
        fail(`batch ${measured.length} ran in a catch-up backlog (the driver fell behind)`);
      else if (measured.length >= measuredBatches) controller.abort();
    }
    options.onBatch?.({ index, warm: wasWarm, measured: measured.length, sample });
  };

  // For long intervals, start just after an interval boundary: the first batch is then due about
  // one interval later, which gives the worker threads time to start before it.
  if (interval >= 500) await new Promise((r) => setTimeout(r, interval - (Date.now() % interval) + 5));
  try {
    await runEmbedded({
      pipelineModule: pipelinePath(options.job),
      storeDir,
      batchIntervalMs: interval,
      partitions: options.partitions,
      workers: options.workers,
      source: 'generator',
      rate: options.rate,
      clock: 'wall',
      numBatches: maxWarmup + measuredBatches + 1,
      signal: controller.signal,
      printer: () => {},
      // Backpressure off: after the slow first batch (worker threads starting) the driver would cap
      // the next batches at 0.9x what it saw and lift the cap only after batches under 0.7x the
      // interval, so a rate above ~0.8x capacity would stay capped with a growing backlog. A
      // measured batch over the interval fails the trial anyway, so no cap could ever apply there.
      backpressure: false,
      onStart: (info) => {
        const s = info.sources[0];
        if (s instanceof GeneratorSource) source = s;
      },
      onBatch,
    });
  } catch (err) {
    reason ??= `run failed: ${(err as Error).message}`;
  } finally {
    await fs.rm(storeDir, { recursive: true, force: true }).catch(() => {});
  }
  if (reason === undefined && measured.length < measuredBatches)
    reason = `only ${measured.length} batches ran`;

  let wordsPerLine: number | undefined;
  if (module.tally && measured.length > 0) {
    let words = 0;
    let lines = 0;
    for (const s of measured) {
      words += module.tally.get(s.batchTimeMs) ?? 0;
      lines += s.records;
    }
    wordsPerLine = lines > 0 ? words / lines : undefined;
  }
  return {
    rate: options.rate,
    passed: reason === undefined,
    ...(reason !== undefined ? { reason } : {}),
    warmupBatches: warmup.length,
    measured,
    warmup,
    elapsedMs: performance.now() - started,
    ...(warmup[0] ? { firstBatchMs: warmup[0].processingMs } : {}),
    ...(wordsPerLine !== undefined ? { wordsPerLine } : {}),
  };
}
