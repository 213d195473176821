/**
 * Issue 9 through the real command (`node bin/sluice.js`), as a new user meets it: the README's
 * JSON example on a file, windows of a finite source drain, setup errors are usage errors,
 * small things (interval floor, .ts syntax errors, where the outputs went).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseOutputKey } from '../../shared/core/layout.ts';
import { sluice } from '../sluice-cli.ts';

/** Every [key, value] pair saved as outputs/<prefix>/dt=/hr=/batch=<t>/part-*.jsonl, by batch folder. */
function saved(store: string, prefix: string): Map<string, [string, number][]> {
  const out = new Map<string, [string, number][]>();
  const base = path.join(store, 'outputs', prefix);
  const files = (readdirSync(base, { recursive: true }) as string[]).map((f) => f.split(path.sep).join('/'));
  for (const f of files.sort()) {
    const key = parseOutputKey(`outputs/${prefix}/${f}`);
    if (key?.partition === undefined || !f.endsWith('.jsonl')) continue;
    const d = f.slice(0, f.lastIndexOf('/'));
    const pairs = out.get(d) ?? [];
    for (const line of readFileSync(path.join(base, f), 'utf8').split('\n'))
      if (line) pairs.push(JSON.parse(line) as [string, number]);
    out.set(d, pairs.sort());
  }
  return out;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sluice-ux-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a window over a finite source', () => {
  it('drains: the run goes on until every window holding the file emitted, and says so', () => {
    const file = path.join(dir, 'pv.jsonl');
    writeFileSync(file, '{"url":"/a"}\n{"url":"/b"}\n');
    const store = path.join(dir, 'pv-store');
    // --format json: the README's way, records arrive parsed
    const r = sluice(
      'run',
      'examples/pageviews.ts',
      '--source',
      `file:${file}`,
      '--format',
      'json',
      '--duration',
      '12s',
      '--workers',
      '0',
      '--store',
      store,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/the source ended: draining, \d+ more batches/);
    const outputs = saved(store, 'pageviews');
    expect(outputs.size).toBeGreaterThan(0);
    // every emitted window holds the file's two views (the window is 10 s, the file 1 batch)
    for (const [name, pairs] of outputs)
      expect(pairs, name).toEqual([
        ['/a', 1],
        ['/b', 1],
      ]);
    expect(outputs.size).toBe(5); // windows at every 2 s slide within 10 s of the data
  });
});

describe('dead letters in the live row, the summary and sluice status', () => {
  it('show the figure of the manifest: records whose user code threw, counted once', () => {
    const pipeline = path.join(dir, 'throws.mts');
    writeFileSync(
      pipeline,
      `export default function (ctx) {
  const up = ctx.inputStream().map((l) => { if (l.startsWith('bad')) throw new Error('bad line'); return l.toUpperCase(); });
  up.saveAsTextFiles('a');
  up.map((l) => l + '!').saveAsTextFiles('b');
}
`,
    );
    const file = path.join(dir, 'lines.txt');
    writeFileSync(file, 'ok\nbad 1\nok\nbad 2\nbad 3\n');
    const store = path.join(dir, 'dl-store');
    const r = sluice(
      'run',
      pipeline,
      '--source',
      `file:${file}`,
      '--workers',
      '0',
      '--store',
      store,
      '--interval',
      '200ms',
    );
    expect(r.code, r.stderr).toBe(0);
    const manifests = readdirSync(path.join(store, 'manifests')).map(
      (f) => JSON.parse(readFileSync(path.join(store, 'manifests', f), 'utf8')) as { deadLettered: number },
    );
    expect(manifests.reduce((n, m) => n + m.deadLettered, 0)).toBe(3);
    expect(r.stderr).toMatch(/3 dead letters/); // the batch's row
    expect(r.stderr).toMatch(/: 5 records, 3 dead letters/); // the summary
    expect(r.stderr).toMatch(
      /outputs .*outputs\/a\/ · 1 batch, 2 records \(last dt=\d{4}-\d\d-\d\d\/hr=\d\d\/batch=\d+\/\)/,
    ); // where the outputs went
    const status = sluice('status', '--store', store);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/3 dead letters/);
    const detail = sluice('status', '--store', store, '--batch', 'last');
    expect(detail.stdout).toMatch(/3 dead letters \(0 not decodable, 3 made user code throw\)/);
  });

  it('status --non-empty lists only the batches that had input', () => {
    const store = path.join(dir, 'pv-store'); // from the drain test: 1 batch with input, then empty ones
    const all = sluice('status', '--store', store);
    const some = sluice('status', '--store', store, '--non-empty');
    expect(some.code, some.stderr).toBe(0);
    const rows = (s: string) =>
      s.split('\n').filter((l) => /^\d\d:\d\d:\d\d\.\d{3}\s+\d+\s+\d+\s+\d/.test(l));
    expect(rows(all.stdout).length).toBe(10);
    expect(rows(some.stdout).length).toBe(1);
    expect(some.stdout).toMatch(/1 batches with input or dead letters \(--non-empty\), of 10/);
  });
});

describe('resuming a store after a gap', () => {
  it('the banner says how the gap is closed, the generator skips it, --duration counts from now', async () => {
    const store = path.join(dir, 'gap-store');
    const args = [
      'run',
      'examples/wordcount.ts',
      '--interval',
      '100ms',
      '--duration',
      '300ms',
      '--workers',
      '0',
      '--store',
      store,
    ];
    expect(sluice(...args).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1500)); // the pause: at least 15 batches of 100 ms
    const before = Date.now();
    const r = sluice(...args, '--json');
    expect(r.code, r.stderr).toBe(0);
    const start = JSON.parse(r.stderr.split('\n').find((l) => l.includes('"type":"start"'))!) as {
      resumedAfterMs: number;
    };
    const batches = r.stderr
      .split('\n')
      .filter((l) => l.includes('"type":"batch"'))
      .map((l) => JSON.parse(l) as { batchTimeMs: number; input: { records: number } });
    // batches of the pause, while nothing ran: empty
    const inGap = batches.filter((b) => b.batchTimeMs <= before - 100);
    expect(inGap.length).toBeGreaterThanOrEqual(10);
    for (const b of inGap) expect(b.input.records, `batch ${b.batchTimeMs}`).toBe(0);
    // --duration 300ms from now: the run went on to batches at least 200 ms after it started
    expect(batches.at(-1)!.batchTimeMs).toBeGreaterThanOrEqual(before + 200);
    expect(batches[0]!.batchTimeMs).toBe(start.resumedAfterMs + 100);
    const banner = sluice(
      'run',
      'examples/wordcount.ts',
      '--interval',
      '100ms',
      '--batches',
      '1',
      '--workers',
      '0',
      '--store',
      store,
    );
    expect(banner.stderr).toMatch(
      /gap: the last batch committed .* ago; its \d+ batches .* run first as a backlog/,
    );
  });
});

describe('setup errors are usage errors (exit 2) that say what is wrong', () => {
  it('a store path that is a file, or under a file', () => {
    const file = path.join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const r = sluice('run', 'examples/wordcount.ts', '--batches', '1', '--store', file);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`invalid option '--store': ${file} is a file, not a directory`);
    expect(r.stderr).not.toContain('bug in sluice');
    const under = sluice(
      'run',
      'examples/wordcount.ts',
      '--batches',
      '1',
      '--store',
      path.join(file, 'store'),
    );
    expect(under.code, under.stderr).toBe(2);
    expect(under.stderr).toContain('a part of the path is a file, not a directory');
  });

  it('a file source pointed at a directory or a missing file', () => {
    const store = path.join(dir, 'src-store');
    const r = sluice('run', 'examples/wordcount.ts', '--source', `file:${dir}`, '--store', store);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`invalid option '--source': file source: ${dir} is a directory`);
    const missing = sluice(
      'run',
      'examples/wordcount.ts',
      '--source',
      `file:${dir}/nope.txt`,
      '--store',
      store,
    );
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr).toContain('does not exist');
  });
});

describe('small things', () => {
  it('--interval has a floor, with the reason', () => {
    const r = sluice(
      'run',
      'examples/wordcount.ts',
      '--interval',
      '1ms',
      '--batches',
      '1',
      '--store',
      path.join(dir, 'i'),
    );
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /invalid option '--interval': 1 ms is below the floor of 50 ms: every batch has fixed work/,
    );
  });

  it('a syntax error in a .ts module outside a "type": "module" package is reported as such, with its .ts name', () => {
    const sub = path.join(dir, 'plain');
    mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, 'broken.ts'), 'export default function (ctx) {\n  const x: number = ;\n}\n');
    const r = sluice('run', path.join(sub, 'broken.ts'), '--batches', '1', '--store', path.join(dir, 'b'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('it has a syntax error: broken.ts:2:21: Unexpected ";"');
    expect(r.stderr).not.toContain('.mts');
  });
});
