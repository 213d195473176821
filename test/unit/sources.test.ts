import { appendFileSync, mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  BatchScheduler,
  decodeBlock,
  InProcessInvoker,
  MemoryObjectStore,
  type ObjectStore,
  type Source,
  StreamingContext,
} from '../../shared/engine.ts';
import {
  FileSource,
  GeneratorSource,
  HttpSource,
  SourcePositionError,
  StdinSource,
} from '../../shared/local/sources.ts';

const dir = path.resolve(import.meta.dirname, '../.tmp/sources');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

const req = (t: number, maxRecords?: number, resumeFrom?: unknown) => ({
  batchTimeMs: t,
  intervalMs: 1,
  ...(maxRecords !== undefined ? { maxRecords } : {}),
  ...(resumeFrom !== undefined ? { resumeFrom } : {}),
});

/** A one-input pipeline driven by hand, its input saved as is. */
function driver(store: ObjectStore, source: Source<unknown>, maxRecordsPerBatch?: number) {
  const ctx = new StreamingContext({ batchIntervalMs: 1000, partitions: 1 });
  ctx.inputStream<string>().saveAsJsonLines('out');
  let s: BatchScheduler | undefined;
  s = new BatchScheduler(ctx, {
    store,
    invoker: new InProcessInvoker({ pipeline: () => s!.pipeline, store }),
    sources: { input: source },
    clock: 'manual',
    zeroTimeMs: 0,
    retryBackoffMs: 1,
    ...(maxRecordsPerBatch !== undefined ? { maxRecordsPerBatch } : {}),
  });
  return s;
}

/** Every record in the store's input blocks, in batch order. */
async function storedInput(store: ObjectStore): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const key of await store.list('inputs/')) out.push(...decodeBlock((await store.get(key))!));
  return out;
}

describe('FileSource', () => {
  it('hands out lines under backpressure and resumes after exactly what it handed out', async () => {
    const file = path.join(dir, 'five.txt');
    writeFileSync(file, 'l1\nl2\nl3\nl4\nl5');
    const first = new FileSource(file);
    await first.start();
    const a = await first.receive(req(1, 2));
    expect(a.records).toEqual(['l1', 'l2']);
    expect(a.position).toMatchObject({ kind: 'file', offset: 6, line: 2, path: file });
    expect(first.exhausted()).toBe(false);
    await first.stop();
    // a restart: the new source resumes from the position recorded with the last batch
    const second = new FileSource(file);
    const b = await second.receive(req(2, 2, a.position));
    expect(b.records).toEqual(['l3', 'l4']);
    const c = await second.receive(req(3));
    expect(c.records).toEqual(['l5']);
    expect(second.exhausted()).toBe(true);
  });

  it('dead-letters lines that are not JSON, with the line number', async () => {
    const file = path.join(dir, 'events.jsonl');
    writeFileSync(file, '{"a":1}\n{oops\n{"a":2}\n');
    const source = new FileSource(file, { format: 'json' });
    const batch = await source.receive(req(1));
    expect(batch.records).toEqual([{ a: 1 }, { a: 2 }]);
    expect(batch.deadLetters).toHaveLength(1);
    expect(batch.deadLetters[0]!.origin).toBe(`${file}:2`);
    expect(batch.deadLetters[0]!.reason).toMatch(/not valid JSON/);
  });

  it('streams in small chunks: lines and multi-byte characters split across chunks come out whole', async () => {
    const file = path.join(dir, 'utf8.txt');
    const lines = ['héllo wörld', '😀 emoji 😀', '', 'ünïcödé ✓ 中文字符', 'a'.repeat(50), 'end'];
    writeFileSync(file, `${lines.join('\n')}\n`);
    for (const chunkBytes of [1, 2, 3, 5, 7]) {
      const source = new FileSource(file, { chunkBytes });
      const got: unknown[] = [];
      for (let t = 1; !source.exhausted() && t < 100; t++)
        got.push(...(await source.receive(req(t, 2))).records);
      expect(got).toEqual(lines);
    }
    // it reads only as far as the batch needs: the position is right after the lines handed out
    const source = new FileSource(file, { chunkBytes: 4 });
    const first = await source.receive(req(1, 1));
    expect(first.position).toMatchObject({ offset: Buffer.byteLength('héllo wörld\n'), line: 1 });
    await source.stop();
  });

  it('caps a batch at linesPerBatch, so a large file is handed out over several batches', async () => {
    const file = path.join(dir, 'many.txt');
    writeFileSync(file, Array.from({ length: 25 }, (_, i) => `line ${i}`).join('\n'));
    const source = new FileSource(file, { linesPerBatch: 10, chunkBytes: 16 });
    const sizes: number[] = [];
    for (let t = 1; !source.exhausted(); t++) sizes.push((await source.receive(req(t))).records.length);
    expect(sizes).toEqual([10, 10, 5]);
  });

  it('strips a trailing \\r (CRLF files read like LF files)', async () => {
    const file = path.join(dir, 'crlf.txt');
    writeFileSync(file, 'a\r\nb\r\n{"x":1}\r\nlast\r');
    expect((await new FileSource(file).receive(req(1))).records).toEqual(['a', 'b', '{"x":1}', 'last']);
  });

  it('dead-letters a line of invalid UTF-8 with the byte where it breaks, raw as base64', async () => {
    const file = path.join(dir, 'bad-utf8.txt');
    const bad = Buffer.concat([Buffer.from('ok é'), Buffer.from([0xff, 0x41])]);
    writeFileSync(file, Buffer.concat([Buffer.from('fine\n'), bad, Buffer.from('\nfine too\n')]));
    const batch = await new FileSource(file).receive(req(1));
    expect(batch.records).toEqual(['fine', 'fine too']);
    expect(batch.deadLetters).toEqual([
      { raw: bad.toString('base64'), reason: 'invalid UTF-8 at byte 5', origin: `${file}:2` },
    ]);
  });

  it('dead-letters a JSON string holding a lone surrogate (--format json), keeps a pair', async () => {
    const file = path.join(dir, 'surrogate.jsonl');
    writeFileSync(file, '{"s":"\\ud800"}\n{"s":"\\ud83d\\ude00"}\n');
    const batch = await new FileSource(file, { format: 'json' }).receive(req(1));
    expect(batch.records).toEqual([{ s: '😀' }]);
    expect(batch.deadLetters[0]!.reason).toMatch(/lone UTF-16 surrogate/);
  });

  it('a store that read one file refuses another file at start, saying what to do', async () => {
    const a = path.join(dir, 'a.txt');
    const b = path.join(dir, 'b.txt');
    writeFileSync(a, 'a1\na2\na3\n');
    writeFileSync(b, 'b1\nb2\nb3\n');
    const store = new MemoryObjectStore();
    const first = driver(store, new FileSource(a), 2);
    await first.run({ numBatches: 1 });
    await first.stop();
    const second = driver(store, new FileSource(b));
    const refused = await second.start().then(
      () => undefined,
      (err: unknown) => err,
    );
    await second.stop();
    expect(refused).toBeInstanceOf(SourcePositionError);
    expect((refused as Error).message).toMatch(
      /already read 2 lines .* of .*a\.txt; this run reads another file/,
    );
    expect((refused as Error).message).toMatch(/--fresh/);
    expect((refused as Error).message).toMatch(/--store/);
    // the same file carries on after exactly the lines handed out
    const third = driver(store, new FileSource(a));
    await third.run({ numBatches: 1 });
    await third.stop();
    expect(await storedInput(store)).toEqual(['a1', 'a2', 'a3']);
  });

  it('refuses a file that was truncated or rewritten since the saved position', async () => {
    const file = path.join(dir, 'shrinks.txt');
    writeFileSync(file, 'one\ntwo\nthree\nfour\n');
    const reader = new FileSource(file);
    const first = await reader.receive(req(1, 3));
    await reader.stop();
    truncateSync(file, 4);
    await expect(new FileSource(file).resume(first.position)).rejects.toThrow(/truncated.*--fresh/);
    writeFileSync(file, 'ONE\ntwo\nthree\nfour\n');
    await expect(new FileSource(file).resume(first.position)).rejects.toThrow(/first \d+ bytes .* changed/);
  });

  it('resumes a grown file with follow after exactly the lines handed out, also a partial last line', async () => {
    const file = path.join(dir, 'grows.txt');
    writeFileSync(file, 'x1\nx2\nx3 part');
    const source = new FileSource(file, { follow: true, chunkBytes: 4 });
    const a = await source.receive(req(1));
    expect(a.records).toEqual(['x1', 'x2']);
    appendFileSync(file, 'ial\nx4\n');
    expect((await source.receive(req(2))).records).toEqual(['x3 partial', 'x4']);
    await source.stop();
    appendFileSync(file, 'x5\n');
    const again = new FileSource(file, { follow: true });
    await again.resume(a.position);
    expect((await again.receive(req(3))).records).toEqual(['x3 partial', 'x4', 'x5']);
    await again.stop();
  });
});

describe('StdinSource', () => {
  it('decodes like the file source: CRLF stripped, invalid UTF-8 dead-lettered, chunks joined', async () => {
    const input = new PassThrough();
    const source = new StdinSource({ input });
    await source.start();
    input.write(Buffer.from('one\r\ntw'));
    input.write(Buffer.from([0xc3])); // the first byte of 'é'
    input.write(Buffer.concat([Buffer.from([0xa9]), Buffer.from('o\r\n'), Buffer.from([0x80, 0x0a])]));
    input.end('last');
    await new Promise((r) => setImmediate(r));
    const batch = await source.receive(req(1));
    expect(batch.records).toEqual(['one', 'twéo', 'last']);
    expect(batch.deadLetters).toEqual([
      { raw: 'gA==', reason: 'invalid UTF-8 at byte 0', origin: 'stdin:3' },
    ]);
    expect(source.exhausted()).toBe(true);
  });
});

describe('GeneratorSource', () => {
  it('owes rate x interval records per batch and keeps a backlog under a cap', async () => {
    const source = new GeneratorSource({ ratePerSec: 1000, generate: (i) => i });
    expect((await source.receive({ batchTimeMs: 1, intervalMs: 100 })).records).toHaveLength(100);
    expect((await source.receive({ batchTimeMs: 2, intervalMs: 100, maxRecords: 30 })).records).toEqual(
      Array.from({ length: 30 }, (_, i) => 100 + i),
    );
    expect(source.backlog).toBe(70);
  });
});

/** Resolves once `check` holds (polled), for waiting on a server's side effects. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!check()) throw new Error('condition not reached');
}

describe('HttpSource', () => {
  it('takes POSTed lines and JSON arrays, dead-letters bad JSON, and answers 202 once acked', async () => {
    const source = new HttpSource({ port: 0, format: 'json' });
    await source.start();
    try {
      const post = (body: string) => fetch(source.url, { method: 'POST', body }).then((r) => r.json());
      const answers = Promise.all([post('{"a":1}\n{"a":2}\n'), post('[{"a":3},{"a":4}]'), post('nope')]);
      await until(() => source.buffered === 4);
      const batch = await source.receive(req(1));
      expect(batch.records).toEqual([{ a: 1 }, { a: 2 }, { a: 3 }, { a: 4 }]);
      expect(batch.deadLetters[0]!.raw).toBe('nope');
      await source.ack(batch.ackToken);
      expect(await answers).toEqual([
        { accepted: 2, deadLettered: 0 },
        { accepted: 2, deadLettered: 0 },
        { accepted: 0, deadLettered: 1 },
      ]);
    } finally {
      await source.stop();
    }
  });

  it('takes a JSON-lines body whose first line is an array: one event per line, not one dead letter', async () => {
    const source = new HttpSource({ port: 0, format: 'json' });
    await source.start();
    try {
      const post = (body: string) => fetch(source.url, { method: 'POST', body }).then((r) => r.json());
      const answers = Promise.all([
        post('[1,2]\n{"a":1}\n'),
        post('[3]\n[4,5]\n'),
        post('[\n  {"b":1},\n  {"b":2}\n]\n'),
        post('[6]\n{"broken\n'),
      ]);
      await until(() => source.buffered === 7);
      const batch = await source.receive(req(1));
      expect(batch.records).toEqual([[1, 2], { a: 1 }, [3], [4, 5], { b: 1 }, { b: 2 }, [6]]);
      expect(batch.deadLetters.map((d) => [d.raw, d.origin])).toEqual([['{"broken', 'http:4:2']]);
      await source.ack(batch.ackToken);
      expect(await answers).toEqual([
        { accepted: 2, deadLettered: 0 },
        { accepted: 2, deadLettered: 0 },
        { accepted: 2, deadLettered: 0 },
        { accepted: 1, deadLettered: 1 },
      ]);
    } finally {
      await source.stop();
    }
  });

  it('answers 202 only after the write-ahead entry holds the records', async () => {
    const source = new HttpSource({ port: 0 });
    const inner = new MemoryObjectStore();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let holding = false;
    // a store that holds the driver just before it writes the write-ahead entry
    const store: ObjectStore = Object.assign(Object.create(inner) as ObjectStore, {
      putIfAbsent: async (key: string, body: Uint8Array) => {
        if (key.endsWith('/received.json')) {
          holding = true;
          await gate;
        }
        return inner.putIfAbsent(key, body);
      },
    });
    const s = driver(store, source);
    await s.start();
    try {
      let status: number | undefined;
      const response = fetch(source.url, { method: 'POST', body: 'e1\ne2\n' }).then((r) => {
        status = r.status;
        return r.json();
      });
      await until(() => source.buffered === 2);
      const run = s.run({ numBatches: 1 });
      await until(() => holding);
      await new Promise((r) => setTimeout(r, 50));
      expect(status).toBeUndefined(); // the records are not stored yet: no answer
      release();
      expect(await response).toEqual({ accepted: 2, deadLettered: 0 });
      expect(status).toBe(202);
      await run;
      expect(await storedInput(inner)).toEqual(['e1', 'e2']);
    } finally {
      await s.stop();
    }
  });

  it('answers 503 with a retry hint when the batch failed or the source stops', async () => {
    const source = new HttpSource({ port: 0 });
    await source.start();
    try {
      const first = fetch(source.url, { method: 'POST', body: 'a\nb\n' });
      await until(() => source.buffered === 2);
      await source.receive(req(1)); // its batch fails: never acked
      await source.receive(req(2));
      const r = await first;
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('1');
      const second = fetch(source.url, { method: 'POST', body: 'c\n' });
      await until(() => source.buffered === 1);
      await source.stop();
      expect((await second).status).toBe(503);
    } finally {
      await source.stop();
    }
  });

  it('answers 413 over the body limit, 405 to other methods, 404 to other paths', async () => {
    const source = new HttpSource({ port: 0, maxBodyBytes: 100 });
    await source.start();
    try {
      const big = await fetch(source.url, { method: 'POST', body: 'x'.repeat(101) });
      expect(big.status).toBe(413);
      expect(((await big.json()) as { error: string }).error).toMatch(/over 100 bytes/);
      const get = await fetch(source.url, { method: 'GET' });
      expect(get.status).toBe(405);
      expect(get.headers.get('allow')).toBe('POST');
      const base = source.url.replace(/\/events$/, '');
      expect((await fetch(`${base}/eventsx`, { method: 'POST', body: 'a' })).status).toBe(404);
      expect((await fetch(`${base}/events/x`, { method: 'POST', body: 'a' })).status).toBe(404);
      expect((await fetch(`${base}/`, { method: 'POST', body: 'a' })).status).toBe(404);
      expect(source.buffered).toBe(0);
      // a query string is fine
      const ok = fetch(`${source.url}?src=test`, { method: 'POST', body: 'a' });
      await until(() => source.buffered === 1);
      await source.ack((await source.receive(req(1))).ackToken);
      expect((await ok).status).toBe(202);
    } finally {
      await source.stop();
    }
  });

  it('decodes bodies like the file source: CRLF stripped, invalid UTF-8 dead-lettered', async () => {
    const source = new HttpSource({ port: 0 });
    await source.start();
    try {
      const body = Buffer.concat([
        Buffer.from('a\r\nb'),
        Buffer.from([0xe2, 0x28, 0xa1]),
        Buffer.from('\r\nc\r\n'),
      ]);
      const answer = fetch(source.url, { method: 'POST', body }).then((r) => r.json());
      await until(() => source.buffered === 2);
      const batch = await source.receive(req(1));
      expect(batch.records).toEqual(['a', 'c']);
      expect(batch.deadLetters).toEqual([
        {
          raw: Buffer.from([0x62, 0xe2, 0x28, 0xa1]).toString('base64'),
          reason: 'invalid UTF-8 at byte 1',
          origin: 'http:1:2',
        },
      ]);
      await source.ack(batch.ackToken);
      expect(await answer).toEqual({ accepted: 2, deadLettered: 1 });
    } finally {
      await source.stop();
    }
  });
});
