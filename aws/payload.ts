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
import { type EncodedError, encodeError } from '../shared/errors.ts';

export interface TaskPackRequest {
  readonly tasks: readonly TaskSpec[];
}

export type PackedOutcome =
  | { readonly ok: true; readonly result: TaskResult }
  | { readonly ok: false; readonly error: EncodedError };

export interface TaskPackResponse {
  readonly results: readonly PackedOutcome[];
}

export type PartitionRequest = TaskSpec | TaskPackRequest;
export type PartitionResponse = TaskResult | TaskPackResponse;

export function isTaskPack(event: unknown): event is TaskPackRequest {
  return event !== null && typeof event === 'object' && Array.isArray((event as { tasks?: unknown }).tasks);
}

/**
 * Marks the line of a thrown error's message that carries its encoding (`EncodedError` as JSON):
 * Lambda reports only a thrown error's name, message and stack, so the rest travels in the message.
 */
export const ENCODED_ERROR_MARK = '\n[sluice:error] ';

/** The error a partition handler throws for a failed single task: its name, message and encoding. */
export function throwableOf(error: unknown): Error {
  // the stack travels as Lambda's trace: the encoding carries the rest
  const { stack, ...e } = encodeError(error);
  // not retryable: named so, also for readers of the Lambda's logs and metrics (errorType)
  const name = e.retryable ? e.name : 'NonRetryableTaskError';
  const text = e.retryable || e.name === 'NonRetryableTaskError' ? e.message : `${e.name}: ${e.message}`;
  const thrown = new Error(`${text}${ENCODED_ERROR_MARK}${JSON.stringify(e)}`);
  thrown.name = name;
  if (stack) thrown.stack = stack;
  return thrown;
}

/** Splits a Lambda `errorMessage` into the readable message and the encoded error, if it carries one. */
export function encodedOf(errorMessage: string): { message: string; encoded?: EncodedError } {
  const at = errorMessage.indexOf(ENCODED_ERROR_MARK);
  if (at < 0) return { message: errorMessage };
  try {
    const encoded = JSON.parse(errorMessage.slice(at + ENCODED_ERROR_MARK.length)) as EncodedError;
    return { message: errorMessage.slice(0, at), encoded };
  } catch {
    return { message: errorMessage };
  }
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
      throw throwableOf(error);
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
        results[index] = { ok: false, error: encodeError(error) };
      }
    }
  };
  const concurrency = Math.max(1, Math.min(options.packConcurrency ?? 4, tasks.length));
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { results };
}
