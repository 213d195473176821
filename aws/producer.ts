/**
 * Sends events to the SQS queue a Sluice pipeline reads: many events per message (a JSON array, the
 * shape `SqsSource` decodes), up to 10 messages per SendMessageBatch, failed entries retried.
 *
 * @module
 */
import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { createSqsClient } from './clients.ts';
import { SendError } from './errors.ts';
import { type NudgeOptions, type NudgeOutcome, SchedulerNudger, storeOfQueue } from './nudge.ts';

/** SQS's classic limit for one message, and for all messages of one SendMessageBatch together. */
export const SQS_MAX_MESSAGE_BYTES = 256 * 1024;

export interface SqsProducerOptions {
  readonly queueUrl: string;
  /**
   * The wire format (docs/DEPLOY.md), which must be the pipeline's: `json` (default) packs events
   * into JSON arrays; `lines` sends string events as text, one per line.
   */
  readonly format?: 'json' | 'lines';
  /** Most events packed into one message (default: as many as fit). 1 sends one event per message. */
  readonly maxEventsPerMessage?: number;
  /** Size cap of one message body and of one batch request, in bytes (default and maximum 256 KiB). */
  readonly maxMessageBytes?: number;
  /** SendMessageBatch requests in flight at once (default 8). */
  readonly concurrency?: number;
  /** Attempts for an entry that fails with a retryable error (default 5). */
  readonly maxAttempts?: number;
  readonly client?: SQSClient;
  /**
   * Nudge a sleeping scheduler after a send (aws/nudge.ts, docs/DEPLOY.md): at most one S3 GET
   * per 10 s, and an asynchronous invoke of the scheduler when its marker says it sleeps.
   * Default (`true`): on when the queue's `sluice:store` tag (set by the SluicePipeline construct)
   * names the pipeline's store, found with one ListQueueTags on the first send. Options: the store
   * and function given. `false`: off.
   */
  readonly nudge?: boolean | NudgeOptions;
}

export interface SendResult {
  /** Events sent. */
  readonly events: number;
  /** Messages sent. */
  readonly messages: number;
  /** SendMessageBatch requests made, retries included. */
  readonly requests: number;
  /** Entries sent again after a failure. */
  readonly retried: number;
  readonly bytes: number;
  /** What the nudge check after this send found (absent when none ran: off, or checked recently). */
  readonly nudge?: NudgeOutcome;
}

export interface PackedMessage {
  readonly body: string;
  readonly bytes: number;
  /** Indexes of the events it carries, in the caller's array. */
  readonly first: number;
  readonly count: number;
}

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** SQS errors for one entry that a retry cannot fix. */
const PERMANENT_ENTRY_ERRORS = new Set([
  'InvalidMessageContents',
  'InvalidParameterValue',
  'MessageTooLong',
  'BatchRequestTooLong',
  'UnsupportedOperation',
  'InvalidAttributeValue',
]);

export class SqsProducer {
  readonly queueUrl: string;
  readonly client: SQSClient;
  readonly format: 'json' | 'lines';
  private readonly maxEventsPerMessage: number;
  private readonly maxMessageBytes: number;
  private readonly concurrency: number;
  private readonly maxAttempts: number;
  private readonly nudgeOption: boolean | NudgeOptions;
  private nudger: Promise<SchedulerNudger | undefined> | undefined;

  constructor(options: SqsProducerOptions) {
    if (!options.queueUrl) throw new Error('SqsProducer: queueUrl is required');
    this.queueUrl = options.queueUrl;
    this.client = options.client ?? createSqsClient();
    this.format = options.format ?? 'json';
    if (this.format !== 'json' && this.format !== 'lines') {
      throw new Error(`SqsProducer: format must be json or lines, got '${String(this.format)}'`);
    }
    this.maxEventsPerMessage = Math.max(
      1,
      Math.floor(options.maxEventsPerMessage ?? Number.POSITIVE_INFINITY),
    );
    this.maxMessageBytes = Math.min(SQS_MAX_MESSAGE_BYTES, options.maxMessageBytes ?? SQS_MAX_MESSAGE_BYTES);
    this.concurrency = Math.max(1, options.concurrency ?? 8);
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.nudgeOption = options.nudge ?? true;
    // a bad nudge option fails here, naming it, not at the first send
    if (typeof this.nudgeOption === 'object')
      this.nudger = Promise.resolve(new SchedulerNudger(this.nudgeOption));
  }

  /** The nudger: the one configured, else one for the store the queue's tag names (looked up once). */
  private nudgerOf(): Promise<SchedulerNudger | undefined> {
    if (this.nudgeOption === false) return Promise.resolve(undefined);
    this.nudger ??= storeOfQueue(this.client, this.queueUrl).then((store) =>
      store ? new SchedulerNudger(store) : undefined,
    );
    return this.nudger;
  }

  /** Packs events into messages (in order), without sending. Throws for an event too big for a message. */
  pack(events: readonly unknown[]): PackedMessage[] {
    const messages: PackedMessage[] = [];
    const lines = this.format === 'lines';
    const frame = lines ? 0 : 2; // "[" and "]"
    let parts: string[] = [];
    let bytes = frame;
    let first = 0;
    const close = (next: number) => {
      if (parts.length === 0) return;
      const body = lines ? parts.join('\n') : `[${parts.join(',')}]`;
      messages.push({ body, bytes, first, count: parts.length });
      parts = [];
      bytes = frame;
      first = next;
    };
    events.forEach((event, i) => {
      let json: string | undefined;
      if (lines) {
        if (typeof event !== 'string' || /[\r\n]/.test(event) || event === '') {
          throw new SendError(
            `event ${i} is not a non-empty one-line string, which format 'lines' needs; nothing was sent ` +
              '(send JSON events with format json)',
            events.slice(),
            { retryable: false },
          );
        }
        json = event;
      } else {
        json = JSON.stringify(event ?? null);
      }
      if (json === undefined) throw new TypeError(`event ${i} cannot be sent as JSON`);
      const size = encoder.encode(json).byteLength;
      if (size + frame > this.maxMessageBytes) {
        throw new SendError(
          `event ${i} is ${size} bytes as JSON, over the ${this.maxMessageBytes}-byte message limit; nothing was sent`,
          events.slice(),
          { retryable: false },
        );
      }
      const extra = size + (parts.length > 0 ? 1 : 0);
      if (parts.length >= this.maxEventsPerMessage || bytes + extra > this.maxMessageBytes) close(i);
      parts.push(json);
      bytes += size + (parts.length > 1 ? 1 : 0);
    });
    close(events.length);
    return messages;
  }

  /**
   * Sends the events; resolves once SQS has accepted all of them. An event over the size limit is
   * refused before anything is sent. If some entries still fail after retries, rejects with
   * `SendError` whose `unsent` lists their events (the others were sent).
   */
  async send(events: readonly unknown[]): Promise<SendResult> {
    const messages = this.pack(events);
    // Group messages into requests of up to 10 entries and up to maxMessageBytes in total.
    const batches: PackedMessage[][] = [];
    let current: PackedMessage[] = [];
    let currentBytes = 0;
    for (const m of messages) {
      if (current.length === 10 || (current.length > 0 && currentBytes + m.bytes > this.maxMessageBytes)) {
        batches.push(current);
        current = [];
        currentBytes = 0;
      }
      current.push(m);
      currentBytes += m.bytes;
    }
    if (current.length > 0) batches.push(current);

    let requests = 0;
    let retried = 0;
    const unsent: PackedMessage[] = [];
    let lastProblem = '';
    let permanent = false;

    const sendBatch = async (batch: PackedMessage[]) => {
      let pending = batch.map((m, i) => ({ id: String(i), message: m }));
      for (let attempt = 1; pending.length > 0; attempt++) {
        if (attempt > 1) {
          retried += pending.length;
          await sleep(Math.min(2_000, 50 * 2 ** attempt) * (0.5 + Math.random() * 0.5));
        }
        requests++;
        const entries: SendMessageBatchRequestEntry[] = pending.map((p) => ({
          Id: p.id,
          MessageBody: p.message.body,
        }));
        try {
          const res = await this.client.send(
            new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }),
          );
          const failedIds = new Map<string, { code: string; senderFault: boolean }>();
          for (const f of res.Failed ?? []) {
            if (f.Id !== undefined) {
              failedIds.set(f.Id, { code: f.Code ?? 'Unknown', senderFault: f.SenderFault === true });
            }
          }
          const next: typeof pending = [];
          for (const p of pending) {
            const failure = failedIds.get(p.id);
            if (!failure) continue;
            lastProblem = failure.code;
            if (PERMANENT_ENTRY_ERRORS.has(failure.code)) {
              permanent = true;
              unsent.push(p.message);
            } else next.push(p);
          }
          pending = next;
        } catch (error) {
          lastProblem = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
          const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
          if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
            // The whole request is wrong (no such queue, no permission): retrying will not help.
            permanent = true;
            unsent.push(...pending.map((p) => p.message));
            return;
          }
        }
        if (attempt >= this.maxAttempts && pending.length > 0) {
          unsent.push(...pending.map((p) => p.message));
          return;
        }
      }
    };

    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(this.concurrency, batches.length) }, async () => {
        while (next < batches.length) await sendBatch(batches[next++]!);
      }),
    );

    // messages went out: a sleeping scheduler is nudged (a check at most every few seconds)
    const nudge = unsent.length < messages.length ? await (await this.nudgerOf())?.afterSend() : undefined;
    if (unsent.length > 0) {
      unsent.sort((a, b) => a.first - b.first);
      const unsentEvents = unsent.flatMap((m) => events.slice(m.first, m.first + m.count));
      throw new SendError(
        `${unsentEvents.length} of ${events.length} events not sent (${unsent.length} messages; last error ${lastProblem})`,
        unsentEvents,
        { retryable: !permanent },
      );
    }
    return {
      events: events.length,
      messages: messages.length,
      requests,
      retried,
      bytes: messages.reduce((sum, m) => sum + m.bytes, 0),
      ...(nudge ? { nudge } : {}),
    };
  }
}
