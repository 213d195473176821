import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../aws/clients.ts';
import { ObjectStoreError } from '../../aws/errors.ts';
import { compareCodePoints, S3ObjectStore } from '../../aws/s3-object-store.ts';
import { objectStoreConformance } from '../conformance/object-store.ts';
import { createBucket, requireLocalStack, uniqueName } from './localstack.ts';

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

let bucket: string;

beforeAll(async () => {
  await requireLocalStack();
  bucket = await createBucket();
});

// The suite the local stores pass too (test/unit/object-store.test.ts), each case under a new prefix;
// 1100 keys make the store list two pages of S3's 1000.
objectStoreConformance('S3 on LocalStack', {
  open: () => new S3ObjectStore({ bucket, prefix: uniqueName('conformance') }),
  manyKeys: 1100,
});

describe('S3ObjectStore on LocalStack', () => {
  it('puts and gets objects, binary-safe; a missing key is undefined', async () => {
    const store = new S3ObjectStore({ bucket, prefix: uniqueName('rw') });
    const bytes = new Uint8Array(randomBytes(1024 * 1024 + 7));
    await store.put('blocks/a.bin', bytes);
    const got = await store.get('blocks/a.bin');
    // Buffer.equals: vitest's deep equality walks a 1 MiB array element by element (seconds).
    expect(got && Buffer.from(got).equals(bytes)).toBe(true);
    await store.put('empty', new Uint8Array(0));
    expect(await store.get('empty')).toEqual(new Uint8Array(0));
    expect(await store.get('blocks/missing.bin')).toBeUndefined();
    expect(await store.get('blocks/missing.bin', { start: 0, end: 10 })).toBeUndefined();
    await store.put('blocks/a.bin', text('replaced'));
    expect(str(await store.get('blocks/a.bin'))).toBe('replaced');
    expect(store.describe()).toMatch(new RegExp(`^s3://${bucket}/rw-`));
  });

  it('lists keys under a prefix in order, across pages, relative to the store prefix', async () => {
    const prefix = uniqueName('list');
    const store = new S3ObjectStore({ bucket, prefix, listPageSize: 7 });
    const keys = Array.from({ length: 25 }, (_, i) => `batch/${String(i).padStart(3, '0')}/part-0`);
    await Promise.all(keys.map((k) => store.put(k, text(k))));
    await store.put('other/x', text('x'));
    const before = store.requestStats().lists;
    expect(await store.list('batch/')).toEqual(keys);
    expect(store.requestStats().lists - before).toBe(4); // 25 keys, 7 per page
    expect(await store.list('')).toEqual([...keys, 'other/x']);
    expect(await store.list('nothing-here/')).toEqual([]);
    // Another prefix in the same bucket sees none of it.
    const neighbour = new S3ObjectStore({ bucket, prefix: `${prefix}-2` });
    expect(await neighbour.list('')).toEqual([]);
  });

  it('putIfAbsent: exactly one of 10 concurrent writers wins, and its bytes stay', async () => {
    const store = new S3ObjectStore({ bucket, prefix: uniqueName('commit') });
    for (let round = 0; round < 5; round++) {
      const key = `commit/${round}.json`;
      const bodies = Array.from({ length: 10 }, (_, i) => text(JSON.stringify({ writer: i, round })));
      const outcomes = await Promise.all(bodies.map((b) => store.putIfAbsent(key, b)));
      expect(outcomes.filter(Boolean)).toHaveLength(1);
      const winner = outcomes.indexOf(true);
      expect(str(await store.get(key))).toBe(str(bodies[winner]));
      // Later writers lose too, and the object is unchanged.
      expect(await store.putIfAbsent(key, text('late'))).toBe(false);
      expect(str(await store.get(key))).toBe(str(bodies[winner]));
    }
    const stats = store.requestStats();
    expect(stats.conditionalMisses).toBeGreaterThanOrEqual(5 * 10);
    expect(stats.errors).toBe(0);
  });

  it('counts requests and bytes', async () => {
    const store = new S3ObjectStore({ bucket, prefix: uniqueName('stats') });
    await store.put('a', text('12345'));
    await store.get('a');
    await store.get('a', { start: 1, end: 3 });
    await store.get('missing');
    await store.list('');
    await store.delete('a');
    expect(store.requestStats()).toEqual({
      gets: 3,
      puts: 1,
      lists: 1,
      deletes: 1,
      bytesIn: 7,
      bytesOut: 5,
      conditionalMisses: 0,
      errors: 0,
    });
    expect(store.resetRequestStats().gets).toBe(3);
    expect(store.requestStats().gets).toBe(0);
  });

  it('a missing bucket is an error, not a missing key', async () => {
    const store = new S3ObjectStore({ bucket: uniqueName('no-such-bucket'), client: createS3Client() });
    const error = await store.get('k').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ObjectStoreError);
    expect((error as ObjectStoreError).message).toMatch(/NoSuchBucket/);
    expect((error as ObjectStoreError).retryable).toBe(false);
  });

  it('orders keys by code point like S3', () => {
    const keys = ['b', 'a\u{1F600}', 'a\uFFFD', 'a', 'ab'];
    expect([...keys].sort(compareCodePoints)).toEqual(['a', 'ab', 'a\uFFFD', 'a\u{1F600}', 'b']);
  });
});
