/**
 * Retry paths that LocalStack never takes (it serializes conditional writes, so no 409; it does not
 * fail single batch entries), exercised with scripted clients in place of the SDK ones.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { AckError, ConditionalWriteConflictError, SendError } from '../../aws/errors.ts';
import { SqsProducer } from '../../aws/producer.ts';
import { S3ObjectStore } from '../../aws/s3-object-store.ts';
import { SqsSource } from '../../aws/sqs-source.ts';

function awsError(name: string, status: number): Error {
  return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
}

/** A client whose `send` answers from a script, one entry per call, and records the inputs. */
function scripted<C>(script: Array<(input: any) => unknown>): { client: C; inputs: any[] } {
  const inputs: any[] = [];
  const client = {
    send: async (command: { input: unknown }) => {
      inputs.push(command.input);
      const step = script.shift();
      if (!step) throw new Error('script exhausted');
      return step(command.input);
    },
  } as unknown as C;
  return { client, inputs };
}

describe('S3ObjectStore.putIfAbsent under 409 ConditionalRequestConflict', () => {
  it('retries a conflict until S3 gives a clear answer', async () => {
    const conflict = () => {
      throw awsError('ConditionalRequestConflict', 409);
    };
    const lost = () => {
      throw awsError('PreconditionFailed', 412);
    };
    const a = scripted<S3Client>([conflict, conflict, lost]);
    const store = new S3ObjectStore({ bucket: 'b', client: a.client });
    expect(await store.putIfAbsent('k', new Uint8Array([1]))).toBe(false);
    expect(a.inputs).toHaveLength(3);
    expect(a.inputs.every((i) => i.IfNoneMatch === '*')).toBe(true);
    expect(store.requestStats()).toMatchObject({ puts: 3, conditionalMisses: 1 });

    const b = scripted<S3Client>([conflict, () => ({})]);
    expect(
      await new S3ObjectStore({ bucket: 'b', client: b.client }).putIfAbsent('k', new Uint8Array([1])),
    ).toBe(true);
  });

  it('gives up with a retryable ConditionalWriteConflictError', async () => {
    const conflicts = Array.from({ length: 3 }, () => () => {
      throw awsError('ConditionalRequestConflict', 409);
    });
    const c = scripted<S3Client>(conflicts);
    const store = new S3ObjectStore({ bucket: 'b', client: c.client, conflictRetries: 2 });
    const error = await store.putIfAbsent('k', new Uint8Array([1])).catch((e) => e);
    expect(error).toBeInstanceOf(ConditionalWriteConflictError);
    expect(error.retryable).toBe(true);
  });

  it('classifies S3 failures: 503 retryable, 403 not', async () => {
    const s = scripted<S3Client>([
      () => {
        throw awsError('SlowDown', 503);
      },
      () => {
        throw awsError('AccessDenied', 403);
      },
    ]);
    const store = new S3ObjectStore({ bucket: 'b', client: s.client });
    await expect(store.put('k', new Uint8Array())).rejects.toMatchObject({ retryable: true });
    await expect(store.get('k')).rejects.toMatchObject({ retryable: false, name: 'ObjectStoreError' });
    expect(store.requestStats().errors).toBe(2);
  });
});

describe('SqsProducer and SqsSource.ack with failing entries', () => {
  it('the producer resends only the failed entries', async () => {
    const s = scripted<SQSClient>([
      (input) => ({
        Successful: [{ Id: input.Entries[0].Id }],
        Failed: [{ Id: input.Entries[1].Id, Code: 'InternalError', SenderFault: false }],
      }),
      (input) => ({ Successful: input.Entries.map((e: { Id: string }) => ({ Id: e.Id })) }),
    ]);
    const producer = new SqsProducer({ queueUrl: 'http://q', client: s.client, maxEventsPerMessage: 1 });
    const result = await producer.send([{ n: 1 }, { n: 2 }]);
    expect(result).toMatchObject({ events: 2, messages: 2, requests: 2, retried: 1 });
    expect(s.inputs[1].Entries.map((e: { MessageBody: string }) => e.MessageBody)).toEqual(['[{"n":2}]']);
  });

  it('reports events it could not send, in order', async () => {
    const s = scripted<SQSClient>([
      (input) => ({
        Successful: [{ Id: input.Entries[1].Id }],
        Failed: [{ Id: input.Entries[0].Id, Code: 'InvalidMessageContents', SenderFault: true }],
      }),
    ]);
    const producer = new SqsProducer({ queueUrl: 'http://q', client: s.client, maxEventsPerMessage: 2 });
    const error = await producer.send([1, 2, 3]).catch((e) => e);
    expect(error).toBeInstanceOf(SendError);
    expect(error.unsent).toEqual([1, 2]);
    expect(error.retryable).toBe(false);
  });

  it('ack retries failed deletes, ignores stale receipt handles, and reports the rest', async () => {
    const s = scripted<SQSClient>([
      (input) => ({
        Successful: [{ Id: input.Entries[0].Id }],
        Failed: [
          { Id: input.Entries[1].Id, Code: 'ReceiptHandleIsInvalid', SenderFault: true },
          { Id: input.Entries[2].Id, Code: 'InternalError', SenderFault: false },
        ],
      }),
      (input) => ({ Successful: [{ Id: input.Entries[0].Id }] }),
    ]);
    const source = new SqsSource({ queueUrl: 'http://q', client: s.client });
    await source.ack({ receiptHandles: ['h1', 'h2', 'h3'] });
    expect(s.inputs[1].Entries.map((e: { ReceiptHandle: string }) => e.ReceiptHandle)).toEqual(['h3']);

    const failing = Array.from({ length: 4 }, () => () => {
      throw awsError('InternalError', 500);
    });
    const f = scripted<SQSClient>(failing);
    const error = await new SqsSource({ queueUrl: 'http://q', client: f.client })
      .ack({ receiptHandles: ['a', 'b'] })
      .catch((e) => e);
    expect(error).toBeInstanceOf(AckError);
    expect(error.failed).toBe(2);
  });
});
