import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSource, GeneratorSource, HttpSource } from '../../shared/local/sources.ts';

const dir = path.resolve(import.meta.dirname, '../.tmp/sources');
mkdirSync(dir, { recursive: true });

describe('FileSource', () => {
  it('hands out lines under backpressure and resumes after exactly what it handed out', async () => {
    const file = path.join(dir, 'five.txt');
    writeFileSync(file, 'l1\nl2\nl3\nl4\nl5');
    const first = new FileSource(file);
    await first.start();
    const a = await first.receive({ batchTimeMs: 1, intervalMs: 1, maxRecords: 2 });
    expect(a.records).toEqual(['l1', 'l2']);
    expect(first.exhausted()).toBe(false);
    // a restart: the new source resumes from the position recorded with the last batch
    const second = new FileSource(file);
    const b = await second.receive({ batchTimeMs: 2, intervalMs: 1, maxRecords: 2, resumeFrom: a.position });
    expect(b.records).toEqual(['l3', 'l4']);
    const c = await second.receive({ batchTimeMs: 3, intervalMs: 1 });
    expect(c.records).toEqual(['l5']);
    expect(second.exhausted()).toBe(true);
  });

  it('dead-letters lines that are not JSON, with the line number', async () => {
    const file = path.join(dir, 'events.jsonl');
    writeFileSync(file, '{"a":1}\n{oops\n{"a":2}\n');
    const source = new FileSource(file, { format: 'json' });
    const batch = await source.receive({ batchTimeMs: 1, intervalMs: 1 });
    expect(batch.records).toEqual([{ a: 1 }, { a: 2 }]);
    expect(batch.deadLetters).toHaveLength(1);
    expect(batch.deadLetters[0]!.origin).toBe(`${file}:2`);
    expect(batch.deadLetters[0]!.reason).toMatch(/not valid JSON/);
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

describe('HttpSource', () => {
  it('takes POSTed lines and JSON arrays, and dead-letters bad JSON', async () => {
    const source = new HttpSource({ port: 0, format: 'json' });
    await source.start();
    try {
      const post = (body: string) => fetch(source.url, { method: 'POST', body }).then((r) => r.json());
      expect(await post('{"a":1}\n{"a":2}\n')).toEqual({ accepted: 2, deadLettered: 0 });
      expect(await post('[{"a":3},{"a":4}]')).toEqual({ accepted: 2, deadLettered: 0 });
      expect(await post('nope')).toEqual({ accepted: 0, deadLettered: 1 });
      const batch = await source.receive({ batchTimeMs: 1, intervalMs: 1 });
      expect(batch.records).toEqual([{ a: 1 }, { a: 2 }, { a: 3 }, { a: 4 }]);
      expect(batch.deadLetters[0]!.raw).toBe('nope');
    } finally {
      await source.stop();
    }
  });
});
