/**
 * Errors a user can meet. Each says what went wrong and what to do, and `retryable` tells the
 * driver whether running the same task again could help.
 *
 * @module
 */
export class SluiceError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SluiceError';
    this.retryable = options?.retryable ?? false;
  }
}

/** A bad option or configuration value; raised at start-up and names the option. */
export class ConfigError extends SluiceError {
  readonly option: string;
  constructor(option: string, message: string) {
    super(`Invalid option '${option}': ${message}`);
    this.name = 'ConfigError';
    this.option = option;
  }
}

/** A pipeline graph that cannot run (bad window, missing output, wrong use of the API). */
export class GraphError extends SluiceError {
  constructor(message: string) {
    super(message);
    this.name = 'GraphError';
  }
}

/** The stored state was written by a pipeline whose graph is not compatible with this one. */
export class IncompatibleGraphError extends SluiceError {
  readonly storedFingerprint: string;
  readonly currentFingerprint: string;
  constructor(stored: string, current: string, detail: string) {
    super(
      `The store holds batches of a different pipeline graph (stored fingerprint ${stored}, this pipeline ${current}). ` +
        `${detail} Use a new store directory, or run the pipeline version that wrote it.`,
    );
    this.name = 'IncompatibleGraphError';
    this.storedFingerprint = stored;
    this.currentFingerprint = current;
  }
}

/** A task failed in a way a retry may fix (worker died, timeout, store hiccup). */
export class TaskFailedError extends SluiceError {
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, { retryable: true, ...options });
    this.name = 'TaskFailedError';
  }
}

export class TaskTimeoutError extends TaskFailedError {
  constructor(what: string, timeoutMs: number) {
    super(`${what} did not finish within ${timeoutMs} ms`, { retryable: true });
    this.name = 'TaskTimeoutError';
  }
}

/**
 * The service refused the request because it is busy (Lambda 429 TooManyRequestsException or a
 * 409 "busy", S3 503 SlowDown, SQS throttling, a local executor with no free slot). The work never
 * ran: it is retried with backoff and jitter and does not use up a task's failure attempts.
 */
export class ThrottledError extends SluiceError {
  readonly throttled = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { retryable: true, ...(options?.cause === undefined ? {} : { cause: options.cause }) });
    this.name = 'ThrottledError';
  }
}

/** Error names that mean "refused because busy" wherever they come from. */
const THROTTLE_NAMES = new Set([
  'ThrottledError',
  'LambdaThrottledError',
  'TooManyRequestsException',
  'SlowDown',
  'ThrottlingException',
  'Throttling',
  'RequestThrottled',
  'RequestLimitExceeded',
]);

/**
 * True for a refusal because of load (see ThrottledError): an error marked `throttled: true`
 * (AWS adapters mark theirs), or one named like a throttle, also after crossing a process boundary.
 */
export function isThrottle(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { throttled?: unknown; name?: unknown };
  return e.throttled === true || (typeof e.name === 'string' && THROTTLE_NAMES.has(e.name));
}

/** Data the engine expected in the store is missing or does not match its checksum. */
export class MissingDataError extends SluiceError {
  readonly key: string;
  constructor(key: string, reason: string) {
    super(`Stored object ${key} ${reason}`, { retryable: true });
    this.name = 'MissingDataError';
    this.key = key;
  }
}

/**
 * A record made an operator throw, or cannot be stored, and the pipeline asked to stop on such
 * records (`onRecordError: 'fail'`). Not retryable: the same record fails the same way again.
 */
export class RecordError extends SluiceError {
  readonly operator: string;
  constructor(operator: string, what: string, reason: string, cause?: unknown) {
    super(
      `${operator} failed on ${what}: ${reason}. The batch stops because onRecordError is 'fail': ` +
        "fix the function or the data, drop the option to dead-letter such records, or skip the batch with 'sluice run --skip-batch <time>'",
      { cause, retryable: false },
    );
    this.name = 'RecordError';
    this.operator = operator;
  }
}

/** A batch could not be completed after every retry. */
export class BatchFailedError extends SluiceError {
  readonly batchTimeMs: number;
  constructor(batchTimeMs: number, message: string, cause?: unknown) {
    super(`Batch ${batchTimeMs} failed: ${message}`, { cause });
    this.name = 'BatchFailedError';
    this.batchTimeMs = batchTimeMs;
  }
}

/** Serializes an error for a worker message or a Lambda response. */
export function errorToJson(err: unknown): {
  name: string;
  message: string;
  retryable: boolean;
  stack?: string;
} {
  if (err instanceof Error) {
    const retryable = err instanceof SluiceError ? err.retryable : true;
    return { name: err.name, message: err.message, retryable, stack: err.stack };
  }
  return { name: 'Error', message: String(err), retryable: true };
}

export function errorFromJson(json: { name: string; message: string; retryable?: boolean }): SluiceError {
  if (isThrottle(json)) {
    const throttled = new ThrottledError(json.message);
    throttled.name = json.name;
    return throttled;
  }
  const err = new TaskFailedError(json.message, { retryable: json.retryable ?? true });
  err.name = json.name;
  return err;
}
