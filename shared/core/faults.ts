/**
 * Fault injection built into the runners, off by default. Every decision is a pure function of
 * the seed and what it is about (batch, stage, partition), so a fault schedule can be replayed.
 * Faults hit first attempts only, never retries or speculative copies: a fault schedule tests
 * recovery, it does not make a batch impossible.
 *
 * @module
 */
import { ConfigError, SluiceError } from '../errors.ts';
import { fnv1a } from './keys.ts';

export interface FaultOptions {
  readonly seed?: number;
  /** Share of tasks whose first attempt throws a retryable error. */
  readonly failTasks?: number;
  /** Share of tasks whose worker dies while running them (worker thread exits, Lambda process exits). */
  readonly killWorkers?: number;
  /** Share of tasks that run `slowFactor` times longer than they should (stragglers). */
  readonly slowTasks?: number;
  /** How much longer a straggler takes (default 10). */
  readonly slowFactor?: number;
  /** Share of batches after which the driver dies at a random point of the next batch. */
  readonly crashDriver?: number;
  /** Share of a committed batch's stored partitions (state, window inputs) deleted afterwards. */
  readonly deletePartitions?: number;
  /** Share of a committed batch's stored partitions whose bytes are corrupted afterwards. */
  readonly corruptBlocks?: number;

  // ---- overload: throttling and a slow store (wt-throttle) ----
  /**
   * Share of ALL invocation attempts (first tries, retries, retries after a throttle, speculative
   * copies) refused as throttled before they run, as Lambda's 429 or a busy executor would.
   */
  readonly throttleTasks?: number;
  /**
   * Share of the driver's store requests that take `slowStoreMs` longer; a tenth of those, on the
   * first request for their key, time out after the delay (a retryable error).
   */
  readonly slowStore?: number;
  /** Added latency of a slow store request (default 20 ms). */
  readonly slowStoreMs?: number;
  // ---- driver lease (wt-lease) ----
  /**
   * Share of batches in which the driver stalls before its commit, lease renewals included (as a
   * paused process would), for longer than its lease: a second driver can take over meanwhile,
   * and the stalled one must then be fenced (commit nothing, stop).
   */
  readonly longBatch?: number;
}

export type CrashPoint = 'afterReceive' | 'afterTasks' | 'beforeCommit';
export const CRASH_POINTS: readonly CrashPoint[] = ['afterReceive', 'afterTasks', 'beforeCommit'];

/** The driver "died" (fault injection): its process would be gone; a new driver must take over. */
export class DriverCrashError extends SluiceError {
  readonly point: CrashPoint;
  readonly batchTimeMs: number;
  constructor(batchTimeMs: number, point: CrashPoint) {
    super(`injected driver crash in batch ${batchTimeMs} (${point})`, { retryable: false });
    this.name = 'DriverCrashError';
    this.point = point;
    this.batchTimeMs = batchTimeMs;
  }
}

export interface FaultCounts {
  failedTasks: number;
  killedWorkers: number;
  slowTasks: number;
  driverCrashes: number;
  deletedPartitions: number;
  corruptedBlocks: number;
  throttledTasks: number;
  slowStoreRequests: number;
  storeTimeouts: number;
  // driver lease (wt-lease)
  longBatches: number;
}

export function emptyFaultCounts(): FaultCounts {
  return {
    failedTasks: 0,
    killedWorkers: 0,
    slowTasks: 0,
    driverCrashes: 0,
    deletedPartitions: 0,
    corruptedBlocks: 0,
    throttledTasks: 0,
    slowStoreRequests: 0,
    storeTimeouts: 0,
    // driver lease (wt-lease)
    longBatches: 0,
  };
}

/** A deterministic number in [0, 1) from the seed and a subject. */
export function chance(seed: number, ...subject: (string | number)[]): number {
  return fnv1a(subject.join('/'), (seed ^ 0x9e3779b9) >>> 0) / 4294967296;
}

export class FaultInjector {
  readonly options: FaultOptions;
  readonly seed: number;
  readonly counts: FaultCounts = emptyFaultCounts();

  constructor(options: FaultOptions) {
    for (const [name, value] of Object.entries(options)) {
      if (name === 'seed' || name === 'slowFactor' || name === 'slowStoreMs') continue;
      if (typeof value !== 'number' || value < 0 || value > 1) {
        throw new ConfigError(`faults.${name}`, `must be a share between 0 and 1, got ${String(value)}`);
      }
    }
    if (options.slowFactor !== undefined && !(options.slowFactor >= 1)) {
      throw new ConfigError('faults.slowFactor', `must be at least 1, got ${options.slowFactor}`);
    }
    if (options.slowStoreMs !== undefined && !(options.slowStoreMs >= 0)) {
      throw new ConfigError(
        'faults.slowStoreMs',
        `must be a non-negative number of ms, got ${options.slowStoreMs}`,
      );
    }
    this.options = options;
    this.seed = options.seed ?? 1;
  }

  /** What the first attempt of a task should suffer. */
  forTask(
    t: number,
    stageId: number,
    partition: number,
  ): { fail?: boolean; exit?: boolean; slowFactor?: number } | undefined {
    const o = this.options;
    const r = chance(this.seed, 'task', t, stageId, partition);
    let edge = 0;
    if (o.killWorkers && r < (edge += o.killWorkers)) {
      this.counts.killedWorkers++;
      return { exit: true };
    }
    if (o.failTasks && r < (edge += o.failTasks)) {
      this.counts.failedTasks++;
      return { fail: true };
    }
    if (o.slowTasks && r < (edge += o.slowTasks)) {
      this.counts.slowTasks++;
      return { slowFactor: o.slowFactor ?? 10 };
    }
    return undefined;
  }

  /** Where, if anywhere, the driver dies during batch `t`. */
  crashPoint(t: number, incarnation: number): CrashPoint | undefined {
    const p = this.options.crashDriver;
    if (!p || chance(this.seed, 'crash', t, incarnation) >= p) return undefined;
    return CRASH_POINTS[Math.floor(chance(this.seed, 'crash-point', t) * CRASH_POINTS.length)];
  }

  // ---- driver lease (wt-lease) ----
  /** Whether the driver stalls past its lease before committing batch `t` (`longBatch`). */
  longBatchAt(t: number, incarnation: number): boolean {
    const p = this.options.longBatch;
    return !!p && chance(this.seed, 'long-batch', t, incarnation) < p;
  }

  /** What to do to a stored partition of a committed batch: delete it, corrupt it, or nothing. */
  forStoredPartition(key: string): 'delete' | 'corrupt' | undefined {
    const r = chance(this.seed, 'stored', key);
    const del = this.options.deletePartitions ?? 0;
    if (r < del) return 'delete';
    if (r < del + (this.options.corruptBlocks ?? 0)) return 'corrupt';
    return undefined;
  }

  // ---- overload: throttling and a slow store (wt-throttle) ----

  /** Whether this try of a task is refused as throttled: a function of the seed, the task, its attempt and try. */
  throttles(
    t: number,
    stageId: number,
    partition: number,
    attempt: number,
    tryIndex: number,
    speculative = false,
  ): boolean {
    const p = this.options.throttleTasks;
    if (
      !p ||
      chance(this.seed, 'throttle', t, stageId, partition, attempt, tryIndex, speculative ? 1 : 0) >= p
    )
      return false;
    this.counts.throttledTasks++;
    return true;
  }

  /** What the `n`-th request of `op` on `key` (by this life of the driver) suffers: extra latency, maybe a time-out. */
  forStoreRequest(
    op: string,
    key: string,
    n: number,
    incarnation = 0,
  ): { delayMs: number; timeout: boolean } | undefined {
    const p = this.options.slowStore;
    if (!p) return undefined;
    const r = chance(this.seed, 'store', op, key, n, incarnation);
    if (r >= p) return undefined;
    this.counts.slowStoreRequests++;
    // the lowest tenth of the slowed share times out, only on the first request (a retry gets through)
    const timeout = n === 0 && r < p / 10;
    if (timeout) this.counts.storeTimeouts++;
    return { delayMs: this.options.slowStoreMs ?? 20, timeout };
  }
}
