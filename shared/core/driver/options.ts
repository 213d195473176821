/**
 * The driver's options, resolved once: `DRIVER_DEFAULTS` holds every default, `resolveDriverOptions`
 * checks what was given (a ConfigError naming the option) and fills in the rest. The embedded
 * runner's options extend `DriverTuning`; nothing else repeats a default.
 *
 * @module
 */
import { ConfigError } from '../../errors.ts';
import type { Invoker } from '../../ports/invoker.ts';
import type { ObjectStore } from '../../ports/object-store.ts';
import type { Source } from '../../ports/source.ts';
import type { FaultOptions } from '../faults.ts';
import type { SpeculationOptions } from '../task-runner.ts';
import type { BatchRetryOptions } from './batch-retry.ts';
import type { BatchManifest } from './manifest.ts';
import type { TinyBatchOptions } from './tiny-batch.ts';

/** The driver's lease: see `BatchSchedulerOptions.lease`. */
export interface LeaseOptions {
  readonly owner?: string;
  readonly durationMs?: number;
  readonly renew?: boolean;
  /** Take the lease even from a live holder (`sluice run --force`); it is fenced. */
  readonly force?: boolean;
  /** Allowed clock difference between drivers (default 2 s, at most a tenth of the duration). */
  readonly skewMs?: number;
}

/** How the driver runs batches: the options shared by every runner (embedded, Lambda, tests). */
export interface DriverTuning {
  /** `wall`: a batch starts once its interval has passed. `manual`: batches run back to back (tests, replay). */
  readonly clock?: 'wall' | 'manual';
  readonly taskTimeoutMs?: number;
  readonly maxTaskAttempts?: number;
  readonly retryBackoffMs?: number;
  /** Backpressure: never take more than this many records into one batch. */
  readonly maxRecordsPerBatch?: number;
  /** Adaptive backpressure: when a batch took longer than the interval, cap the next one. Default true. */
  readonly backpressure?: boolean;
  /** How long input blocks and write-ahead entries stay (for replay and recovery). Default 1 hour. */
  readonly retainInputsMs?: number;
  /** Speculative copies of stragglers (on by default). */
  readonly speculation?: SpeculationOptions;
  /** Keep every n-th batch's state for recovery, so lineage never walks back further. Default 10. */
  readonly checkpointEvery?: number;
  /** Fault injection (off by default): see FaultOptions. */
  readonly faults?: FaultOptions;
  /** Batches to skip (stored, not committed): see shared/core/driver/skip.ts. Default none. */
  readonly skipBatches?: readonly number[];
  readonly onBatch?: (manifest: BatchManifest) => void;
  readonly log?: (event: Record<string, unknown>) => void;
}

export interface BatchSchedulerOptions extends DriverTuning {
  readonly store: ObjectStore;
  readonly invoker: Invoker;
  /** Sources for `inputStream()`s, by input name (those built with a factory need none). */
  readonly sources?: Readonly<Record<string, Source<unknown>>>;
  /** Zero time for a new store (default: now, aligned to the interval; 0 with the manual clock). */
  readonly zeroTimeMs?: number;
  /**
   * The driver lease (one driver per store). `owner` names this driver; the lease lasts
   * `durationMs` and is renewed while batches run unless `renew` is false (the scheduler Lambda
   * takes it until its own deadline). Default: owner `<host>:<pid>`, 30 s, renewed. `false`: no lease.
   */
  readonly lease?: false | LeaseOptions;
  /** Re-run a backlog of uncommitted batches in parallel, as far as their dependencies allow. Default true. */
  readonly parallelRecovery?: boolean;
  /** A batch failing for a retryable cause is run again by the same driver (default 3 tries, 1 s backoff). */
  readonly batchRetry?: BatchRetryOptions;
  /** Which life of this driver this is (fault injection decides crashes per incarnation). */
  readonly incarnation?: number;
  /** The idle fast path for empty batches (shared/core/empty-batch.ts, issue 11). Default true. */
  readonly idleFastPath?: boolean;
  /**
   * A batch with at most this input runs its tasks inside the driver, its shuffle in memory
   * (shared/core/driver/tiny-batch.ts, issue 11). Default 10,000 records and 4 MiB; `false`: never.
   */
  readonly tinyBatch?: false | TinyBatchOptions;
}

/** The DriverTuning fields of a runner's options (which extend DriverTuning), without the rest. */
export function pickTuning(o: DriverTuning): DriverTuning {
  const keys: (keyof DriverTuning)[] = [
    'clock',
    'taskTimeoutMs',
    'maxTaskAttempts',
    'retryBackoffMs',
    'maxRecordsPerBatch',
    'backpressure',
    'retainInputsMs',
    'speculation',
    'checkpointEvery',
    'faults',
    'skipBatches',
    'onBatch',
    'log',
  ];
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])) as DriverTuning;
}

/** Every default of the driver's options, in one place. */
export const DRIVER_DEFAULTS = {
  clock: 'wall',
  taskTimeoutMs: 120_000,
  maxTaskAttempts: 4,
  retryBackoffMs: 50,
  backpressure: true,
  retainInputsMs: 3_600_000,
  checkpointEvery: 10,
  parallelRecovery: true,
  incarnation: 0,
  leaseDurationMs: 30_000,
} as const;

/** The options with every default filled in (what the driver's rooms read). */
export type ResolvedDriverOptions = Omit<
  BatchSchedulerOptions,
  | 'clock'
  | 'taskTimeoutMs'
  | 'maxTaskAttempts'
  | 'retryBackoffMs'
  | 'backpressure'
  | 'retainInputsMs'
  | 'checkpointEvery'
  | 'parallelRecovery'
  | 'incarnation'
> & {
  readonly clock: 'wall' | 'manual';
  readonly taskTimeoutMs: number;
  readonly maxTaskAttempts: number;
  readonly retryBackoffMs: number;
  readonly backpressure: boolean;
  readonly retainInputsMs: number;
  readonly checkpointEvery: number;
  readonly parallelRecovery: boolean;
  readonly incarnation: number;
};

const POSITIVE = [
  'taskTimeoutMs',
  'maxTaskAttempts',
  'retryBackoffMs',
  'maxRecordsPerBatch',
  'retainInputsMs',
  'checkpointEvery',
] as const;

/** Checks the options (ConfigError naming the first bad one) and fills in the defaults. */
export function resolveDriverOptions(options: BatchSchedulerOptions): ResolvedDriverOptions {
  for (const name of POSITIVE) {
    const v = options[name];
    if (v !== undefined && (typeof v !== 'number' || !(v > 0))) {
      throw new ConfigError(name, `must be a positive number, got ${String(v)}`);
    }
  }
  if (options.clock !== undefined && options.clock !== 'wall' && options.clock !== 'manual') {
    throw new ConfigError('clock', `must be 'wall' or 'manual', got ${String(options.clock)}`);
  }
  checkTinyBatch(options.tinyBatch);
  const lease = options.lease;
  if (lease && lease.durationMs !== undefined && !(lease.durationMs > 0)) {
    throw new ConfigError('lease.durationMs', `must be a positive number, got ${String(lease.durationMs)}`);
  }
  return {
    ...options,
    // injected throttles refuse invocations: a driver asked for them runs every batch on the invoker
    ...(options.faults?.throttleTasks ? { tinyBatch: false as const } : {}),
    clock: options.clock ?? DRIVER_DEFAULTS.clock,
    taskTimeoutMs: options.taskTimeoutMs ?? DRIVER_DEFAULTS.taskTimeoutMs,
    maxTaskAttempts: options.maxTaskAttempts ?? DRIVER_DEFAULTS.maxTaskAttempts,
    retryBackoffMs: options.retryBackoffMs ?? DRIVER_DEFAULTS.retryBackoffMs,
    backpressure: options.backpressure ?? DRIVER_DEFAULTS.backpressure,
    retainInputsMs: options.retainInputsMs ?? DRIVER_DEFAULTS.retainInputsMs,
    checkpointEvery: options.checkpointEvery ?? DRIVER_DEFAULTS.checkpointEvery,
    parallelRecovery: options.parallelRecovery ?? DRIVER_DEFAULTS.parallelRecovery,
    incarnation: options.incarnation ?? DRIVER_DEFAULTS.incarnation,
  };
}

/** When `BatchScheduler.run` stops. */
export interface RunOptions {
  readonly numBatches?: number;
  /** The last batch time to run. */
  readonly untilMs?: number;
  readonly signal?: AbortSignal;
  /** Stop once every source is exhausted (and the windows holding its data emitted). */
  readonly stopWhenExhausted?: boolean;
  /** Wall-clock time by which the last batch must have finished (the Lambda's deadline). */
  readonly deadlineMs?: number;
  /** Stop once the stream has been idle (fast path, empty-batch.ts) this long: the scheduler sleeps. */
  readonly stopWhenIdleMs?: number;
}

/** `tinyBatch` is false or limits of 0 or more (a ConfigError naming the bad field otherwise). */
function checkTinyBatch(tiny: unknown): void {
  if (tiny === undefined || tiny === false) return;
  if (typeof tiny !== 'object' || tiny === null || Array.isArray(tiny)) {
    throw new ConfigError('tinyBatch', `must be false or { maxRecords, maxBytes }, got ${String(tiny)}`);
  }
  for (const [k, v] of Object.entries(tiny)) {
    if (k !== 'maxRecords' && k !== 'maxBytes') {
      throw new ConfigError(`tinyBatch.${k}`, 'is not an option (tinyBatch takes maxRecords and maxBytes)');
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new ConfigError(`tinyBatch.${k}`, `must be a number of 0 or more, got ${String(v)}`);
    }
  }
}
