/**
 * The invoker port: runs task specs somewhere (worker threads, Lambda functions, this thread)
 * and reports their results. The driver decides what to run, in what order, and what to retry;
 * an invoker only runs one spec per call and honours the timeout.
 *
 * @module
 */
import type { TaskResult, TaskSpec } from '../core/task.ts';

export interface InvokeOptions {
  /** Give up on the task after this long; the invoker rejects with a retryable `TaskTimeoutError`. */
  readonly timeoutMs: number;
  /** Aborted when the driver no longer needs the result (a speculative copy already won). */
  readonly signal?: AbortSignal;
}

export interface Invoker {
  /** How many tasks may run at once; the driver never has more in flight. */
  readonly concurrency: number;
  invoke(spec: TaskSpec, options: InvokeOptions): Promise<TaskResult>;
  close(): Promise<void>;
  describe(): string;
}
