/**
 * The partition function's payload, shared by `LambdaInvoker` (caller) and the partition handler.
 *
 * A request is either one TaskSpec (the payload is the spec itself) or a pack of several small
 * tasks `{tasks: TaskSpec[]}`. The answer is the TaskResult for a single spec, and
 * `{results: PackedOutcome[]}` for a pack, one outcome per task in the same order, so one failing
 * task does not fail its neighbours. A TaskSpec never has a `tasks` field, so the two shapes cannot
 * be confused.
 *
 * A single task that fails simply throws: Lambda reports it as `FunctionError: Unhandled` with
 * `{errorType, errorMessage, trace}`. Throw `NonRetryableTaskError` (or any error with
 * `retryable = false`, such as the engine's non-retryable `SluiceError`s, which
 * `handlePartitionPayload` rethrows as `NonRetryableTaskError`) for a failure a retry cannot fix.
 *
 * @module
 */
import type { TaskResult, TaskSpec } from '../shared/core/task.ts';
import { NonRetryableTaskError } from './errors.ts';

export interface TaskPackRequest {
  readonly tasks: readonly TaskSpec[];
}

export interface PackedError {
  readonly errorType: string;
  readonly errorMessage: string;
  readonly retryable: boolean;
  readonly trace?: readonly string[];
}

export type PackedOutcome =
  | { readonly ok: true; readonly result: TaskResult }
  | { readonly ok: false; readonly error: PackedError };

export interface TaskPackResponse {
  readonly results: readonly PackedOutcome[];
}

export type PartitionRequest = TaskSpec | TaskPackRequest;
export type PartitionResponse = TaskResult | TaskPackResponse;

export function isTaskPack(event: unknown): event is TaskPackRequest {
  return event !== null && typeof event === 'object' && Array.isArray((event as { tasks?: unknown }).tasks);
}

/** Error types (Lambda's `errorType`, i.e. the thrown error's `name`) that a retry cannot fix. */
export const NON_RETRYABLE_ERROR_TYPES: ReadonlySet<string> = new Set([
  'NonRetryableTaskError',
  // The engine's errors that are never retryable (shared/errors.ts).
  'ConfigError',
  'GraphError',
  'IncompatibleGraphError',
  'InvalidTaskSpecError',
  // Lambda's own deterministic failures.
  'Function.ResponseSizeTooLarge',
  'Runtime.HandlerNotFound',
  'Runtime.ImportModuleError',
  'Runtime.UserCodeSyntaxError',
]);

/** Whether a thrown error may succeed on retry: `retryable: false` or a known type says no. */
export function errorIsRetryable(error: unknown): boolean {
  if (error !== null && typeof error === 'object') {
    const e = error as { retryable?: unknown; name?: unknown };
    if (e.retryable === false) return false;
    if (typeof e.name === 'string' && NON_RETRYABLE_ERROR_TYPES.has(e.name)) return false;
  }
  return true;
}

/** The `{errorType, errorMessage, trace}` shape Lambda's Node runtime uses for a thrown error. */
export function toLambdaError(error: unknown): { errorType: string; errorMessage: string; trace: string[] } {
  if (error instanceof Error) {
    return {
      errorType: error.name || 'Error',
      errorMessage: error.message,
      trace: (error.stack ?? '').split('\n'),
    };
  }
  return { errorType: 'Error', errorMessage: String(error), trace: [] };
}

/**
 * Runs a partition payload with `runTask` for each spec: the body of a partition handler.
 * A single spec returns its result (or throws); a pack returns one outcome per task.
 */
export async function handlePartitionPayload(
  event: unknown,
  runTask: (spec: TaskSpec) => Promise<TaskResult>,
  options: { packConcurrency?: number } = {},
): Promise<PartitionResponse> {
  if (!isTaskPack(event)) {
    try {
      return await runTask(event as TaskSpec);
    } catch (error) {
      // Lambda reports only name, message and stack: carry "not retryable" in the name.
      if (errorIsRetryable(error) || (error as Error)?.name === 'NonRetryableTaskError') throw error;
      const e = toLambdaError(error);
      throw new NonRetryableTaskError(`${e.errorType}: ${e.errorMessage}`, { cause: error });
    }
  }
  const tasks = event.tasks;
  const results: PackedOutcome[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      try {
        results[index] = { ok: true, result: await runTask(tasks[index]!) };
      } catch (error) {
        const e = toLambdaError(error);
        results[index] = { ok: false, error: { ...e, retryable: errorIsRetryable(error) } };
      }
    }
  };
  const concurrency = Math.max(1, Math.min(options.packConcurrency ?? 4, tasks.length));
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { results };
}
