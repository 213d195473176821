/**
 * The `ObjectStore` conformance suite: what every store (memory, directory, S3) must do the same
 * way, since the engine runs unchanged on each. Called from a unit test (memory, directory) and an
 * integration test (S3 on LocalStack); each case gets a fresh, empty store from `open`.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../shared/index.ts';

export interface ConformanceOptions {
  /** A fresh, empty store (a new directory, a new key prefix, ...). */
  readonly open: () => Promise<ObjectStore> | ObjectStore;
  /** Keys written for the listing test: above 1000 makes S3 list more than one page. */
  readonly manyKeys?: number;
  /** Size of the large object, in bytes. */
  readonly largeBytes?: number;
  /** Concurrent writers in the put-if-absent race. */
  readonly racers?: number;
}

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
/** Byte equality without vitest walking a large array element by element. */
const same = (a: Uint8Array | undefined, b: Uint8Array) => a !== undefined && Buffer.from(a).equals(b);
/** S3 lists in UTF-8 byte order: the oracle every store's `list` is checked against. */
const byUtf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Keys a user's output name or an input file name can bring in. */
export const ODD_KEYS = [
  'odd/with space',
  'odd/two  spaces and trailing ',
  'odd/ünïcödé',
  'odd/日本語',
  'odd/emoji-😀',
  'odd/half-width-｡',
  'odd/eq=1',
  'odd/k=v&x=y',
  'odd/plus+sign',
  'odd/percent%',
  'odd/percent-encoded%20not-a-space',
  'odd/percent%2Fnot-a-slash',
  'odd/a..b',
  'odd/ends-like-a-temp-file.tmp',
  'odd/quote\'and"double',
  'odd/(parens)[brackets]{braces}',
  'odd/tilde~hash#question?',
  'odd/semi;colon:comma,at@dollar$',
  'odd/deep/er/key',
] as const;

export function objectStoreConformance(name: string, options: ConformanceOptions): void {
  const manyKeys = options.manyKeys ?? 1100;
  const largeBytes = options.largeBytes ?? 20 * 1024 * 1024;
  const racers = options.racers ?? 24;
  const open = async () => options.open();

  describe(`ObjectStore conformance: ${name}`, () => {
    describe('reads and writes', () => {
      it('round-trips bytes, binary-safe, including an empty object; put replaces', async () => {
        const store = await open();
        const bytes = new Uint8Array(randomBytes(4096));
        await store.put('rw/blob', bytes);
        expect(same(await store.get('rw/blob'), bytes)).toBe(true);
        await store.put('rw/empty', new Uint8Array(0));
        const empty = await store.get('rw/empty');
        expect(empty).toBeInstanceOf(Uint8Array);
        expect(empty?.byteLength).toBe(0);
        await store.put('rw/blob', text('replaced'));
        expect(str(await store.get('rw/blob'))).toBe('replaced');
      });

      it('keeps the bytes as they were at put, whatever the caller does to its array afterwards', async () => {
        const store = await open();
        const body = text('original');
        await store.put('rw/mine', body);
        body.fill(0x21);
        expect(str(await store.get('rw/mine'))).toBe('original');
        const conditional = text('first');
        expect(await store.putIfAbsent('rw/cond', conditional)).toBe(true);
        conditional.fill(0x21);
        expect(str(await store.get('rw/cond'))).toBe('first');
      });

      it('hands each reader its own bytes: changing what get returned changes nothing stored', async () => {
        const store = await open();
        await store.put('rw/shared', text('intact'));
        const first = await store.get('rw/shared');
        first!.fill(0x21);
        expect(str(await store.get('rw/shared'))).toBe('intact');
        const part = await store.get('rw/shared', { start: 1, end: 4 });
        part!.fill(0x21);
        expect(str(await store.get('rw/shared'))).toBe('intact');
      });

      it('round-trips a large object, whole and by range', async () => {
        const store = await open();
        const big = new Uint8Array(randomBytes(largeBytes));
        await store.put('large/object', big);
        expect(same(await store.get('large/object'), big)).toBe(true);
        const mid = Math.floor(largeBytes / 2);
        expect(
          same(
            await store.get('large/object', { start: mid, end: mid + 65_536 }),
            big.subarray(mid, mid + 65_536),
          ),
        ).toBe(true);
        expect(
          same(
            await store.get('large/object', { start: largeBytes - 10, end: largeBytes + 10 }),
            big.subarray(-10),
          ),
        ).toBe(true);
      });
    });

    describe('missing keys', () => {
      it('get is undefined, with or without a range; delete of a missing key is fine', async () => {
        const store = await open();
        expect(await store.get('missing/key')).toBeUndefined();
        expect(await store.get('missing/key', { start: 0, end: 10 })).toBeUndefined();
        expect(await store.get('missing/key', { start: 5, end: 5 })).toBeUndefined();
        await expect(store.delete('missing/key')).resolves.toBeUndefined();
        await expect(store.delete('missing/deeper/key')).resolves.toBeUndefined();
        expect(await store.list('missing/')).toEqual([]);
      });

      it('a deleted key is gone: get is undefined, list skips it, putIfAbsent wins again', async () => {
        const store = await open();
        await store.put('gone/a', text('a'));
        await store.put('gone/b', text('b'));
        await store.delete('gone/a');
        expect(await store.get('gone/a')).toBeUndefined();
        expect(await store.list('gone/')).toEqual(['gone/b']);
        expect(await store.putIfAbsent('gone/a', text('again'))).toBe(true);
        expect(str(await store.get('gone/a'))).toBe('again');
        await store.delete('gone/a');
        await store.delete('gone/a');
        expect(await store.get('gone/a')).toBeUndefined();
      });
    });

    describe('byte ranges [start, end)', () => {
      it('reads inside, up to and beyond the end; empty past the end', async () => {
        const store = await open();
        await store.put('range/digits', text('0123456789'));
        expect(str(await store.get('range/digits', { start: 2, end: 5 }))).toBe('234');
        expect(str(await store.get('range/digits', { start: 0, end: 1 }))).toBe('0');
        expect(str(await store.get('range/digits', { start: 0, end: 10 }))).toBe('0123456789');
        expect(str(await store.get('range/digits', { start: 7, end: 100 }))).toBe('789');
        expect(str(await store.get('range/digits', { start: 9, end: 10 }))).toBe('9');
        expect(str(await store.get('range/digits', { start: 10, end: 20 }))).toBe('');
        expect(str(await store.get('range/digits', { start: 50, end: 60 }))).toBe('');
        expect(str(await store.get('range/digits', { start: 4, end: 4 }))).toBe('');
      });

      it('a range of an empty object is empty', async () => {
        const store = await open();
        await store.put('range/empty', new Uint8Array(0));
        expect((await store.get('range/empty', { start: 0, end: 10 }))?.byteLength).toBe(0);
      });

      it('rejects a backwards, negative or fractional range with a RangeError', async () => {
        const store = await open();
        await store.put('range/digits', text('0123456789'));
        await expect(store.get('range/digits', { start: 5, end: 2 })).rejects.toThrow(RangeError);
        await expect(store.get('range/digits', { start: -1, end: 2 })).rejects.toThrow(RangeError);
        await expect(store.get('range/digits', { start: 1.5, end: 3 })).rejects.toThrow(RangeError);
        await expect(store.get('range/missing', { start: 5, end: 2 })).rejects.toThrow(RangeError);
      });
    });

    describe('put-if-absent', () => {
      it('loses to an existing object and leaves it untouched', async () => {
        const store = await open();
        await store.put('pia/key', text('existing'));
        expect(await store.putIfAbsent('pia/key', text('intruder'))).toBe(false);
        expect(str(await store.get('pia/key'))).toBe('existing');
        expect(await store.putIfAbsent('pia/fresh', new Uint8Array(0))).toBe(true);
        expect(await store.putIfAbsent('pia/fresh', text('late'))).toBe(false);
        expect((await store.get('pia/fresh'))?.byteLength).toBe(0);
      });

      it(`races ${racers} writers on one key: exactly one wins, and the stored bytes are the winner's`, async () => {
        const store = await open();
        for (let round = 0; round < 3; round++) {
          const key = `race/key-${round}`;
          const bodies = Array.from({ length: racers }, (_, i) => text(`writer ${i} `.repeat(50 + i)));
          const won = await Promise.all(bodies.map((b) => store.putIfAbsent(key, b)));
          const winners = won.flatMap((w, i) => (w ? [i] : []));
          expect(winners, `round ${round}`).toHaveLength(1);
          expect(str(await store.get(key))).toBe(str(bodies[winners[0]!]));
          expect(await store.list('race/')).toContain(key);
        }
      });
    });

    describe('listing', () => {
      it('lists exactly the keys under a prefix, whether or not it ends at a slash', async () => {
        const store = await open();
        const keys = ['ls/a/1', 'ls/a/2', 'ls/ab/1', 'ls/b', 'ls2/x', 'other/ls/a'];
        await Promise.all(keys.map((k) => store.put(k, text(k))));
        expect(await store.list('ls/a/')).toEqual(['ls/a/1', 'ls/a/2']);
        expect(await store.list('ls/a')).toEqual(['ls/a/1', 'ls/a/2', 'ls/ab/1']);
        expect(await store.list('ls/')).toEqual(['ls/a/1', 'ls/a/2', 'ls/ab/1', 'ls/b']);
        expect(await store.list('ls')).toEqual(['ls/a/1', 'ls/a/2', 'ls/ab/1', 'ls/b', 'ls2/x']);
        expect(await store.list('ls/b')).toEqual(['ls/b']);
        expect(await store.list('ls/c')).toEqual([]);
        expect(await store.list('nothing/')).toEqual([]);
        expect(await store.list('')).toEqual([...keys].sort(byUtf8));
      });

      it('lists in UTF-8 byte order (as S3 does), also for characters beyond U+FFFF', async () => {
        const store = await open();
        const keys = [
          'order/a-b',
          'order/aB',
          'order/ab/c',
          'order/Z',
          'order/｡',
          'order/😀',
          'order/é',
          'order/~',
        ];
        await Promise.all(keys.map((k) => store.put(k, text(k))));
        expect(await store.list('order/')).toEqual([...keys].sort(byUtf8));
      });

      it(`lists all of ${manyKeys} keys, in order (more than one S3 page)`, async () => {
        const store = await open();
        const keys = Array.from({ length: manyKeys }, (_, i) => `many/${String(i).padStart(5, '0')}`);
        // A few at a time: thousands of concurrent requests would only measure the socket pool.
        for (let i = 0; i < keys.length; i += 50) {
          await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, new Uint8Array([i % 256]))));
        }
        await store.put('many-not/00000', text('outside'));
        const listed = await store.list('many/');
        expect(listed).toHaveLength(manyKeys);
        expect(listed).toEqual(keys);
        expect(await store.list('many/0100')).toEqual(keys.filter((k) => k.startsWith('many/0100')));
      });
    });

    describe('keys with odd characters', () => {
      it('puts, gets, lists and deletes each of them as itself', async () => {
        const store = await open();
        for (const key of ODD_KEYS) await store.put(key, text(`body of ${key}`));
        for (const key of ODD_KEYS) expect(str(await store.get(key)), key).toBe(`body of ${key}`);
        expect(await store.list('odd/')).toEqual([...ODD_KEYS].sort(byUtf8));
        expect(await store.list('odd/eq=')).toEqual(['odd/eq=1']);
        expect(await store.list('odd/percent%')).toEqual(['odd/percent%', 'odd/percent%2Fnot-a-slash']);
        expect(await store.list('odd/with ')).toEqual(['odd/with space']);
        expect(await store.list('odd/plus+')).toEqual(['odd/plus+sign']);
        expect(await store.get('odd/with+space')).toBeUndefined();
        expect(await store.get('odd/percent-encoded not-a-space')).toBeUndefined();
        expect(await store.putIfAbsent('odd/emoji-😀', text('again'))).toBe(false);
        for (const key of ODD_KEYS) await store.delete(key);
        expect(await store.list('odd/')).toEqual([]);
      });
    });
  });
}
