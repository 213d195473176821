/**
 * `sluice replay`, `sluice query` and `sluice batch` as a user runs them: real processes
 * (`node bin/sluice.js`), worker threads, directory stores.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sluice } from '../sluice-cli.ts';

const PIPELINE = (lower: boolean) => `
export const options = { batchIntervalMs: 200, partitions: 2 };
export default function counts(ctx) {
  const totals = ctx
    .inputStream()
    .flatMap((line) => line.split(' ').filter((w) => w.length > 0))
    .map((w) => [${lower ? 'w.toLowerCase()' : 'w'}, 1])
    .updateStateByKey((vs, s) => (s ?? 0) + vs.reduce((a, b) => a + b, 0), { name: 'totals' });
  totals.saveAsJsonLines('totals');
}
`;

/** Every file under dir (relative path -> bytes as base64). */
function tree(dir: string, filter: (rel: string) => boolean = () => true): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(p).isDirectory()) walk(p, r);
      else if (filter(r)) out.set(r, readFileSync(p).toString('base64'));
    }
  };
  walk(dir, '');
  return out;
}

const LINES = Array.from({ length: 900 }, (_, i) => `The cat the ${i % 5} THE`);

describe('sluice replay / query / batch', () => {
  let dir: string;
  let original: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sluice-replay-'));
    writeFileSync(path.join(dir, 'counts.mts'), PIPELINE(false));
    writeFileSync(path.join(dir, 'fixed.mts'), PIPELINE(true));
    writeFileSync(path.join(dir, 'words.txt'), `${LINES.join('\n')}\n`);
    original = path.join(dir, 'orig');
    const run = sluice(
      'run',
      path.join(dir, 'counts.mts'),
      '--source',
      `file:${path.join(dir, 'words.txt')}`,
      '--max-records',
      '100',
      '--workers',
      '1',
      '--store',
      original,
      '--quiet',
    );
    expect(run.code, run.stderr).toBe(0);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('replays the same module with outputs equal to the original, never writing the original', () => {
    const before = tree(original, (r) => !r.startsWith('lease/'));
    const into = path.join(dir, 'same');
    const r = sluice(
      'replay',
      path.join(dir, 'counts.mts'),
      '--store',
      original,
      '--into',
      into,
      '--workers',
      '2',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { batches: number; records: number; removed: unknown[] };
    expect(summary.records).toBe(LINES.length);
    expect(summary.removed).toEqual([]);
    const data = (rel: string) => rel.startsWith('outputs/') && !rel.endsWith('.lineage.json');
    expect(tree(into, data)).toEqual(tree(original, data));
    expect(tree(original, (rel) => !rel.startsWith('lease/'))).toEqual(before);
  });

  it('replays a fixed module and queries the state of both stores by name', () => {
    const into = path.join(dir, 'fixed');
    const r = sluice('replay', path.join(dir, 'fixed.mts'), '--store', original, '--into', into);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/replayed \d+ batches \(900 records\) in .*; see: sluice status --store /);
    const q = (store: string, ...args: string[]) => {
      const out = sluice('query', 'totals', '--store', store, '--json', ...args);
      expect(out.code, out.stderr).toBe(0);
      return JSON.parse(out.stdout) as { records: [string, number][]; total: number };
    };
    const sorted = (rs: [string, number][]) => [...rs].sort((a, b) => a[0].localeCompare(b[0]));
    expect(sorted(q(original).records)).toEqual(
      sorted([
        ['The', 900],
        ['the', 900],
        ['THE', 900],
        ['cat', 900],
        ...[0, 1, 2, 3, 4].map((i): [string, number] => [String(i), 180]),
      ]),
    );
    expect(q(into, '--top', '1').records).toEqual([['the', 2700]]);
    expect(q(into, '--filter', 'key=cat').records).toEqual([['cat', 900]]);
    expect(q(into, '--filter', 'v < 900').records.length).toBe(5);
    const missing = sluice('query', 'nope', '--store', into);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no stream named 'nope'");
    expect(missing.stderr).toContain('stored streams: totals');
  });

  it('refuses to replay into the original store, with exit code 2', () => {
    const r = sluice('replay', path.join(dir, 'fixed.mts'), '--store', original, '--into', original);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--into.*original store/);
    const noInto = sluice('replay', path.join(dir, 'fixed.mts'), '--store', original);
    expect(noInto.code).toBe(2);
    expect(noInto.stderr).toContain('--into');
  });

  it('batch runs the same module over a file, cut into batches by a time field', () => {
    const events = path.join(dir, 'events.jsonl');
    writeFileSync(
      events,
      `${LINES.slice(0, 30)
        .map((line, i) => JSON.stringify({ line, ts: 1_700_000_000_000 + i * 100 }))
        .join('\n')}\n`,
    );
    writeFileSync(
      path.join(dir, 'events.mts'),
      PIPELINE(true).replace('.inputStream()', '.inputStream().map((e) => e.line)'),
    );
    const into = path.join(dir, 'backfill');
    const r = sluice(
      'batch',
      path.join(dir, 'events.mts'),
      '--input',
      events,
      '--time-field',
      'ts',
      '--into',
      into,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { batches: number; records: number };
    expect(summary).toMatchObject({ records: 30, batches: 15 });
    const q = JSON.parse(sluice('query', 'totals', '--store', into, '--json', '--filter', 'key=the').stdout);
    expect(q.records).toEqual([['the', 90]]);
    const bad = sluice(
      'batch',
      path.join(dir, 'events.mts'),
      '--input',
      events,
      '--time-field',
      'when',
      '--into',
      path.join(dir, 'b2'),
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--time-field');
  });
});
