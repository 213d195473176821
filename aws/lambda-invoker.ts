/**
 * The invoker port on Lambda: each task is a RequestResponse invocation of the partition function
 * with the TaskSpec as its JSON payload, answered by the TaskResult as JSON.
 *
 * Failures are classified for the driver (`error.retryable`):
 * - the function threw (`FunctionError`): retryable, unless its errorType says it is not (see
 *   the fatal names registered in aws/errors.ts, e.g. `NonRetryableTaskError`) or the payload carries
 *   `retryable: false`;
 * - throttling (429, and 409 ResourceConflictException "busy"): retried here with backoff and full
 *   jitter while the task's time allows (the function never ran), then `LambdaThrottledError`
 *   (retryable, `throttled`: the task runner backs off and lowers its concurrency, no failure attempt used);
 * - 5xx, network errors, functions not ready: retryable; other 4xx (no such function, payload too
 *   large, bad request): not retryable;
 * - the task's `timeoutMs` passed: `TaskTimeoutError` (retryable); the caller's signal: `AbortError`.
 *
 * Optional packing (`pack`): tasks submitted within `windowMs` of each other go together, up to
 * `maxTasks`, as one invocation `{tasks: [...]}` answered by `{results: [...]}` (payload.ts), which
 * saves invocations and cold starts for many small partitions.
 *
 * @module
 */
import { setMaxListeners } from 'node:events';
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { TaskResult, TaskSpec } from '../shared/core/task.ts';
import { decodeError, type EncodedError, isRetryable } from '../shared/errors.ts';
import type { InvokeOptions, Invoker } from '../shared/ports/invoker.ts';
import { createLambdaClient } from './clients.ts';
import {
  InvocationAbortedError,
  LambdaInvokeError,
  LambdaProtocolError,
  LambdaThrottledError,
  SluiceAwsError,
  TaskFunctionError,
  TaskTimeoutError,
} from './errors.ts';
import { encodedOf, type PackedOutcome } from './payload.ts';

export interface LambdaInvokerOptions {
  /** Function name, ARN or partial ARN of the partition function. */
  readonly functionName: string;
  /** Version or alias to invoke. */
  readonly qualifier?: string;
  /** Most tasks in flight at once (default 16); the driver never submits more. */
  readonly concurrency?: number;
  readonly client?: LambdaClient;
  /** How many times a throttled invocation is retried before giving up (default 6). */
  readonly throttleRetries?: number;
  /** Pack several tasks per invocation. Off by default. */
  readonly pack?: {
    /** Most tasks per invocation (>= 2 to have any effect). */
    readonly maxTasks: number;
    /** How long the first queued task waits for company (default 5 ms). */
    readonly windowMs?: number;
    /** Cap on a packed request's JSON size (default 5 MiB; Lambda's synchronous limit is 6 MB). */
    readonly maxPayloadBytes?: number;
  };
}

/** Counters since construction, for the per-batch cost report. */
export interface LambdaInvokerStats {
  invocations: number;
  tasks: number;
  throttled: number;
  functionErrors: number;
  timeouts: number;
  bytesOut: number;
  bytesIn: number;
  /** Sum of invocation wall times seen by the caller (an upper bound on billed duration). */
  durationMs: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const RETRYABLE_4XX = new Set([
  'ResourceConflictException',
  'ResourceNotReadyException',
  'EC2ThrottledException',
  'EC2UnexpectedException',
  'ENILimitReachedException',
  'SubnetIPAddressLimitReachedException',
  'EFSMountConnectivityException',
  'EFSMountTimeoutException',
  'EFSIOException',
  'SnapStartNotReadyException',
  'SnapStartTimeoutException',
  'CodeArtifactUserPendingException',
  'RequestTimeout',
  'RequestTimeoutException',
]);

/** 409 ResourceConflictException: the function (or a local executor's only slot) is busy. */
function isBusy(status: number | undefined, name: string): boolean {
  return status === 409 || name === 'ResourceConflictException';
}

interface AwsLikeError {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** A counting semaphore. */
class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];
  constructor(size: number) {
    this.free = size;
  }
  async acquire(signal: AbortSignal): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(grant);
    });
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/** A task waiting in (or sent with) a pack. */
interface PackEntry {
  readonly spec: TaskSpec;
  readonly bytes: number;
  readonly deadline: number;
  settled: boolean;
  resolve(result: TaskResult): void;
  reject(error: unknown): void;
  onSettle?: () => void;
}

function validateTaskResult(functionName: string, value: unknown): TaskResult {
  const v = value as Partial<TaskResult> | null;
  if (
    v === null ||
    typeof v !== 'object' ||
    typeof v.lineage !== 'object' ||
    v.lineage === null ||
    typeof v.committed !== 'boolean' ||
    typeof v.metrics !== 'object' ||
    v.metrics === null
  ) {
    const text = JSON.stringify(value);
    throw new LambdaProtocolError(
      functionName,
      `not a TaskResult: ${text === undefined ? 'undefined' : text.slice(0, 200)}`,
    );
  }
  return v as TaskResult;
}

export class LambdaInvoker implements Invoker {
  readonly functionName: string;
  readonly concurrency: number;
  readonly client: LambdaClient;
  private readonly ownsClient: boolean;
  private readonly qualifier: string | undefined;
  private readonly throttleRetries: number;
  private readonly slots: Slots;
  private readonly closeController = new AbortController();
  private readonly pack: { maxTasks: number; windowMs: number; maxPayloadBytes: number } | undefined;
  private packQueue: PackEntry[] = [];
  private packTimer: NodeJS.Timeout | undefined;
  private readonly counters: LambdaInvokerStats = {
    invocations: 0,
    tasks: 0,
    throttled: 0,
    functionErrors: 0,
    timeouts: 0,
    bytesOut: 0,
    bytesIn: 0,
    durationMs: 0,
  };

  constructor(options: LambdaInvokerOptions) {
    if (!options.functionName) throw new Error('LambdaInvoker: functionName is required');
    this.functionName = options.functionName;
    this.qualifier = options.qualifier;
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 16));
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? createLambdaClient({ maxSockets: Math.max(64, this.concurrency) });
    this.throttleRetries = options.throttleRetries ?? 6;
    this.slots = new Slots(this.concurrency);
    // Every task in flight listens for close(): many more than the default 10.
    setMaxListeners(0, this.closeController.signal);
    if (options.pack && options.pack.maxTasks >= 2) {
      this.pack = {
        maxTasks: Math.floor(options.pack.maxTasks),
        windowMs: options.pack.windowMs ?? 5,
        maxPayloadBytes: options.pack.maxPayloadBytes ?? 5 * 1024 * 1024,
      };
    }
  }

  describe(): string {
    const q = this.qualifier ? `:${this.qualifier}` : '';
    const p = this.pack ? `, up to ${this.pack.maxTasks} tasks per invocation` : '';
    return `lambda:${this.functionName}${q} (concurrency ${this.concurrency}${p})`;
  }

  invocationStats(): LambdaInvokerStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    this.closeController.abort(new InvocationAbortedError(`${this.functionName}: invoker closed`));
    if (this.packTimer) clearTimeout(this.packTimer);
    for (const entry of this.packQueue.splice(0)) {
      entry.reject(new InvocationAbortedError(`${this.functionName}: invoker closed`));
    }
    if (this.ownsClient) this.client.destroy();
  }

  invoke(spec: TaskSpec, options: InvokeOptions): Promise<TaskResult> {
    this.counters.tasks++;
    if (this.pack) return this.enqueue(spec, options);
    return this.withDeadline(options, `task ${describeSpec(spec)}`, async (signal, deadline) => {
      const value = await this.call(spec, signal, deadline);
      return validateTaskResult(this.functionName, value);
    });
  }

  /**
   * Runs `fn` with an AbortSignal that fires at the task's timeout, on the caller's signal or on
   * close, and turns those into TaskTimeoutError / AbortError.
   */
  private async withDeadline<R>(
    options: InvokeOptions,
    what: string,
    fn: (signal: AbortSignal, deadline: number) => Promise<R>,
  ): Promise<R> {
    const controller = new AbortController();
    const timeoutError = new TaskTimeoutError(`${this.functionName}: ${what}`, options.timeoutMs);
    const timer = setTimeout(() => controller.abort(timeoutError), options.timeoutMs);
    const onAbort = (source: AbortSignal) => () =>
      controller.abort(
        source.reason instanceof SluiceAwsError
          ? source.reason
          : new InvocationAbortedError(`${this.functionName}: ${what}`, source.reason),
      );
    const external = options.signal;
    const onExternal = external ? onAbort(external) : undefined;
    const onClose = onAbort(this.closeController.signal);
    if (external?.aborted || this.closeController.signal.aborted) {
      clearTimeout(timer);
      throw new InvocationAbortedError(`${this.functionName}: ${what}`, external?.reason);
    }
    if (external && onExternal) external.addEventListener('abort', onExternal, { once: true });
    this.closeController.signal.addEventListener('abort', onClose, { once: true });
    try {
      return await fn(controller.signal, Date.now() + options.timeoutMs);
    } catch (error) {
      if (controller.signal.aborted) {
        if (controller.signal.reason === timeoutError) this.counters.timeouts++;
        throw controller.signal.reason;
      }
      throw error;
    } finally {
      clearTimeout(timer);
      if (external && onExternal) external.removeEventListener('abort', onExternal);
      this.closeController.signal.removeEventListener('abort', onClose);
    }
  }

  /** One Invoke call (with throttle retries), holding a concurrency slot; returns the parsed payload. */
  private async call(payload: unknown, signal: AbortSignal, deadline: number): Promise<unknown> {
    const body = encoder.encode(JSON.stringify(payload));
    await this.slots.acquire(signal);
    try {
      for (let attempt = 0; ; attempt++) {
        const started = Date.now();
        this.counters.invocations++;
        this.counters.bytesOut += body.byteLength;
        try {
          const res = await this.client.send(
            new InvokeCommand({
              FunctionName: this.functionName,
              ...(this.qualifier ? { Qualifier: this.qualifier } : {}),
              InvocationType: 'RequestResponse',
              Payload: body,
            }),
            { abortSignal: signal },
          );
          this.counters.durationMs += Date.now() - started;
          const bytes = res.Payload ?? new Uint8Array(0);
          this.counters.bytesIn += bytes.byteLength;
          const text = decoder.decode(bytes);
          if (res.FunctionError) {
            this.counters.functionErrors++;
            throw this.functionError(res.FunctionError, text);
          }
          if (text.length === 0) return undefined;
          try {
            return JSON.parse(text) as unknown;
          } catch {
            throw new LambdaProtocolError(this.functionName, `invalid JSON: ${text.slice(0, 200)}`);
          }
        } catch (error) {
          this.counters.durationMs += signal.aborted ? 0 : Date.now() - started;
          if (signal.aborted || error instanceof SluiceAwsError) throw error;
          const e = error as AwsLikeError;
          const status = e.$metadata?.httpStatusCode;
          const name = e.name ?? 'Error';
          // 429, or 409 "busy" (a local executor refusing a second request, a function being updated)
          if (status === 429 || name === 'TooManyRequestsException' || isBusy(status, name)) {
            this.counters.throttled++;
            // exponential backoff with full jitter, so refused callers do not retry in step
            const backoff = Math.random() * Math.min(2_000, 50 * 2 ** attempt);
            if (attempt >= this.throttleRetries || Date.now() + backoff >= deadline) {
              throw new LambdaThrottledError(this.functionName, attempt + 1, error);
            }
            await sleep(backoff);
            if (signal.aborted) throw signal.reason;
            continue;
          }
          throw this.invokeError(error);
        }
      }
    } finally {
      this.slots.release();
    }
  }

  private functionError(functionError: string, text: string): TaskFunctionError {
    let parsed: { errorType?: unknown; errorMessage?: unknown; trace?: unknown; retryable?: unknown } = {};
    try {
      const value: unknown = JSON.parse(text);
      if (value !== null && typeof value === 'object') parsed = value as typeof parsed;
    } catch {
      parsed = { errorMessage: text };
    }
    const errorType = typeof parsed.errorType === 'string' ? parsed.errorType : 'Unknown';
    const raw = typeof parsed.errorMessage === 'string' ? parsed.errorMessage : text.slice(0, 1000);
    const trace = Array.isArray(parsed.trace) ? parsed.trace.map(String) : [];
    // a partition handler's error carries its encoding (payload.ts); Lambda's own errors only a name
    const { message: errorMessage, encoded } = encodedOf(raw);
    const retryable = encoded
      ? encoded.retryable
      : parsed.retryable !== false && isRetryable({ name: errorType });
    return new TaskFunctionError(
      this.functionName,
      { functionError, errorType, errorMessage, trace },
      { retryable, ...(encoded ? { cause: decodeError(encoded) } : {}) },
    );
  }

  private invokeError(error: unknown): LambdaInvokeError {
    const e = error as AwsLikeError;
    const status = e.$metadata?.httpStatusCode;
    const name = e.name ?? 'Error';
    // No HTTP status: the request never got an answer (connection refused or reset, socket timeout).
    const retryable = status === undefined || status >= 500 || RETRYABLE_4XX.has(name);
    return new LambdaInvokeError(
      this.functionName,
      `${name}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? String(error)}`,
      { awsErrorName: name, ...(status !== undefined ? { statusCode: status } : {}) },
      { retryable, cause: error },
    );
  }

  // ---- packing ---------------------------------------------------------------------------------

  private enqueue(spec: TaskSpec, options: InvokeOptions): Promise<TaskResult> {
    const pack = this.pack!;
    return new Promise<TaskResult>((resolve, reject) => {
      const what = `task ${describeSpec(spec)}`;
      if (options.signal?.aborted || this.closeController.signal.aborted) {
        reject(new InvocationAbortedError(`${this.functionName}: ${what}`, options.signal?.reason));
        return;
      }
      const settle = () => {
        entry.settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        const i = this.packQueue.indexOf(entry);
        if (i >= 0) this.packQueue.splice(i, 1);
        entry.onSettle?.();
      };
      const entry: PackEntry = {
        spec,
        bytes: encoder.encode(JSON.stringify(spec)).byteLength + 1,
        deadline: Date.now() + options.timeoutMs,
        settled: false,
        resolve: (result) => {
          if (entry.settled) return;
          settle();
          resolve(result);
        },
        reject: (error) => {
          if (entry.settled) return;
          settle();
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.counters.timeouts++;
        entry.reject(new TaskTimeoutError(`${this.functionName}: ${what}`, options.timeoutMs));
      }, options.timeoutMs);
      const onAbort = () =>
        entry.reject(new InvocationAbortedError(`${this.functionName}: ${what}`, options.signal?.reason));
      options.signal?.addEventListener('abort', onAbort, { once: true });

      this.packQueue.push(entry);
      if (this.packQueue.length >= pack.maxTasks) this.flush();
      else this.packTimer ??= setTimeout(() => this.flush(), pack.windowMs);
    });
  }

  private flush(): void {
    const pack = this.pack!;
    if (this.packTimer) clearTimeout(this.packTimer);
    this.packTimer = undefined;
    while (this.packQueue.length > 0) {
      const group: PackEntry[] = [];
      let bytes = 16;
      while (this.packQueue.length > 0 && group.length < pack.maxTasks) {
        const entry = this.packQueue[0]!;
        if (group.length > 0 && bytes + entry.bytes > pack.maxPayloadBytes) break;
        this.packQueue.shift();
        group.push(entry);
        bytes += entry.bytes;
      }
      void this.sendPack(group);
    }
  }

  private async sendPack(group: PackEntry[]): Promise<void> {
    const controller = new AbortController();
    // The invocation is abandoned only when no task of the pack still waits for it.
    for (const entry of group) {
      entry.onSettle = () => {
        if (group.every((e) => e.settled)) controller.abort(new InvocationAbortedError(this.functionName));
      };
    }
    const onClose = () => controller.abort(this.closeController.signal.reason);
    this.closeController.signal.addEventListener('abort', onClose, { once: true });
    const deadline = Math.max(...group.map((e) => e.deadline));
    try {
      if (group.length === 1) {
        const entry = group[0]!;
        const value = await this.call(entry.spec, controller.signal, deadline);
        entry.resolve(validateTaskResult(this.functionName, value));
        return;
      }
      const value = (await this.call({ tasks: group.map((e) => e.spec) }, controller.signal, deadline)) as {
        results?: unknown;
      } | null;
      const results = value?.results;
      if (!Array.isArray(results) || results.length !== group.length) {
        throw new LambdaProtocolError(
          this.functionName,
          `expected {results: [${group.length} outcomes]} for a pack of ${group.length} tasks`,
        );
      }
      group.forEach((entry, i) => {
        const outcome = results[i] as PackedOutcome | undefined;
        if (outcome?.ok === true) {
          try {
            entry.resolve(validateTaskResult(this.functionName, outcome.result));
          } catch (error) {
            entry.reject(error);
          }
        } else if (outcome?.ok === false) {
          const err: EncodedError = outcome.error;
          this.counters.functionErrors++;
          entry.reject(
            new TaskFunctionError(
              this.functionName,
              {
                functionError: 'Unhandled',
                errorType: err.name,
                errorMessage: err.message,
                trace: (err.stack ?? '').split('\n'),
              },
              { retryable: err.retryable, cause: decodeError(err) },
            ),
          );
        } else {
          entry.reject(new LambdaProtocolError(this.functionName, `outcome ${i} of the pack is malformed`));
        }
      });
    } catch (error) {
      for (const entry of group) entry.reject(error);
    } finally {
      this.closeController.signal.removeEventListener('abort', onClose);
    }
  }
}

function describeSpec(spec: TaskSpec): string {
  return `${spec.rddId}@${spec.batchTimeMs}#${spec.partition} (stage ${spec.stageId}, attempt ${spec.attempt})`;
}
