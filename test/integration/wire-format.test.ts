/**
 * The wire format of docs/DEPLOY.md ("Wire format"): the requests of its `aws sqs send-message` and
 * `send-message-batch` examples, sent to LocalStack with the SDK, then received by SqsSource in
 * each format. And `sluice send`'s default format, which follows the pipeline's.
 */
import { Readable } from 'node:stream';
import { SendMessageBatchCommand, SendMessageCommand, TagQueueCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSqsClient } from '../../aws/clients.ts';
import { SqsSource } from '../../aws/sqs-source.ts';
import { sendCommand } from '../../cli/send.ts';
import { createQueue, requireLocalStack } from './localstack.ts';

beforeAll(async () => {
  await requireLocalStack();
});

const receiveOnce = <T>(source: SqsSource<T>) =>
  source.receive({ batchTimeMs: Date.now() + 1500, intervalMs: 1500 });

describe('the documented SQS wire format on LocalStack', () => {
  it('json: a JSON value is one event, an array many; a malformed body is a dead letter; attributes are ignored', async () => {
    const queueUrl = await createQueue();
    const sqs = createSqsClient();
    // aws sqs send-message --queue-url $Q --message-body '{"page":"/a","ms":120}'
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: '{"page":"/a","ms":120}' }));
    // aws sqs send-message --queue-url $Q --message-body '[{"page":"/b"},{"page":"/c"}]' \
    //   --message-attributes '{"source":{"DataType":"String","StringValue":"web"}}'
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: '[{"page":"/b"},{"page":"/c"}]',
        MessageAttributes: { source: { DataType: 'String', StringValue: 'web' } },
      }),
    );
    // aws sqs send-message-batch --queue-url $Q --entries '[{"Id":"1","MessageBody":"{\"page\":\"/d\"}"},
    //   {"Id":"2","MessageBody":"[{\"page\":\"/e\"}]"},{"Id":"3","MessageBody":"not json"}]'
    const batch = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: [
          { Id: '1', MessageBody: '{"page":"/d"}' },
          { Id: '2', MessageBody: '[{"page":"/e"}]' },
          { Id: '3', MessageBody: 'not json' },
        ],
      }),
    );
    expect(batch.Failed ?? []).toEqual([]);
    sqs.destroy();

    const source = new SqsSource<{ page: string }>({ queueUrl, format: 'json' });
    const received = await receiveOnce(source);
    expect(received.records.map((r) => r.page).sort()).toEqual(['/a', '/b', '/c', '/d', '/e']);
    expect(received.records.find((r) => r.page === '/a')).toEqual({ page: '/a', ms: 120 });
    expect(received.deadLetters).toHaveLength(1);
    expect(received.deadLetters[0]).toMatchObject({ raw: 'not json' });
    expect(received.deadLetters[0]!.reason).toMatch(/not valid JSON/);
    // the malformed message is acknowledged with the batch (kept as a dead letter, not redelivered)
    expect(received.deliveryIds).toHaveLength(5);
  });

  it('lines: each non-empty line of a text body is one string event', async () => {
    const queueUrl = await createQueue();
    const sqs = createSqsClient();
    // aws sqs send-message --queue-url $Q --message-body $'GET /a 200\nGET /b 404'
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'GET /a 200\nGET /b 404' }));
    // aws sqs send-message-batch --queue-url $Q --entries '[{"Id":"1","MessageBody":"GET /c 200"},
    //   {"Id":"2","MessageBody":"{\"page\":\"/d\"}"}]'
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: [
          { Id: '1', MessageBody: 'GET /c 200\r\n' },
          { Id: '2', MessageBody: '{"page":"/d"}' },
        ],
      }),
    );
    sqs.destroy();
    const received = await receiveOnce(new SqsSource<string>({ queueUrl, format: 'lines' }));
    expect([...received.records].sort()).toEqual(['GET /a 200', 'GET /b 404', 'GET /c 200', '{"page":"/d"}']);
    expect(received.deadLetters).toEqual([]);
  });

  it('sluice send: JSON lines arrive as JSON events by default, and as text on a queue tagged sluice:format=lines', async () => {
    const jsonQueue = await createQueue();
    const linesQueue = await createQueue();
    const sqs = createSqsClient();
    await sqs.send(new TagQueueCommand({ QueueUrl: linesQueue, Tags: { 'sluice:format': 'lines' } }));
    sqs.destroy();
    const input = '{"page":"/a"}\n{"page":"/b"}\n';
    const out: string[] = [];
    const noErr = (text: string) => out.push(text);
    expect(await sendCommand({ queue: jsonQueue }, noErr, noErr, Readable.from([input]))).toBe(0);
    expect(await sendCommand({ queue: linesQueue }, noErr, noErr, Readable.from([input]))).toBe(0);
    expect(out.join('')).toMatch(/format json \(the default\)/);
    expect(out.join('')).toMatch(/format lines of the queue's sluice:format tag/);

    const json = await receiveOnce(new SqsSource({ queueUrl: jsonQueue, format: 'json' }));
    expect(json.records).toEqual([{ page: '/a' }, { page: '/b' }]);
    const lines = await receiveOnce(new SqsSource({ queueUrl: linesQueue, format: 'lines' }));
    expect(lines.records).toEqual(['{"page":"/a"}', '{"page":"/b"}']);
  });
});
