import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSqsClient } from '../../aws/clients.ts';
import { SendError } from '../../aws/errors.ts';
import { SQS_MAX_MESSAGE_BYTES, SqsProducer } from '../../aws/producer.ts';
import { SqsSource } from '../../aws/sqs-source.ts';
import { createQueue, queueDepth, requireLocalStack } from './localstack.ts';

interface Ev {
  n: number;
  pad?: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const byN = (a: Ev, b: Ev) => a.n - b.n;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ n: from + i }));

/** One receive of a short interval (the source polls until the interval minus its margin). */
function receiveOnce<T>(
  source: SqsSource<T>,
  extra: { seen?: (id: string) => boolean; maxRecords?: number } = {},
) {
  return source.receive({ batchTimeMs: Date.now() + 1500, intervalMs: 1500, ...extra });
}

async function sendRaw(queueUrl: string, body: string): Promise<string> {
  const sqs = createSqsClient();
  const res = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
  sqs.destroy();
  return res.MessageId!;
}

beforeAll(async () => {
  await requireLocalStack();
});

describe('SqsProducer and SqsSource on LocalStack', () => {
  it('receives single-event and many-event messages, then ack deletes them', async () => {
    const queueUrl = await createQueue();
    const producer = new SqsProducer({ queueUrl, maxEventsPerMessage: 10 });
    const sent = await producer.send(range(0, 25));
    expect(sent).toMatchObject({ events: 25, messages: 3, requests: 1, retried: 0 });
    await sendRaw(queueUrl, JSON.stringify({ n: 100 })); // a bare JSON value: one event
    await sendRaw(queueUrl, JSON.stringify([{ n: 101 }, { n: 102 }]));

    const source = new SqsSource<Ev>({ queueUrl });
    const batch = await receiveOnce(source);
    expect([...batch.records].sort(byN)).toEqual([...range(0, 25), { n: 100 }, { n: 101 }, { n: 102 }]);
    expect(batch.deadLetters).toEqual([]);
    expect(batch.deliveryIds).toHaveLength(5);
    expect(new Set(batch.deliveryIds).size).toBe(5);
    expect(source.receiveStats()).toMatchObject({ messages: 5, records: 28, redelivered: 0, duplicates: 0 });
    expect(await queueDepth(queueUrl)).toEqual({ visible: 0, inFlight: 5 });

    await source.ack(batch.ackToken);
    expect(await queueDepth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('keeps arrival order across messages', async () => {
    const queueUrl = await createQueue();
    const producer = new SqsProducer({ queueUrl, maxEventsPerMessage: 3 });
    for (let i = 0; i < 4; i++) {
      await producer.send(range(i * 3, i * 3 + 3));
      await sleep(15); // distinct SentTimestamps
    }
    const batch = await receiveOnce(new SqsSource<Ev>({ queueUrl }));
    expect(batch.records).toEqual(range(0, 12));
  });

  it('turns a malformed body into a dead letter with a reason, and still deletes it on ack', async () => {
    const queueUrl = await createQueue();
    const badId = await sendRaw(queueUrl, '{"n": 1,,, not json');
    await sendRaw(queueUrl, JSON.stringify([{ n: 2 }]));
    const source = new SqsSource<Ev>({ queueUrl });
    const batch = await receiveOnce(source);
    expect(batch.records).toEqual([{ n: 2 }]);
    expect(batch.deadLetters).toHaveLength(1);
    const dead = batch.deadLetters[0]!;
    expect(dead.raw).toBe('{"n": 1,,, not json');
    expect(dead.reason).toMatch(/not valid JSON/);
    expect(dead.origin).toBe(`sqs:${badId}`);
    expect(batch.deliveryIds).toContain(badId);
    await source.ack(batch.ackToken);
    expect(await queueDepth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('a custom decoder that throws makes a dead letter with its message', async () => {
    const queueUrl = await createQueue();
    await sendRaw(queueUrl, 'a,b,c');
    await sendRaw(queueUrl, 'oops');
    const source = new SqsSource<string>({
      queueUrl,
      decode: (body) => {
        if (!body.includes(',')) throw new Error('expected CSV');
        return body.split(',');
      },
    });
    const batch = await receiveOnce(source);
    expect(batch.records).toEqual(['a', 'b', 'c']);
    expect(batch.deadLetters.map((d) => [d.raw, d.reason])).toEqual([
      ['oops', 'decode failed: Error: expected CSV'],
    ]);
  });

  it('does not count a message whose id is seen, but deletes it on ack', async () => {
    const queueUrl = await createQueue();
    const oldId = await sendRaw(queueUrl, JSON.stringify([{ n: 1 }, { n: 2 }]));
    const newId = await sendRaw(queueUrl, JSON.stringify([{ n: 3 }]));
    const source = new SqsSource<Ev>({ queueUrl });
    const batch = await receiveOnce(source, { seen: (id) => id === oldId });
    expect(batch.records).toEqual([{ n: 3 }]);
    expect(batch.deliveryIds).toEqual([newId]);
    expect(source.receiveStats()).toMatchObject({ messages: 2, redelivered: 1, records: 1 });
    await source.ack(batch.ackToken);
    expect(await queueDepth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('messages not acked reappear after the visibility timeout and are recognised by id', async () => {
    const queueUrl = await createQueue();
    await new SqsProducer({ queueUrl, maxEventsPerMessage: 2 }).send(range(0, 6));
    const warnings: string[] = [];
    const source = new SqsSource<Ev>({
      queueUrl,
      visibilityTimeoutSeconds: 2,
      onWarning: (m) => warnings.push(m),
    });
    await source.start();

    const first = await receiveOnce(source);
    expect(first.records).toHaveLength(6);
    const committed = new Set(first.deliveryIds);
    expect(committed.size).toBe(3);
    // The "driver" died before ack: nothing until the visibility timeout passes...
    const during = await source.receive({ batchTimeMs: Date.now(), intervalMs: 300 });
    expect(during.records).toEqual([]);
    await sleep(2_200);
    // ...then the same messages come back, and the committed ids are not counted again.
    const again = await receiveOnce(source, { seen: (id) => committed.has(id) });
    expect(again.records).toEqual([]);
    expect(again.deliveryIds).toEqual([]);
    expect(source.receiveStats()).toMatchObject({ messages: 3, redelivered: 3 });
    await source.ack(again.ackToken);
    expect(await queueDepth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/visibility timeout 2 s is short/);
  });

  it('backpressure: maxRecords caps a batch and hands the rest back to the queue', async () => {
    const queueUrl = await createQueue();
    await new SqsProducer({ queueUrl, maxEventsPerMessage: 10 }).send(range(0, 50));
    const source = new SqsSource<Ev>({ queueUrl, parallelPolls: 2 });
    const seenIds = new Set<string>();
    const all: Ev[] = [];
    const sizes: number[] = [];
    for (let i = 0; i < 6 && all.length < 50; i++) {
      const batch = await receiveOnce(source, { maxRecords: 20, seen: (id) => seenIds.has(id) });
      sizes.push(batch.records.length);
      all.push(...batch.records);
      for (const id of batch.deliveryIds ?? []) seenIds.add(id);
      await source.ack(batch.ackToken);
    }
    expect(sizes).toEqual([20, 20, 10]);
    expect(all.sort(byN)).toEqual(range(0, 50));
    expect(await queueDepth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('packs many events per message within the size limit', async () => {
    const queueUrl = await createQueue();
    const pad = 'x'.repeat(1000);
    const events = Array.from({ length: 700 }, (_, n) => ({ n, pad }));
    const producer = new SqsProducer({ queueUrl });
    const packed = producer.pack(events);
    expect(packed.length).toBe(3);
    for (const m of packed) expect(Buffer.byteLength(m.body)).toBeLessThanOrEqual(SQS_MAX_MESSAGE_BYTES);
    const sent = await producer.send(events);
    expect(sent).toMatchObject({ events: 700, messages: 3 });
    // Each request stays under the batch size limit too: three full messages need three requests.
    expect(sent.requests).toBe(3);

    const batch = await receiveOnce(new SqsSource<Ev>({ queueUrl }));
    expect(batch.records.map((e) => e.n).sort((a, b) => a - b)).toEqual(events.map((e) => e.n));
  });

  it('sends thousands of small events in few requests', async () => {
    const queueUrl = await createQueue();
    const producer = new SqsProducer({ queueUrl, maxEventsPerMessage: 100 });
    const sent = await producer.send(range(0, 5_000));
    expect(sent).toMatchObject({ events: 5_000, messages: 50, requests: 5 });
    const source = new SqsSource<Ev>({ queueUrl, parallelPolls: 4 });
    const batch = await source.receive({ batchTimeMs: Date.now(), intervalMs: 3_000 });
    expect(batch.records.length).toBe(5_000);
    await source.ack(batch.ackToken);
    expect(await queueDepth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('refuses an event larger than a message, sending nothing', async () => {
    const queueUrl = await createQueue();
    const producer = new SqsProducer({ queueUrl });
    const error = await producer
      .send([{ n: 1 }, { n: 2, pad: 'y'.repeat(SQS_MAX_MESSAGE_BYTES) }])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SendError);
    expect((error as SendError).retryable).toBe(false);
    expect((error as SendError).unsent).toHaveLength(2);
    expect(await queueDepth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('an idle queue costs few requests, and receive ends within the interval', async () => {
    const queueUrl = await createQueue();
    const source = new SqsSource<Ev>({ queueUrl, parallelPolls: 4 });
    for (const intervalMs of [1_000, 3_000]) {
      const started = Date.now();
      const batch = await source.receive({ batchTimeMs: Date.now(), intervalMs });
      const took = Date.now() - started;
      expect(batch.records).toEqual([]);
      expect(took).toBeLessThan(intervalMs);
      expect(source.receiveStats()!.receiveRequests).toBeLessThanOrEqual(16);
    }
  });

  it('an unknown queue fails start and receive loudly instead of looking empty', async () => {
    const queueUrl = (await createQueue()).replace(/[^/]+$/, 'no-such-queue-xyz');
    const source = new SqsSource<Ev>({ queueUrl });
    await expect(source.start()).rejects.toMatchObject({ name: 'QueueError', retryable: false });
    const started = Date.now();
    await expect(receiveOnce(source)).rejects.toMatchObject({ name: 'QueueError', retryable: false });
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
