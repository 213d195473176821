import { BatchFailedError, MissingDataError, SluiceError } from '../../errors.ts';
import { fullJitterMs } from '../adaptive-limiter.ts';

/**
 * The driver's answer to a failed batch: a failure with a retryable cause (a task that kept
 * failing for a transient reason, throttling that outlasted the task's tries, a store time-out)
 * is tried again by the same driver after a backoff, up to `attempts` times in a row; anything
 * else (a bug marked not retryable, a lost lease, an incompatible store) stops the driver at once.
 */
export interface BatchRetryOptions {
  /** Tries of one batch in a row before the driver gives up (default 3; 1: no retry). */
  readonly attempts?: number;
  /** Backoff before the first retry, doubled (with full jitter) for each next one. Default 1 s. */
  readonly backoffMs?: number;
}

/** Retries of a batch ran out; the driver stops. Its input is stored: the next start resumes it. */
export class BatchRetriesExhaustedError extends BatchFailedError {
  readonly attempts: number;
  constructor(batchTimeMs: number, attempts: number, cause: unknown) {
    const reason = String((cause as Error)?.message ?? cause).replace(/^Batch \d+ failed: /, '');
    super(
      batchTimeMs,
      `gave up after ${attempts} tries of the batch (last: ${reason}); stopping. ` +
        'Its input is stored: restarting the pipeline resumes with this batch.',
      cause,
    );
    this.name = 'BatchRetriesExhaustedError';
    this.attempts = attempts;
  }
}

/**
 * Whether a batch failure may go away if the batch runs again: true if its innermost known cause
 * is retryable (an unknown error counts as retryable), or it is a retry budget that ran out.
 * A failure without a cause that is not itself retryable (the batch before failed, another
 * driver wrote the input, a lost lease, an injected driver crash) is not, nor a lost input block.
 */
export function isTransientFailure(err: unknown): boolean {
  if (err instanceof BatchRetriesExhaustedError) return true;
  let e: unknown = err;
  for (let depth = 0; depth < 10; depth++) {
    if (!(e instanceof SluiceError)) return e !== undefined; // foreign error: network, fs, SDK
    // a lost input block cannot be recomputed (it is the source of truth): running again won't help
    if (e instanceof MissingDataError && e.key.startsWith('inputs/')) return false;
    if (!(e instanceof BatchFailedError)) return e.retryable;
    if (e.cause === undefined) return false;
    e = e.cause;
  }
  return false;
}

export class BatchRetry {
  private failures = 0;
  readonly attempts: number;
  private readonly backoffMs: number;

  constructor(
    options: BatchRetryOptions,
    private readonly log: (event: Record<string, unknown>) => void,
  ) {
    this.attempts = Math.max(1, Math.floor(options.attempts ?? 3));
    this.backoffMs = options.backoffMs ?? 1_000;
  }

  succeeded(): void {
    this.failures = 0;
  }

  /**
   * Runs `step`, and again after a retryable failure (bounded, with backoff; `beforeRetry` first);
   * rethrows anything else. `batchTimeMs` names the batch that failed.
   */
  async run<R>(
    step: () => Promise<R>,
    o: { batchTimeMs: () => number; signal?: AbortSignal; beforeRetry: () => void },
  ): Promise<R> {
    for (;;) {
      try {
        const result = await step();
        this.succeeded();
        return result;
      } catch (err) {
        await this.failed(err, o.batchTimeMs(), o.signal);
        if (o.signal?.aborted) throw err;
        o.beforeRetry();
      }
    }
  }

  /** After a failed batch: waits and returns (run it again), or throws (the driver stops). */
  async failed(err: unknown, batchTimeMs: number, signal?: AbortSignal): Promise<void> {
    if (!isTransientFailure(err) || err instanceof BatchRetriesExhaustedError) throw err;
    this.failures++;
    if (this.failures >= this.attempts) {
      throw new BatchRetriesExhaustedError(batchTimeMs, this.failures, err);
    }
    const waitMs = this.backoffMs / 2 + fullJitterMs(this.backoffMs / 2, 30_000, this.failures - 1);
    this.log({
      event: 'batch.retry',
      batchTimeMs,
      failures: this.failures,
      of: this.attempts,
      waitMs: Math.round(waitMs),
      error: (err as Error)?.message ?? String(err),
    });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
  }
}

/**
 * How many backlog batches run at once: enough to keep the invoker's current (adaptive) limit
 * busy with the widest stage of each, never fewer than 2, never more than `max`.
 */
export function backlogChunk(limit: number, partitions: number, max = 16): number {
  return Math.max(2, Math.min(max, Math.floor(limit / Math.max(1, partitions))));
}
