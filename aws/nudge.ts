/**
 * The producer's nudge (issue 11): a sleeping pipeline's scheduler only looks at its queue once a
 * minute, so the first event after a sleep waits up to one tick plus one interval. A producer that
 * knows the pipeline's store checks the sleeping scheduler's marker (`meta/asleep.json`, one S3
 * GET, at most once per `checkEveryMs`, never per message) after a send, and when it is there
 * invokes the scheduler function asynchronously (`InvocationType: 'Event'`, one Lambda request).
 * The scheduler then wakes without waiting for its tick (functions/scheduler.ts). A nudge that
 * arrives while the pipeline is awake costs the scheduler one GET and returns; two at once are
 * fenced by the driver lease. A nudge never fails a send: a failure is reported in the outcome.
 *
 * @module
 */
import { InvocationType, InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import { ListQueueTagsCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { ASLEEP_KEY, type AsleepMarker, NUDGE_EVENT, parseStoreUrl, STORE_TAG } from './asleep-marker.ts';
import { createLambdaClient } from './clients.ts';
import { S3ObjectStore } from './s3-object-store.ts';

export interface NudgeOptions {
  /** The pipeline's bucket (the stack's BucketName output). */
  readonly bucket: string;
  /** Key prefix inside the bucket (the construct's `prefix`). */
  readonly prefix?: string;
  /** The scheduler function (name or ARN); default: the one the marker names. */
  readonly functionName?: string;
  /** Check the marker at most this often (default 10 s). */
  readonly checkEveryMs?: number;
  readonly s3?: S3Client;
  readonly lambda?: LambdaClient;
}

/** What a check after a send found and did. */
export interface NudgeOutcome {
  /** The marker was there: the pipeline slept. */
  readonly asleep: boolean;
  /** The scheduler function invoked (asynchronously), when it was. */
  readonly nudged?: string;
  /** Why a sleeping pipeline was not nudged (no function known, a denied request...). */
  readonly error?: string;
}

export const DEFAULT_NUDGE_CHECK_MS = 10_000;

export class SchedulerNudger {
  private readonly store: S3ObjectStore;
  private readonly checkEveryMs: number;
  private lambda: LambdaClient | undefined;
  private lastCheckMs = Number.NEGATIVE_INFINITY;
  /** Requests made: marker GETs and invokes (for tests and `sluice send`'s report). */
  readonly requests = { get: 0, invoke: 0 };

  constructor(readonly options: NudgeOptions) {
    if (!options.bucket) throw new Error('nudge: bucket is required (the pipeline bucket, BucketName)');
    const every = options.checkEveryMs ?? DEFAULT_NUDGE_CHECK_MS;
    if (!Number.isFinite(every) || every < 0) {
      throw new Error(`nudge: checkEveryMs must be a number of milliseconds >= 0, got ${String(every)}`);
    }
    this.checkEveryMs = every;
    this.store = new S3ObjectStore({ bucket: options.bucket, prefix: options.prefix, client: options.s3 });
    this.lambda = options.lambda;
  }

  /**
   * After a send: checks the marker unless checked less than `checkEveryMs` ago (then: undefined,
   * no request), and nudges a sleeping scheduler.
   */
  async afterSend(nowMs = Date.now()): Promise<NudgeOutcome | undefined> {
    if (nowMs - this.lastCheckMs < this.checkEveryMs) return undefined;
    this.lastCheckMs = nowMs;
    let marker: AsleepMarker | undefined;
    try {
      this.requests.get++;
      const bytes = await this.store.get(ASLEEP_KEY);
      if (!bytes) return { asleep: false };
      marker = JSON.parse(Buffer.from(bytes).toString('utf8')) as AsleepMarker;
    } catch (error) {
      return {
        asleep: false,
        error: `could not read ${this.store.describe()}/${ASLEEP_KEY}: ${describe(error)}`,
      };
    }
    const functionName = this.options.functionName ?? marker.functionName;
    if (!functionName) {
      return { asleep: true, error: 'the marker names no scheduler function; pass one (--scheduler)' };
    }
    try {
      this.lambda ??= createLambdaClient();
      this.requests.invoke++;
      await this.lambda.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: InvocationType.Event,
          Payload: new TextEncoder().encode(JSON.stringify(NUDGE_EVENT)),
        }),
      );
      return { asleep: true, nudged: functionName };
    } catch (error) {
      return { asleep: true, error: `could not invoke ${functionName}: ${describe(error)}` };
    }
  }
}

/**
 * The store a queue's pipeline keeps, from the queue's `sluice:store` tag (set by the
 * SluicePipeline construct): one ListQueueTags. Undefined when the queue has no such tag or the
 * tags cannot be read (then nothing is nudged).
 */
export async function storeOfQueue(
  sqs: SQSClient,
  queueUrl: string,
): Promise<{ bucket: string; prefix: string } | undefined> {
  try {
    const tags = await sqs.send(new ListQueueTagsCommand({ QueueUrl: queueUrl }));
    const url = tags.Tags?.[STORE_TAG];
    return url ? parseStoreUrl(url) : undefined;
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
