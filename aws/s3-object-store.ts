/**
 * The object store port on S3: ranged reads, atomic puts, put-if-absent by S3 conditional write
 * (`If-None-Match: *`, atomic on S3 since 2024-08 and on LocalStack), paginated lists, and a request
 * counter the engine reads to report S3 requests and bytes per batch.
 *
 * @module
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  type ByteRange,
  checkByteRange,
  compareKeys,
  type ObjectStore,
} from '../shared/ports/object-store.ts';
import { createS3Client } from './clients.ts';
import { ConditionalWriteConflictError, ObjectStoreError } from './errors.ts';

export interface S3ObjectStoreOptions {
  readonly bucket: string;
  /** Key prefix inside the bucket (no leading or trailing slash needed). */
  readonly prefix?: string;
  /** A client to share; by default one from `createS3Client()`. */
  readonly client?: S3Client;
  /** How often putIfAbsent retries a 409 ConditionalRequestConflict (default 6, backoff from 25 ms). */
  readonly conflictRetries?: number;
  /** Keys per ListObjectsV2 page (default S3's 1000); small values are for tests of pagination. */
  readonly listPageSize?: number;
}

/** Requests this store sent, and bytes it moved (in: read from S3, out: written to S3). */
export interface ObjectStoreRequestStats {
  gets: number;
  puts: number;
  lists: number;
  deletes: number;
  bytesIn: number;
  bytesOut: number;
  /** putIfAbsent calls that lost (412) — counted in `puts` as well, since S3 bills them. */
  conditionalMisses: number;
  /** Requests that ended in an error (other than a missing key or a lost conditional write). */
  errors: number;
}

function emptyStats(): ObjectStoreRequestStats {
  return { gets: 0, puts: 0, lists: 0, deletes: 0, bytesIn: 0, bytesOut: 0, conditionalMisses: 0, errors: 0 };
}

interface AwsLikeError {
  name?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

function statusOf(error: unknown): number | undefined {
  return (error as AwsLikeError | undefined)?.$metadata?.httpStatusCode;
}

function nameOf(error: unknown): string {
  const e = error as AwsLikeError | undefined;
  return e?.name ?? e?.Code ?? 'Error';
}

function isNoSuchKey(error: unknown): boolean {
  const name = nameOf(error);
  return name === 'NoSuchKey' || name === 'NotFound' || (statusOf(error) === 404 && name !== 'NoSuchBucket');
}

function isRetryableStatus(error: unknown): boolean {
  const status = statusOf(error);
  if (status === undefined) return true; // network, timeout, aborted socket
  return status === 429 || status >= 500 || nameOf(error) === 'SlowDown';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class S3ObjectStore implements ObjectStore {
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly conflictRetries: number;
  private readonly listPageSize: number | undefined;
  private counters: ObjectStoreRequestStats = emptyStats();

  constructor(options: S3ObjectStoreOptions) {
    if (!options.bucket) throw new Error('S3ObjectStore: bucket is required');
    this.bucket = options.bucket;
    this.prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.client = options.client ?? createS3Client();
    this.conflictRetries = options.conflictRetries ?? 6;
    this.listPageSize = options.listPageSize;
  }

  /** A snapshot of the request counters since construction (or the last reset). */
  requestStats(): ObjectStoreRequestStats {
    return { ...this.counters };
  }

  /** Returns the counters and starts new ones (e.g. at the start of each batch). */
  resetRequestStats(): ObjectStoreRequestStats {
    const snapshot = this.counters;
    this.counters = emptyStats();
    return snapshot;
  }

  describe(): string {
    return this.prefix ? `s3://${this.bucket}/${this.prefix}` : `s3://${this.bucket}`;
  }

  private fullKey(key: string): string {
    const clean = key.replace(/^\/+/, '');
    return this.prefix ? `${this.prefix}/${clean}` : clean;
  }

  private relativeKey(fullKey: string): string {
    return this.prefix ? fullKey.slice(this.prefix.length + 1) : fullKey;
  }

  private fail(operation: string, key: string, error: unknown): never {
    this.counters.errors++;
    const status = statusOf(error);
    throw new ObjectStoreError(
      operation,
      this.describe() + '/' + key,
      `${nameOf(error)}${status ? ` (HTTP ${status})` : ''}: ${(error as AwsLikeError)?.message ?? String(error)}`,
      { retryable: isRetryableStatus(error), cause: error },
    );
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array | undefined> {
    checkByteRange(key, range);
    this.counters.gets++;
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.fullKey(key),
          // HTTP ranges are inclusive; ByteRange.end is exclusive. An empty range still checks existence.
          ...(range ? { Range: `bytes=${range.start}-${Math.max(range.start, range.end - 1)}` } : {}),
        }),
      );
      if (!res.Body) return new Uint8Array(0);
      const bytes = await res.Body.transformToByteArray();
      this.counters.bytesIn += bytes.byteLength;
      if (range && range.end === range.start) return new Uint8Array(0);
      return bytes;
    } catch (error) {
      if (isNoSuchKey(error)) return undefined;
      // A range that starts at or past the end of the object: nothing to read there.
      if (range && (statusOf(error) === 416 || nameOf(error) === 'InvalidRange')) return new Uint8Array(0);
      this.fail('GetObject', key, error);
    }
  }

  /** One PutObject, counted; `ifNoneMatch` makes it a conditional (first-writer-wins) write. */
  private async putObject(key: string, body: Uint8Array, ifNoneMatch: boolean): Promise<void> {
    this.counters.puts++;
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.fullKey(key),
        Body: body,
        ContentLength: body.byteLength,
        ...(ifNoneMatch ? { IfNoneMatch: '*' } : {}),
      }),
    );
    this.counters.bytesOut += body.byteLength;
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    try {
      await this.putObject(key, body, false);
    } catch (error) {
      this.fail('PutObject', key, error);
    }
  }

  async putIfAbsent(key: string, body: Uint8Array): Promise<boolean> {
    let lastConflict: unknown;
    for (let attempt = 0; attempt <= this.conflictRetries; attempt++) {
      if (attempt > 0) {
        // 409 ConditionalRequestConflict: another conditional write to the key is in flight. Back off
        // (full jitter) and ask again; once it settles S3 answers 412 (it won) or 200 (it failed).
        await sleep(Math.random() * 25 * 2 ** attempt);
      }
      try {
        await this.putObject(key, body, true);
        return true;
      } catch (error) {
        const status = statusOf(error);
        const name = nameOf(error);
        if (status === 412 || name === 'PreconditionFailed') {
          this.counters.conditionalMisses++;
          return false;
        }
        if (status === 409 || name === 'ConditionalRequestConflict') {
          lastConflict = error;
          continue;
        }
        this.fail('PutObject(If-None-Match)', key, error);
      }
    }
    this.counters.errors++;
    throw new ConditionalWriteConflictError(
      this.describe() + '/' + key,
      this.conflictRetries + 1,
      lastConflict,
    );
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    const fullPrefix = this.fullKey(prefix);
    do {
      this.counters.lists++;
      try {
        const res = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: fullPrefix,
            ContinuationToken: token,
            ...(this.listPageSize ? { MaxKeys: this.listPageSize } : {}),
          }),
        );
        for (const object of res.Contents ?? []) {
          if (object.Key !== undefined) keys.push(this.relativeKey(object.Key));
        }
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } catch (error) {
        this.fail('ListObjectsV2', prefix, error);
      }
    } while (token);
    // S3 lists in UTF-8 byte order, which can differ from JS string order for astral characters;
    // the port promises one lexicographic order, so sort by code points.
    return keys.sort(compareKeys);
  }

  async delete(key: string): Promise<void> {
    this.counters.deletes++;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
    } catch (error) {
      if (isNoSuchKey(error)) return;
      this.fail('DeleteObject', key, error);
    }
  }
}

/** Orders strings by Unicode code point (the same order as their UTF-8 bytes, which S3 lists in). */
export const compareCodePoints: (a: string, b: string) => number = compareKeys;
