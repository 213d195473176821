import { BatchFailedError, causeOf, isThrottle, MissingDataError, SluiceError } from '../errors.ts';
import type { Invoker } from '../ports/invoker.ts';
import { AdaptiveLimiter, type ConcurrencyRange, fullJitterMs } from './adaptive-limiter.ts';
import { describeTask } from './executor.ts';
import type { FaultInjector } from './faults.ts';
import type { TaskResult, TaskSpec } from './task.ts';

/**
 * Runs the tasks of one stage through an invoker: retries with exponential backoff, speculative
 * copies of stragglers (the first commit wins), and recomputation of lost or corrupt inputs from
 * their lineage before a task is tried again.
 */
export interface SpeculationOptions {
  /** Launch copies of stragglers. Default true. */
  readonly enabled?: boolean;
  /** Share of a stage's tasks that must have finished before any copy is launched. Default 0.5. */
  readonly quantile?: number;
  /** A task running longer than this multiple of the finished tasks' median gets a copy. Default 1.5 (Spark's). */
  readonly multiplier?: number;
  /** Never speculate on a task younger than this. Default 50 ms. */
  readonly minRuntimeMs?: number;
}

export interface TaskRunnerOptions {
  readonly invoker: Invoker;
  readonly maxTaskAttempts: number;
  readonly taskTimeoutMs: number;
  readonly retryBackoffMs: number;
  readonly speculation: SpeculationOptions;
  readonly faults?: FaultInjector;
  /** Recomputes a missing or corrupt stored object from its lineage; false if it cannot. */
  readonly recover: (key: string) => Promise<boolean>;
  readonly log: (event: Record<string, unknown>) => void;
  /** Throttled tries of one task before its batch fails (retryably). Default 100. */
  readonly maxThrottleRetries?: number;
  /** Cap on one throttle backoff (full jitter below it). Default 5 s. */
  readonly throttleBackoffCapMs?: number;
}

export interface StageOutcome {
  readonly results: TaskResult[];
  readonly attempts: number;
  readonly retries: number;
  readonly speculative: number;
  readonly recoveries: number;
  readonly taskDurationsMs: number[];
  /** Invocations refused as throttled (retried without using up failure attempts). */
  readonly throttled: number;
  /** The adaptive concurrency limit's range while the stage ran. */
  readonly concurrency: ConcurrencyRange;
}

/** At most `n` invocations in flight; tasks hold a slot only while invoked, never while waiting. */
export class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly n: number) {}
  async run<R>(fn: () => Promise<R>): Promise<R> {
    if (this.active >= this.n) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

const MAX_RECOVERIES_PER_TASK = 8;

export class TaskRunner {
  private readonly o: TaskRunnerOptions;
  /** At most `limit` invocations in flight; AIMD on throttles (see AdaptiveLimiter). */
  readonly limiter: AdaptiveLimiter;

  constructor(options: TaskRunnerOptions) {
    this.o = options;
    this.limiter = new AdaptiveLimiter({ max: options.invoker.concurrency });
  }

  /**
   * Runs one task per spec (one per partition of a stage) and returns their results in order;
   * through `via` instead of the invoker when given (a tiny batch in the driver: driver/tiny-batch.ts).
   */
  async runStage(specs: readonly Omit<TaskSpec, 'attempt'>[], via?: Invoker): Promise<StageOutcome> {
    const spec = this.o.speculation;
    const quantile = spec.quantile ?? 0.5;
    const multiplier = spec.multiplier ?? 1.5;
    const minRuntime = spec.minRuntimeMs ?? 50;
    const finished: number[] = [];
    const running = new Map<number, { startedAt: number; copy?: () => void }>();
    const startedAt = new Map<number, number>();
    let attempts = 0;
    let speculative = 0;
    let recoveries = 0;
    let throttled = 0;
    const watching = this.limiter.watch();

    const monitor =
      spec.enabled === false || specs.length < 2
        ? undefined
        : setInterval(() => {
            if (finished.length < Math.ceil(quantile * specs.length) || running.size === 0) return;
            const sorted = [...finished].sort((a, b) => a - b);
            const median = sorted[Math.floor(sorted.length / 2)]!;
            const limit = Math.max(minRuntime, multiplier * median);
            const now = Date.now();
            for (const [i, r] of running) {
              if (r.copy && now - r.startedAt > limit) {
                const copy = r.copy;
                r.copy = undefined;
                speculative++;
                this.o.log({
                  event: 'task.speculate',
                  task: describeTask({ ...specs[i]!, attempt: 0 }),
                  runningMs: now - r.startedAt,
                  medianMs: median,
                });
                copy();
              }
            }
          }, 10);

    const runOne = (i: number): Promise<TaskResult> => {
      const base = specs[i]!;
      let nextAttempt = 0;
      const failures = { n: 0 }; // shared by every copy: maxTaskAttempts bounds the task, not each copy
      const controllers: AbortController[] = [];
      return new Promise<TaskResult>((resolve, reject) => {
        let settled = false;
        let live = 0;
        let failure: unknown;
        const launch = (copy: boolean) => {
          live++;
          const controller = new AbortController();
          controllers.push(controller);
          this.withRetries(
            via ?? this.o.invoker,
            base,
            copy,
            controller.signal,
            () => nextAttempt++,
            (started) => {
              if (copy || startedAt.has(i)) return;
              startedAt.set(i, started);
              running.set(i, { startedAt: started, copy: () => launch(true) });
            },
            () => recoveries++,
            failures,
            () => {
              throttled++;
              // a refused try never ran: the task is not a straggler while it backs off
              if (!copy) {
                startedAt.delete(i);
                running.delete(i);
              }
            },
          )
            .then((result) => {
              live--;
              if (settled) return;
              settled = true;
              running.delete(i);
              for (const c of controllers) if (c !== controller) c.abort();
              resolve(result);
            })
            .catch((err) => {
              live--;
              if (!(failure instanceof BatchFailedError)) failure = err; // the first copy to give up says why
              if (!settled && live === 0) {
                settled = true;
                running.delete(i);
                reject(failure);
              }
            });
        };
        launch(false);
      }).finally(() => {
        attempts += nextAttempt;
      });
    };

    const started = Date.now();
    try {
      const durations: number[] = new Array(specs.length);
      const results = await Promise.all(
        specs.map((_, i) =>
          runOne(i).then((r) => {
            const d = Date.now() - (startedAt.get(i) ?? started);
            durations[i] = d;
            finished.push(d);
            return r;
          }),
        ),
      );
      return {
        results,
        attempts,
        retries: Math.max(0, attempts - specs.length - speculative),
        speculative,
        recoveries,
        taskDurationsMs: durations,
        throttled,
        concurrency: watching(),
      };
    } finally {
      if (monitor) clearInterval(monitor);
      watching();
    }
  }

  /** One copy of a task: attempts until success, a non-retryable error, or the attempt limit. */
  private async withRetries(
    invoker: Invoker,
    base: Omit<TaskSpec, 'attempt'>,
    copy: boolean,
    signal: AbortSignal,
    nextAttempt: () => number,
    onStart: (startedAt: number) => void,
    onRecovery: () => void,
    failures: { n: number },
    onThrottle: () => void = () => {},
  ): Promise<TaskResult> {
    const max = this.o.maxTaskAttempts;
    let recoveries = 0;
    let throttles = 0;
    let attempt = -1;
    let inject: TaskSpec['inject'];
    let throttledLast = false;
    for (;;) {
      if (signal.aborted) throw new SluiceError('task copy cancelled: another copy committed first');
      if (failures.n >= max)
        throw new SluiceError('task copy stopped: the task failed maxTaskAttempts times');
      // a throttled try never ran: the next try is the same attempt (with the same injected fault)
      if (!throttledLast) {
        attempt = nextAttempt();
        inject =
          attempt === 0 && !copy
            ? this.o.faults?.forTask(base.batchTimeMs, base.stageId, base.partition)
            : undefined;
      }
      throttledLast = false;
      const spec: TaskSpec = {
        ...base,
        attempt,
        ...(inject ? { inject } : {}),
        ...(copy ? { speculative: true } : {}),
      };
      try {
        const invoke = () => {
          if (signal.aborted) throw new SluiceError('task copy cancelled: another copy committed first');
          onStart(Date.now());
          return invoker.invoke(spec, { timeoutMs: this.o.taskTimeoutMs, signal });
        };
        // a speculative copy starts at once: waiting for a free slot behind the stage would
        // cost what speculation is meant to save (the invoker places it)
        return await (copy ? invoke() : this.limiter.run(invoke));
      } catch (err) {
        if (signal.aborted) throw err;
        if (isThrottle(err)) {
          throttles++;
          onThrottle();
          const limit = this.o.maxThrottleRetries ?? 100;
          this.o.log({
            event: 'task.throttled',
            task: describeTask(spec),
            throttles,
            concurrency: this.limiter.limit,
            error: (err as Error).message,
          });
          if (throttles > limit) {
            throw new BatchFailedError(
              base.batchTimeMs,
              `task ${describeTask(spec)} was throttled ${throttles} times in a row (the invoker is overloaded; ` +
                'lower the input rate or raise the function concurrency)',
              err,
            );
          }
          throttledLast = true;
          const wait = fullJitterMs(
            this.o.retryBackoffMs,
            this.o.throttleBackoffCapMs ?? 5_000,
            throttles - 1,
          );
          await new Promise((r) => setTimeout(r, wait));
          continue;
        }
        // lost input: a MissingDataError, also inside an invoker's error (decoded across a boundary)
        const key = causeOf(err, MissingDataError)?.key;
        if (key) {
          this.o.log({
            event: 'task.input-lost',
            task: describeTask(spec),
            key,
            error: (err as Error).message,
          });
          if (key && recoveries < MAX_RECOVERIES_PER_TASK && (await this.o.recover(key))) {
            recoveries++;
            onRecovery();
            continue;
          }
          if (key?.startsWith('inputs/')) {
            throw new BatchFailedError(
              base.batchTimeMs,
              `input block ${key} is gone and input cannot be recomputed (it is the source of truth): ` +
                'restore it, raise retainInputsMs if retention removed it, or start over with a new store (--fresh)',
              err,
            );
          }
        }
        const retryable = !(err instanceof SluiceError) || err.retryable;
        failures.n++;
        this.o.log({
          event: 'task.failed',
          task: describeTask(spec),
          error: (err as Error).message,
          retryable,
        });
        if (!retryable || failures.n >= max) {
          throw new BatchFailedError(
            base.batchTimeMs,
            // one rule: "(attempt N)" numbers every run of this task from 1 (retries, speculative
            // copies, re-runs after a recovery); the limit counts failures (maxTaskAttempts)
            `task ${describeTask(spec)} failed${retryable ? ` ${failures.n} times (maxTaskAttempts ${max})` : ' (not retryable)'}: ${(err as Error).message}`,
            err,
          );
        }
        await new Promise((r) => setTimeout(r, this.o.retryBackoffMs * 2 ** (failures.n - 1)));
      }
    }
  }
}
