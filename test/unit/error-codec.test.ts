/**
 * One codec for task failures across a process boundary (issue 10, item 3): an error is encoded
 * once as `{ name, message, retryable, details }` and decoded back to the same class with the same
 * fields, through a worker thread's message, a Lambda payload (a thrown single task, a pack's
 * outcome) and the task runner, which finds a lost key in the decoded error, never in its message.
 */
import { describe, expect, it } from 'vitest';
import { NonRetryableTaskError, TaskFunctionError } from '../../aws/errors.ts';
import { encodedOf, handlePartitionPayload, throwableOf } from '../../aws/payload.ts';
import { GraphMismatchError } from '../../shared/core/executor.ts';
import { LeaseLostError } from '../../shared/core/lease.ts';
import type { TaskResult, TaskSpec } from '../../shared/core/task.ts';
import { TaskRunner } from '../../shared/core/task-runner.ts';
import {
  ConfigError,
  causeOf,
  decodeError,
  type EncodedError,
  encodeError,
  isRetryable,
  MissingDataError,
  RecordError,
  SluiceError,
  TaskFailedError,
  ThrottledError,
} from '../../shared/errors.ts';
import type { Invoker } from '../../shared/ports/invoker.ts';

/** Through JSON, as a worker message or a Lambda payload carries it. */
const across = (err: unknown): Error =>
  decodeError(JSON.parse(JSON.stringify(encodeError(err))) as EncodedError);

describe('the task failure codec', () => {
  it('gives back the same class with its fields: MissingDataError keeps its key', () => {
    const back = across(new MissingDataError('rdd/000000000001000/ds3/1.blk', 'is missing'));
    expect(back).toBeInstanceOf(MissingDataError);
    expect(back).toBeInstanceOf(SluiceError);
    expect((back as MissingDataError).key).toBe('rdd/000000000001000/ds3/1.blk');
    expect(back.message).toBe('Stored object rdd/000000000001000/ds3/1.blk is missing');
    expect((back as MissingDataError).retryable).toBe(true);
  });

  it('keeps throttles, record errors, graph mismatches and lost leases as themselves', () => {
    const throttled = across(new ThrottledError('busy'));
    expect(throttled).toBeInstanceOf(ThrottledError);
    expect((throttled as ThrottledError).throttled).toBe(true);
    const record = across(new RecordError('map', 'key a', 'boom'));
    expect(record).toBeInstanceOf(RecordError);
    expect(record).toMatchObject({ operator: 'map', retryable: false });
    const mismatch = across(new GraphMismatchError('abc', 'def'));
    expect(mismatch).toBeInstanceOf(GraphMismatchError);
    expect(isRetryable(mismatch)).toBe(false);
    const lost = across(new LeaseLostError('me', 3, undefined, 'a check'));
    expect(lost).toBeInstanceOf(LeaseLostError);
    expect(isRetryable(lost)).toBe(false);
    const config = across(new ConfigError('partitions', 'must be positive'));
    expect(config).toMatchObject({ option: 'partitions', name: 'ConfigError' });
  });

  it('an unknown error stays retryable and keeps its name; a throttle by name is a ThrottledError', () => {
    const plain = across(new TypeError('x is undefined'));
    expect(plain).toBeInstanceOf(TaskFailedError);
    expect(plain).toMatchObject({ name: 'TypeError', message: 'x is undefined', retryable: true });
    const named = decodeError({ name: 'TooManyRequestsException', message: 'slow down', retryable: true });
    expect(named).toBeInstanceOf(ThrottledError);
  });

  it('a single task thrown in a Lambda carries its encoding in the message, readable before it', () => {
    const thrown = throwableOf(new MissingDataError('shuffle/000000000002000/s1/0.blk', 'is corrupt'));
    expect(thrown.name).toBe('MissingDataError');
    const { message, encoded } = encodedOf(thrown.message);
    expect(message).toBe('Stored object shuffle/000000000002000/s1/0.blk is corrupt');
    const back = decodeError(encoded!);
    expect(back).toBeInstanceOf(MissingDataError);
    expect((back as MissingDataError).key).toBe('shuffle/000000000002000/s1/0.blk');
    const fatal = throwableOf(new GraphMismatchError('a', 'b'));
    expect(fatal.name).toBe('NonRetryableTaskError');
    expect(fatal.message.startsWith('GraphMismatchError: ')).toBe(true);
    expect(decodeError(encodedOf(fatal.message).encoded!)).toBeInstanceOf(GraphMismatchError);
  });

  it("a pack's failed outcome is the encoded error", async () => {
    const response = await handlePartitionPayload({ tasks: [{ partition: 0 }] }, async () => {
      throw new RecordError('reduceByKey', 'key a', 'no');
    });
    const outcome = (response as { results: { ok: boolean; error?: EncodedError }[] }).results[0]!;
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatchObject({
      name: 'RecordError',
      retryable: false,
      details: { operator: 'reduceByKey' },
    });
    expect(decodeError(outcome.error!)).toBeInstanceOf(RecordError);
  });

  it('the task runner recovers the key of a MissingDataError inside an invoker error', async () => {
    const key = 'rdd/000000000001000/ds2/0.blk';
    let calls = 0;
    const recovered: string[] = [];
    const invoker: Invoker = {
      concurrency: 1,
      describe: () => 'test',
      close: async () => {},
      async invoke(spec: TaskSpec): Promise<TaskResult> {
        calls++;
        if (calls === 1) {
          // as LambdaInvoker rejects: the function's error, the decoded task error as its cause
          throw new TaskFunctionError(
            'partition',
            { functionError: 'Unhandled', errorType: 'MissingDataError', errorMessage: 'gone' },
            { retryable: true, cause: across(new MissingDataError(key, 'is missing')) },
          );
        }
        return { lineage: { records: 0, bytes: 0 }, metrics: {}, spec } as unknown as TaskResult;
      },
    };
    const runner = new TaskRunner({
      invoker,
      maxTaskAttempts: 2,
      taskTimeoutMs: 10_000,
      retryBackoffMs: 1,
      speculation: { enabled: false },
      recover: async (k) => {
        recovered.push(k);
        return true;
      },
      log: () => {},
    });
    expect(
      causeOf(
        new TaskFunctionError(
          'f',
          { functionError: 'x', errorType: 'y', errorMessage: 'z' },
          { retryable: true, cause: new MissingDataError(key, 'x') },
        ),
        MissingDataError,
      )?.key,
    ).toBe(key);
    await runner.runStage([
      {
        graph: { batchIntervalMs: 1000, zeroTimeMs: 0, defaultPartitions: 1, fingerprint: 'f' },
        batchTimeMs: 1000,
        stageId: 0,
        partition: 0,
        rddId: 'ds2',
        name: 'ds2',
        operators: [],
        inputs: [],
        output: { kind: 'none' },
        commitKey: 'k',
      } as unknown as Omit<TaskSpec, 'attempt'>,
    ]);
    expect(recovered).toEqual([key]);
  });

  it('NonRetryableTaskError is not retryable by its flag and by its name', () => {
    expect(isRetryable(new NonRetryableTaskError('no'))).toBe(false);
    expect(isRetryable({ name: 'NonRetryableTaskError' })).toBe(false);
    expect(isRetryable({ name: 'Runtime.ImportModuleError' })).toBe(false);
  });
});
