/**
 * Errors raised by the AWS adapters. Every one is a `SluiceAwsError`, a `SluiceError` of the engine,
 * so the driver reads its `retryable` flag: whether the same operation can succeed if tried again
 * (throttling, 5xx, timeouts, network) or not (no such bucket or function, a bug, bad input).
 *
 * @module
 */
import {
  isRetryable,
  registerErrorClasses,
  registerFatalErrorNames,
  SluiceError,
  TaskTimeoutError,
} from '../shared/errors.ts';

/** The engine's own timeout error (retryable), raised by `LambdaInvoker` when `timeoutMs` passes. */
export { TaskTimeoutError };

export interface SluiceAwsErrorOptions {
  readonly retryable: boolean;
  readonly cause?: unknown;
}

export class SluiceAwsError extends SluiceError {
  constructor(message: string, options: SluiceAwsErrorOptions) {
    super(message, {
      retryable: options.retryable,
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
    this.name = 'SluiceAwsError';
  }
}

/** An S3 request failed (after the SDK's own retries). */
export class ObjectStoreError extends SluiceAwsError {
  readonly operation: string;
  readonly key: string;
  constructor(operation: string, key: string, message: string, options: SluiceAwsErrorOptions) {
    super(`S3 ${operation} ${key}: ${message}`, options);
    this.name = 'ObjectStoreError';
    this.operation = operation;
    this.key = key;
  }
}

/**
 * A conditional write kept answering 409 ConditionalRequestConflict: another write to the same key
 * was still in progress after every retry. Retryable: once that write settles, a retry gets a clear answer.
 */
export class ConditionalWriteConflictError extends ObjectStoreError {
  constructor(key: string, attempts: number, cause?: unknown) {
    super(
      'putIfAbsent',
      key,
      `still 409 ConditionalRequestConflict after ${attempts} attempts (a concurrent write is in progress)`,
      { retryable: true, cause },
    );
    this.name = 'ConditionalWriteConflictError';
  }
}

/** An SQS request failed (receive, delete, send). */
export class QueueError extends SluiceAwsError {
  readonly operation: string;
  constructor(operation: string, message: string, options: SluiceAwsErrorOptions) {
    super(`SQS ${operation}: ${message}`, options);
    this.name = 'QueueError';
    this.operation = operation;
  }
}

/** Some messages of an acknowledged batch could not be deleted; they will be redelivered and de-duplicated. */
export class AckError extends QueueError {
  readonly failed: number;
  constructor(failed: number, total: number, detail: string, cause?: unknown) {
    super('DeleteMessageBatch', `${failed} of ${total} messages not deleted (${detail})`, {
      retryable: true,
      cause,
    });
    this.name = 'AckError';
    this.failed = failed;
  }
}

/** Some events could not be sent; `unsent` holds them, in order, so the caller can retry or report them. */
export class SendError extends QueueError {
  readonly unsent: readonly unknown[];
  constructor(message: string, unsent: readonly unknown[], options: SluiceAwsErrorOptions) {
    super('SendMessageBatch', message, options);
    this.name = 'SendError';
    this.unsent = unsent;
  }
}

/** The Lambda service refused or failed the Invoke call itself (not the function). */
export class LambdaInvokeError extends SluiceAwsError {
  readonly functionName: string;
  readonly awsErrorName: string | undefined;
  readonly statusCode: number | undefined;
  constructor(
    functionName: string,
    message: string,
    details: { awsErrorName?: string; statusCode?: number },
    options: SluiceAwsErrorOptions,
  ) {
    super(`Lambda ${functionName}: ${message}`, options);
    this.name = 'LambdaInvokeError';
    this.functionName = functionName;
    this.awsErrorName = details.awsErrorName;
    this.statusCode = details.statusCode;
  }
}

/**
 * Invoke was throttled (429 TooManyRequestsException, or 409 ResourceConflictException "busy" from
 * a local executor) after the invoker's own retries. Always retryable, and marked `throttled` so the
 * engine's task runner retries it with backoff without using up a failure attempt (`isThrottle`).
 */
export class LambdaThrottledError extends LambdaInvokeError {
  readonly throttled = true;
  constructor(functionName: string, attempts: number, cause?: unknown) {
    super(
      functionName,
      `throttled after ${attempts} attempts`,
      { awsErrorName: 'TooManyRequestsException', statusCode: 429 },
      { retryable: true, cause },
    );
    this.name = 'LambdaThrottledError';
  }
}

/**
 * The function ran and failed: Lambda answered with `X-Amz-Function-Error` (`Unhandled`, or `Handled`)
 * and a payload `{errorType, errorMessage, trace}`. Retryable unless the handler marked it otherwise.
 */
export class TaskFunctionError extends SluiceAwsError {
  readonly functionName: string;
  readonly functionError: string;
  readonly errorType: string;
  readonly errorMessage: string;
  readonly trace: readonly string[];
  constructor(
    functionName: string,
    details: { functionError: string; errorType: string; errorMessage: string; trace?: readonly string[] },
    options: SluiceAwsErrorOptions,
  ) {
    super(`${functionName} failed: ${details.errorType}: ${details.errorMessage}`, options);
    this.name = 'TaskFunctionError';
    this.functionName = functionName;
    this.functionError = details.functionError;
    this.errorType = details.errorType;
    this.errorMessage = details.errorMessage;
    this.trace = details.trace ?? [];
  }
}

/** The function answered with something that is not a TaskResult. Not retryable: it is a bug, not bad luck. */
export class LambdaProtocolError extends SluiceAwsError {
  constructor(functionName: string, message: string) {
    super(`Lambda ${functionName} returned an unexpected payload: ${message}`, { retryable: false });
    this.name = 'LambdaProtocolError';
  }
}

/** The caller aborted the invocation (its `signal`): nobody needs the result any more. */
export class InvocationAbortedError extends SluiceAwsError {
  constructor(what: string, cause?: unknown) {
    super(`${what} aborted by the caller`, { retryable: false, cause });
    this.name = 'AbortError';
  }
}

/**
 * Thrown by a partition handler for a failure that will not go away on retry (a graph fingerprint
 * mismatch, a missing operator, a corrupt spec). Lambda's Node.js runtime reports only the error's
 * `name` (as `errorType`), message and stack, so the name is what carries "do not retry" to
 * `LambdaInvoker`; `handlePartitionPayload` rethrows any error with `retryable === false` as this.
 */
export class NonRetryableTaskError extends SluiceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { retryable: false, ...(options?.cause === undefined ? {} : { cause: options.cause }) });
    this.name = 'NonRetryableTaskError';
  }
}

/** Lambda's own failures that a retry cannot fix (no flag crosses with them: known by name). */
registerFatalErrorNames(
  'NonRetryableTaskError',
  'Function.ResponseSizeTooLarge',
  'Runtime.HandlerNotFound',
  'Runtime.ImportModuleError',
  'Runtime.UserCodeSyntaxError',
);

registerErrorClasses(
  SluiceAwsError,
  ObjectStoreError,
  ConditionalWriteConflictError,
  QueueError,
  AckError,
  SendError,
  LambdaInvokeError,
  LambdaThrottledError,
  TaskFunctionError,
  LambdaProtocolError,
  InvocationAbortedError,
  NonRetryableTaskError,
);

/** Whether a failure may go away on retry: one rule for every layer (shared/errors.ts). */
export { isRetryable };
