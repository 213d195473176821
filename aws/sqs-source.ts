/**
 * The source port on SQS: one `receive` gathers the messages of one batch interval with several
 * long polls in parallel, decodes them (one message may carry many events), and hands back the
 * message ids (for de-duplication of redeliveries) and the receipt handles (for `ack`).
 *
 * Exactly-once with an at-least-once queue: the driver writes the batch to S3 with its delivery ids
 * in the write-ahead manifest, and only then calls `ack`, which deletes the messages. If the driver
 * dies in between, the messages reappear after their visibility timeout; the next receive gets
 * `seen(id) === true` for them, drops their records and deletes them on its ack.
 *
 * Polling: each of the `parallelPolls` loops long-polls (WaitTimeSeconds up to 20, always ending
 * before the interval's deadline) while at least a second is left; in the last second, where a long
 * poll would overrun, one loop short-polls. A receive is never cancelled mid-flight, since messages
 * it was about to return would stay invisible until their visibility timeout.
 *
 * Visibility timeout: it must be longer than the time from receive to ack (the interval, plus
 * writing the input blocks and the manifest, plus any backlog), or SQS redelivers messages of a batch
 * still in flight. Those are recognised by id once the batch commits, so nothing is counted twice,
 * but they are received (and paid for) again. Use at least 30 s and several batch intervals, on the
 * queue or with `visibilityTimeoutSeconds`.
 *
 * @module
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { DeadLetter, ReceivedBatch, ReceiveRequest, Source } from '../shared/ports/source.ts';
import { createSqsClient } from './clients.ts';
import { AckError, QueueError } from './errors.ts';

/**
 * What a message body is (the wire format, docs/DEPLOY.md): `json`, a JSON value is one event and a
 * JSON array is many; `lines`, plain text, each non-empty line (`\n` or `\r\n`) one string event.
 */
export type SqsMessageFormat = 'json' | 'lines';

export const SQS_MESSAGE_FORMATS: readonly SqsMessageFormat[] = ['json', 'lines'];

export interface SqsSourceOptions<T> {
  readonly queueUrl: string;
  /** How bodies are decoded when no `decode` is given (default `json`). */
  readonly format?: SqsMessageFormat;
  /** Long-poll loops run in parallel during an interval (default 4); each gets up to 10 messages a call. */
  readonly parallelPolls?: number;
  /**
   * Turns a message body into events. Default: the body is JSON; an array is many events, any other
   * JSON value is one event. Throwing (or invalid JSON with the default) makes the whole message a
   * dead letter with the error as its reason.
   */
  readonly decode?: (body: string) => T[];
  /** Per-receive visibility timeout in seconds (default: the queue's own). See the module comment. */
  readonly visibilityTimeoutSeconds?: number;
  /**
   * Time kept free at the end of the interval for writing the batch (default: 20% of the interval,
   * between 50 ms and 2 s). Polling stops at `intervalMs - margin` after `receive` is called.
   */
  readonly marginMs?: number;
  readonly client?: SQSClient;
  /** Told once when the visibility timeout looks too short for the batch interval (default console.warn). */
  readonly onWarning?: (message: string) => void;
}

/** What `ack` needs: every receipt handle of the batch, including skipped redeliveries and dead letters. */
export interface SqsAckToken {
  readonly receiptHandles: readonly string[];
}

/** Counters of the last `receive`, for the batch's metrics. */
export interface SqsReceiveStats {
  readonly receiveRequests: number;
  readonly messages: number;
  /** Messages skipped because an earlier batch already committed them (`seen`). */
  readonly redelivered: number;
  /** Messages received twice within this batch (SQS at-least-once delivery). */
  readonly duplicates: number;
  /** Messages handed back to the queue (visibility 0) because the batch hit `maxRecords`. */
  readonly released: number;
  readonly records: number;
  readonly deadLetters: number;
}

interface Accepted<T> {
  readonly message: Message;
  readonly records: T[];
  readonly deadLetter?: DeadLetter;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The `lines` decoder: each non-empty line of the text body is one event (a string). */
export function decodeTextLines(body: string): string[] {
  return body.split(/\r?\n/).filter((line) => line !== '');
}

/** The decoder of a wire format. */
export function decoderFor(format: SqsMessageFormat): (body: string) => unknown[] {
  if (format === 'json') return decodeJsonEvents;
  if (format === 'lines') return decodeTextLines;
  throw new Error(`unknown SQS message format '${format}': use json or lines`);
}

/** The default decoder: JSON; an array is many events, any other value one. */
export function decodeJsonEvents<T>(body: string): T[] {
  const value: unknown = JSON.parse(body);
  return Array.isArray(value) ? (value as T[]) : [value as T];
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export class SqsSource<T = unknown> implements Source<T> {
  /** SQS is polled during the interval: the driver calls receive at its start. */
  readonly polls = true;
  readonly queueUrl: string;
  readonly parallelPolls: number;
  readonly client: SQSClient;
  private readonly decode: (body: string) => T[];
  private readonly customDecoder: boolean;
  private readonly visibilityTimeoutSeconds: number | undefined;
  private readonly marginMs: number | undefined;
  private lastStats: SqsReceiveStats | undefined;
  private queueVisibilitySeconds: number | undefined;
  private warnedVisibility = false;
  private readonly onWarning: (message: string) => void;

  constructor(options: SqsSourceOptions<T>) {
    if (!options.queueUrl) throw new Error('SqsSource: queueUrl is required');
    this.queueUrl = options.queueUrl;
    this.parallelPolls = Math.max(1, Math.floor(options.parallelPolls ?? 4));
    this.client = options.client ?? createSqsClient();
    this.decode = options.decode ?? (decoderFor(options.format ?? 'json') as (body: string) => T[]);
    this.customDecoder = options.decode !== undefined;
    this.visibilityTimeoutSeconds = options.visibilityTimeoutSeconds;
    this.marginMs = options.marginMs;
    this.onWarning = options.onWarning ?? ((message) => console.warn(message));
  }

  /** Checks that the queue exists (failing fast with a clear error) and reads its visibility timeout. */
  async start(): Promise<void> {
    try {
      const res = await this.client.send(
        new GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ['VisibilityTimeout'] }),
      );
      this.queueVisibilitySeconds = Number(res.Attributes?.VisibilityTimeout ?? Number.NaN);
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      throw new QueueError('GetQueueAttributes', `${this.queueUrl}: ${errorText(error)}`, {
        retryable: status === undefined || status >= 500 || status === 429,
        cause: error,
      });
    }
  }

  private checkVisibility(intervalMs: number): void {
    if (this.warnedVisibility) return;
    const seconds = this.visibilityTimeoutSeconds ?? this.queueVisibilitySeconds;
    if (seconds === undefined || Number.isNaN(seconds)) return;
    const wanted = Math.max(30, Math.ceil((3 * intervalMs) / 1000));
    if (seconds < wanted) {
      this.warnedVisibility = true;
      this.onWarning(
        `${this.describe()}: visibility timeout ${seconds} s is short for a ${intervalMs} ms batch interval; ` +
          `messages of a batch still being written may be redelivered (they are de-duplicated by id, but received twice). ` +
          `Use at least ${wanted} s.`,
      );
    }
  }

  describe(): string {
    return `sqs:${this.queueUrl}`;
  }

  /** Counters of the last `receive`. */
  receiveStats(): SqsReceiveStats | undefined {
    return this.lastStats;
  }

  private margin(intervalMs: number): number {
    if (this.marginMs !== undefined) return this.marginMs;
    return Math.min(2_000, Math.max(50, intervalMs * 0.2));
  }

  async receive(request: ReceiveRequest): Promise<ReceivedBatch<T>> {
    this.checkVisibility(request.intervalMs);
    const started = Date.now();
    // Poll until the end of the interval (the driver says when that is); a batch that is already
    // late (catch-up after a restart) takes what one quick round of polls finds.
    const closeAt = request.closeAtMs ?? started + request.intervalMs;
    const deadline = Math.max(started, closeAt - this.margin(request.intervalMs));
    const maxRecords = request.maxRecords;
    const seen = request.seen;

    const accepted: Accepted<T>[] = [];
    const acceptedIds = new Set<string>();
    const receiptHandles: string[] = [];
    const toRelease: string[] = [];
    let records = 0;
    let receiveRequests = 0;
    let messages = 0;
    let redelivered = 0;
    let duplicates = 0;
    let full = false;
    let firstError: unknown;
    let fatal: unknown;

    const take = (message: Message): void => {
      messages++;
      const id = message.MessageId;
      const handle = message.ReceiptHandle;
      if (id === undefined || handle === undefined) return;
      if (seen?.(id)) {
        // Committed by an earlier batch: not counted again, but deleted with this batch's ack.
        redelivered++;
        receiptHandles.push(handle);
        return;
      }
      if (acceptedIds.has(id)) {
        // Delivered twice within this batch: keep the newest handle too, since SQS only honours the
        // most recent receipt handle for deletion.
        duplicates++;
        receiptHandles.push(handle);
        return;
      }
      const body = message.Body ?? '';
      let decoded: T[] | undefined;
      let deadLetter: DeadLetter | undefined;
      try {
        decoded = this.decode(body);
      } catch (error) {
        const reason = this.customDecoder
          ? `decode failed: ${errorText(error)}`
          : `message body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`;
        deadLetter = { raw: body, reason, origin: `sqs:${id}` };
      }
      const count = decoded?.length ?? 0;
      if (maxRecords !== undefined && records > 0 && records + count > maxRecords) {
        // Backpressure: this message does not fit; give it back to the queue for the next batch.
        full = true;
        toRelease.push(handle);
        return;
      }
      acceptedIds.add(id);
      receiptHandles.push(handle);
      records += count;
      accepted.push({ message, records: decoded ?? [], ...(deadLetter ? { deadLetter } : {}) });
      if (maxRecords !== undefined && records >= maxRecords) full = true;
    };

    const poll = async (index: number): Promise<void> => {
      let consecutiveErrors = 0;
      // a batch that is already late (catch-up) still gets one round of short polls
      let first = true;
      while (!full) {
        const remaining = deadline - Date.now();
        if (remaining <= 0 && !first) return;
        first = false;
        // Long polls are whole seconds: use them while a whole second (plus slack for the round trip)
        // is left, then short polls until the deadline, pausing when the queue looks empty.
        const waitSeconds = Math.min(20, Math.floor((remaining - 150) / 1000));
        receiveRequests++;
        let got: Message[];
        try {
          const res = await this.client.send(
            new ReceiveMessageCommand({
              QueueUrl: this.queueUrl,
              MaxNumberOfMessages: 10,
              WaitTimeSeconds: Math.max(0, waitSeconds),
              MessageSystemAttributeNames: ['SentTimestamp', 'ApproximateReceiveCount'],
              ...(this.visibilityTimeoutSeconds !== undefined
                ? { VisibilityTimeout: this.visibilityTimeoutSeconds }
                : {}),
            }),
          );
          got = res.Messages ?? [];
          consecutiveErrors = 0;
        } catch (error) {
          firstError ??= error;
          const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
          const name = (error as { name?: string }).name ?? '';
          if (
            status !== undefined &&
            status >= 400 &&
            status < 500 &&
            status !== 429 &&
            !/Throttl|OverLimit/i.test(name)
          ) {
            // No such queue, access denied, bad parameter: stop all polls and say so.
            fatal ??= error;
            full = true;
            return;
          }
          consecutiveErrors++;
          if (consecutiveErrors >= 3) return;
          await sleep(Math.min(Math.max(0, deadline - Date.now()), 100 * 2 ** consecutiveErrors));
          continue;
        }
        for (const message of got) take(message);
        if (got.length === 0 && waitSeconds < 1) {
          // Less than a second left and the queue looks empty: one poller keeps short-polling (a
          // request every 100 ms at most, to bound the cost of an idle queue); the others stop.
          if (index > 0) return;
          await sleep(Math.min(Math.max(0, deadline - Date.now()), 100));
        }
      }
    };

    await Promise.all(Array.from({ length: this.parallelPolls }, (_, i) => poll(i)));

    if (fatal !== undefined) {
      // Messages received before the error reappear after their visibility timeout.
      throw new QueueError('ReceiveMessage', errorText(fatal), { retryable: false, cause: fatal });
    }

    if (receiveRequests > 0 && messages === 0 && firstError !== undefined) {
      // Every poll failed: an empty batch would look like a quiet queue. Say what is wrong instead.
      throw new QueueError('ReceiveMessage', errorText(firstError), { retryable: true, cause: firstError });
    }
    if (toRelease.length > 0) await this.release(toRelease);

    // Arrival order: by the time SQS accepted each message (ties keep receive order).
    const sentAt = (m: Message) => Number(m.Attributes?.SentTimestamp ?? 0);
    const ordered = accepted
      .map((entry, index) => ({ entry, index }))
      .sort((a, b) => sentAt(a.entry.message) - sentAt(b.entry.message) || a.index - b.index)
      .map(({ entry }) => entry);

    const out: T[] = [];
    const deadLetters: DeadLetter[] = [];
    for (const entry of ordered) {
      if (entry.deadLetter) deadLetters.push(entry.deadLetter);
      for (const record of entry.records) out.push(record);
    }
    this.lastStats = {
      receiveRequests,
      messages,
      redelivered,
      duplicates,
      released: toRelease.length,
      records: out.length,
      deadLetters: deadLetters.length,
    };
    const ackToken: SqsAckToken = { receiptHandles };
    return {
      records: out,
      deadLetters,
      deliveryIds: ordered.map((entry) => entry.message.MessageId!),
      ackToken,
      delivery: { redelivered, duplicates },
    };
  }

  /** Makes messages visible again at once (they did not fit in this batch). Best effort. */
  private async release(handles: readonly string[]): Promise<void> {
    for (let i = 0; i < handles.length; i += 10) {
      const group = handles.slice(i, i + 10);
      try {
        await this.client.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: group.map((ReceiptHandle, j) => ({
              Id: String(j),
              ReceiptHandle,
              VisibilityTimeout: 0,
            })),
          }),
        );
      } catch {
        // They reappear after the visibility timeout anyway.
      }
    }
  }

  /**
   * Deletes the batch's messages (DeleteMessageBatch, 10 at a time), retrying failed entries. Handles
   * that SQS no longer accepts (the message was redelivered meanwhile) are ignored: that delivery is
   * recognised by its id and deleted by a later batch. Throws `AckError` if some still fail.
   */
  async ack(token: unknown): Promise<void> {
    const handles = (token as SqsAckToken | undefined)?.receiptHandles;
    if (!Array.isArray(handles)) throw new TypeError('SqsSource.ack: not a token from SqsSource.receive');
    const groups: string[][] = [];
    for (let i = 0; i < handles.length; i += 10) groups.push(handles.slice(i, i + 10));
    let failed = 0;
    let lastDetail = '';
    let lastError: unknown;
    const deleteGroup = async (group: string[]): Promise<void> => {
      let pending = group.map((ReceiptHandle, j) => ({ Id: String(j), ReceiptHandle }));
      for (let attempt = 0; attempt < 4 && pending.length > 0; attempt++) {
        if (attempt > 0) await sleep(50 * 2 ** attempt);
        try {
          const res = await this.client.send(
            new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending }),
          );
          const retry = new Set<string>();
          for (const f of res.Failed ?? []) {
            if (f.Code === 'ReceiptHandleIsInvalid' || f.Code === 'InvalidParameterValue') continue;
            if (f.Id !== undefined) retry.add(f.Id);
            lastDetail = `${f.Code}: ${f.Message ?? ''}`;
          }
          pending = pending.filter((e) => retry.has(e.Id));
        } catch (error) {
          lastError = error;
          lastDetail = errorText(error);
        }
      }
      failed += pending.length;
    };
    // A few groups at a time: enough to delete thousands of messages quickly.
    const concurrency = 8;
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, groups.length) }, async () => {
        while (next < groups.length) {
          const group = groups[next++]!;
          await deleteGroup(group);
        }
      }),
    );
    if (failed > 0) throw new AckError(failed, handles.length, lastDetail, lastError);
  }
}
