/**
 * Errors a user can meet. Each says what went wrong and what to do, and `retryable` tells the
 * driver whether running the same task again could help.
 *
 * @module
 */
import type { LeaseRecord } from './core/lease.ts';

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

/** The worker runs a pipeline whose graph differs from the driver's (a deploy in progress). */
export class GraphMismatchError extends SluiceError {
  constructor(expected: string, actual: string) {
    super(
      `Task was planned for graph ${expected} but this worker loaded graph ${actual}: the pipeline module differs between driver and worker`,
      { retryable: false },
    );
    this.name = 'GraphMismatchError';
  }
}

export class LeaseHeldError extends SluiceError {
  readonly holder: LeaseRecord;
  constructor(holder: LeaseRecord) {
    super(
      `Another driver (${holder.owner}) holds the lease on this store until ${new Date(holder.expiresAtMs).toISOString()}; ` +
        'stop it first, wait for its lease to expire, or use another store ' +
        '(sluice run --force takes the lease regardless, if you know that driver is gone).',
    );
    this.name = 'LeaseHeldError';
    this.holder = holder;
  }
}

/** This driver's lease was taken by another driver: it must not write anything more. Not retryable. */
export class LeaseLostError extends SluiceError {
  readonly holder: LeaseRecord | undefined;
  constructor(owner: string, epoch: number, holder: LeaseRecord | undefined, detail: string) {
    super(
      `This driver (${owner}, lease epoch ${epoch}) lost its lease on the store` +
        (holder ? ` to ${holder.owner} (epoch ${holder.epoch})` : '') +
        `; it stops at once and commits nothing more (${detail}). ` +
        'The other driver carries on from what is stored; run only one driver per store.',
      { retryable: false },
    );
    this.name = 'LeaseLostError';
    this.holder = holder;
  }
}

/** A record the codec cannot store faithfully (see "Records" in docs/API.md). */
export class UnsupportedRecordError extends SluiceError {
  constructor(message: string) {
    super(message, { retryable: false }); // the same record fails the same way on every attempt
    this.name = 'UnsupportedRecordError';
  }
}

// ---- across a process boundary ----------------------------------------------------------------

/**
 * An error as it crosses a process boundary (a worker thread's message, a Lambda payload): its
 * class name, message, whether a retry may help, and the fields of its class (`details`: the key
 * of a MissingDataError, the operator of a RecordError, `throttled`...). `decodeError` gives back
 * an instance of the same class with the same fields, so the driver reads `err.key`, never the
 * message.
 */
export interface EncodedError {
  readonly name: string;
  readonly message: string;
  readonly retryable: boolean;
  readonly details?: Readonly<Record<string, unknown>>;
  readonly stack?: string;
}

type ErrorClass = abstract new (...args: never[]) => Error;
const errorClasses = new Map<string, ErrorClass>();

/**
 * Makes error classes decodable by name (`decodeError`). This module registers its own; a module
 * that defines another error that may cross a boundary registers it beside its definition.
 */
export function registerErrorClasses(...classes: ErrorClass[]): void {
  for (const c of classes) errorClasses.set(c.name, c);
}

/** Names of failures that are never retryable though they carry no flag (Lambda's own, deterministic). */
const FATAL_NAMES = new Set<string>();

/** Marks error names (from outside the engine: Lambda's runtime) whose failures a retry cannot fix. */
export function registerFatalErrorNames(...names: string[]): void {
  for (const n of names) FATAL_NAMES.add(n);
}

/**
 * Whether a failure may go away if the work runs again: its `retryable` flag if it has one, false
 * for a name registered as fatal, else true (an unknown failure is worth one more try).
 */
export function isRetryable(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return true;
  const e = err as { retryable?: unknown; name?: unknown };
  if (typeof e.retryable === 'boolean') return e.retryable;
  return !(typeof e.name === 'string' && FATAL_NAMES.has(e.name));
}

const OWN = new Set(['name', 'message', 'stack', 'retryable', 'cause']);

function plain(value: unknown): boolean {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return true;
  if (Array.isArray(value)) return value.every(plain);
  if (typeof value === 'object') return Object.values(value as object).every(plain);
  return false;
}

/** Encodes an error once, for any process boundary (see EncodedError). */
export function encodeError(err: unknown): EncodedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err), retryable: true };
  const details: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(err)) if (!OWN.has(k) && plain(v)) details[k] = v;
  return {
    name: err.name,
    message: err.message,
    retryable: isRetryable(err),
    ...(Object.keys(details).length > 0 ? { details } : {}),
    ...(err.stack ? { stack: err.stack } : {}),
  };
}

/**
 * The error an EncodedError stands for: an instance of its registered class (same name, message,
 * flag and fields); a throttle by name becomes a ThrottledError; any other a TaskFailedError
 * carrying the name and the flag.
 */
export function decodeError(e: EncodedError): Error {
  const cls = errorClasses.get(e.name);
  const proto = cls
    ? cls.prototype
    : isThrottle({ name: e.name, throttled: e.details?.throttled })
      ? ThrottledError.prototype
      : TaskFailedError.prototype;
  const err = Object.create(proto) as Error;
  const fields: Record<string, unknown> = {
    ...e.details,
    name: e.name,
    message: e.message,
    retryable: e.retryable,
    ...(e.stack ? { stack: e.stack } : {}),
  };
  for (const [k, v] of Object.entries(fields)) {
    Object.defineProperty(err, k, {
      value: v,
      writable: true,
      configurable: true,
      enumerable: k !== 'stack' && k !== 'message' && k !== 'name',
    });
  }
  return err;
}

/** The first error of class `cls` in `err` and its chain of causes (an invoker's error wraps the task's). */
export function causeOf<E extends Error>(
  err: unknown,
  cls: abstract new (...args: never[]) => E,
): E | undefined {
  for (let e = err, depth = 0; e !== null && e !== undefined && depth < 8; depth++) {
    if (e instanceof cls) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Serializes an error for a worker message (the codec: see encodeError). */
export const errorToJson = encodeError;

/** The error a worker message carried (the codec: see decodeError). */
export function errorFromJson(json: EncodedError): Error {
  return decodeError(json);
}

registerErrorClasses(
  SluiceError,
  ConfigError,
  GraphError,
  IncompatibleGraphError,
  TaskFailedError,
  TaskTimeoutError,
  ThrottledError,
  MissingDataError,
  RecordError,
  BatchFailedError,
  GraphMismatchError,
  LeaseHeldError,
  LeaseLostError,
  UnsupportedRecordError,
);
