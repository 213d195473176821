/**
 * The driver's timer, as Spark's `RecurringTimer` ticking `JobGenerator`: waits for each interval
 * to close and has the batch loop (`scheduler.ts`) run the next batch, or a backlog of them when
 * far behind; stops on a count, a batch time, a deadline, an abort, idleness or exhausted sources.
 * A retryable batch failure runs the batch again (`BatchRetry`: bounded, with backoff).
 *
 * @module
 */
import type { StreamingContext } from '../context.ts';
import { drainUntilMs as drainUntil } from './drain.ts';
import type { BatchManifest } from './manifest.ts';
import type { ResolvedDriverOptions, RunOptions } from './options.ts';
import { sleepUntil } from './timing.ts';
import type { DriverHandles, DriverRooms } from './wiring.ts';

/** The batch loop as the timer drives it (`BatchScheduler`). */
export interface LoopDriver {
  readonly ctx: StreamingContext;
  readonly nextBatchTimeMs: number;
  sourcesExhausted(): boolean;
  closeBatches(n: number): Promise<number[]>;
  runBacklog(n: number): Promise<BatchManifest[]>;
  runNextBatch(): Promise<BatchManifest>;
}

/** What the timer reads of the driver besides its loop. */
interface LoopState {
  readonly options: ResolvedDriverOptions;
  readonly rooms: DriverRooms;
  readonly d: DriverHandles;
}

/**
 * Runs batches until `numBatches` ran, `untilMs` (a batch time) passed, `signal` aborted, or
 * every source is exhausted (`stopWhenExhausted`).
 */
export async function runLoop(d: LoopDriver, s: LoopState, options: RunOptions): Promise<BatchManifest[]> {
  const { rate, inputs, idlePath, runner } = s.rooms;
  const manifests: BatchManifest[] = [];
  const wall = s.options.clock !== 'manual';
  const parallel = s.options.parallelRecovery;
  let drainUntilMs: number | undefined;
  while (!s.d.stopping() && !options.signal?.aborted) {
    const left = options.numBatches === undefined ? Infinity : options.numBatches - manifests.length;
    if (left <= 0) break;
    // idle fast path (issue 11): idle long enough, the caller may sleep
    if (options.stopWhenIdleMs !== undefined && idlePath.idleForMs >= options.stopWhenIdleMs) break;
    const t = d.nextBatchTimeMs;
    if (options.untilMs !== undefined && t > options.untilMs) break;
    if (options.stopWhenExhausted && d.sourcesExhausted()) {
      // finite sources ended: go on (without waiting) until the windows holding their data emitted
      drainUntilMs ??= drainUntil(d.ctx, t, (e) => s.d.log(e));
      if (t > drainUntilMs) break;
    }
    if (options.deadlineMs !== undefined) {
      // leave room for one more batch: its interval plus the slowest recent processing time
      const need = Math.max(t, Date.now()) + d.ctx.batchIntervalMs + rate.slowestRecentMs;
      if (need > options.deadlineMs) break;
    }
    // close the interval: polling sources (SQS) collect during it, buffering ones hand over after
    if (wall && drainUntilMs === undefined) {
      await sleepUntil(inputs.polls ? t - d.ctx.batchIntervalMs : t, options.signal);
    }
    if (options.signal?.aborted) break;
    if (wall && drainUntilMs === undefined && s.d.at.pending.length === 0 && parallel) {
      // far behind (a driver took over after a gap): close every batch already due, run them as a backlog
      const due = rate.dueBacklog(t, Date.now(), left);
      if (due > 0) await retrying(d, s, options.signal, () => d.closeBatches(due));
    }
    if (s.d.at.pending.length > 1 && parallel) {
      // catch up within capacity: as many batches at once as the (adaptive) invoker limit serves
      const chunk = rate.catchUpChunk(runner.limiter.limit, d.ctx.defaultPartitions);
      const n = Math.min(left, s.d.at.pending.length, chunk);
      manifests.push(...(await retrying(d, s, options.signal, () => s.d.fence().race(d.runBacklog(n)))));
      continue;
    }
    const m = await retrying(d, s, options.signal, () => s.d.fence().race(d.runNextBatch()));
    rate.recordProcessing(m.processingMs);
    manifests.push(m);
  }
  return manifests;
}

/** Runs `step` again after a retryable failure (BatchRetry: bounded, with backoff); else rethrows. */
function retrying<R>(
  d: LoopDriver,
  s: LoopState,
  signal: AbortSignal | undefined,
  step: () => Promise<R>,
): Promise<R> {
  return s.rooms.batchRetry.run(step, {
    batchTimeMs: () => d.nextBatchTimeMs,
    signal,
    beforeRetry: () => {
      // a failed batch made the ones after it fail; the retry starts a fresh commit order
      s.d.commitOrder.reset();
      // records a source handed out for an input that was never stored are asked for again
      s.rooms.inputs.rewind();
    },
  });
}
