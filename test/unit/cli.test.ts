/**
 * The `sluice` command end to end: spawns `node bin/sluice.js` as a user would, runs a tiny
 * pipeline for three batches, then reads the store back with `status` and `lineage`; and checks
 * that user errors end as one line naming the option or module, with exit code 2 or 1.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/sluice.js');

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function sluice(...args: string[]): Result {
  const env = { ...process.env };
  delete env.SLUICE_DEBUG;
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 45_000,
    env,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// .mts: an ES module wherever it lives (os.tmpdir() has no package.json saying "type": "module")
const PIPELINE = `
export const options = { batchIntervalMs: 1000, partitions: 2 };
export default function words(ctx) {
  const counts = ctx
    .inputStream()
    .flatMap((line) => line.split(' ').filter((w) => w.length > 0))
    .map((w) => [w, 1])
    .reduceByKey((a, b) => a + b);
  counts.print(3);
  counts.saveAsJsonLines('counts');
}
`;

/** A progress row of `sluice run`: starts with the batch's time of day. */
const PROGRESS_ROW = /^\d\d:\d\d:\d\d\.\d{3}\s+[\d,]+\s+/;

describe('sluice CLI', () => {
  let dir: string;
  let pipeline: string;
  let store: string;
  let run: Result;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sluice-cli-'));
    pipeline = path.join(dir, 'words.mts');
    store = path.join(dir, 'store');
    writeFileSync(pipeline, PIPELINE);
    writeFileSync(path.join(dir, 'no-default.mts'), 'export const options = {};\n');
    run = sluice(
      'run',
      pipeline,
      '--interval',
      '200ms',
      '--batches',
      '3',
      '--rate',
      '500',
      '--workers',
      '1',
      '--store',
      store,
    );
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a pipeline for three batches with one progress row each and a summary', () => {
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(run.code).toBe(0);
    const rows = run.stderr.split('\n').filter((l) => PROGRESS_ROW.test(l));
    expect(rows).toHaveLength(3);
    expect(run.stderr).toContain('batch time');
    expect(run.stderr).toContain('interval 200 ms');
    expect(run.stderr).toMatch(/3 batches in .* \(--batches 3\)/);
    expect(run.stderr).toContain(`sluice status --store ${store}`);
    // print() output goes to stdout, progress to stderr
    expect(run.stdout).toContain('Time: ');
    expect(run.stdout).not.toContain('batch time');
  });

  it('status lists the three committed batches, as a table, a timeline and JSON', () => {
    const text = sluice('status', '--store', store);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('batches      3 committed');
    expect(text.stdout).toContain('interval     200 ms');
    expect(text.stdout).toMatch(/^timeline /m);
    const tableRows = text.stdout
      .split('\n')
      .filter((l) => /^\d\d:\d\d:\d\d\.\d{3}\s+[\d,]+\s+\d+\s+\d/.test(l));
    expect(tableRows).toHaveLength(3);

    const json = sluice('status', '--store', store, '--json');
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as {
      batchIntervalMs: number;
      batches: { input: { records: number } }[];
    };
    expect(status.batchIntervalMs).toBe(200);
    expect(status.batches).toHaveLength(3);
    expect(status.batches.reduce((n, b) => n + b.input.records, 0)).toBeGreaterThan(0);
  });

  it('status prints the cost per day, idle per day and per million events; --prices and memory flags change them', () => {
    const text = sluice('status', '--store', store);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^cost per day {6}\$[\d.]+ at the observed rate \([\d,]+ events\/s\): scheduler \$/m,
    );
    // idle: asleep (the default), and with alwaysOn beside it
    expect(text.stdout).toMatch(/^idle per day {6}\$[\d.]+ asleep \(the scheduler sleeps after idleAfter\)/m);
    expect(text.stdout).toMatch(/^ {18}\$[\d.]+ with alwaysOn \(empty batches all day/m);
    expect(text.stdout).toMatch(/^per million {7}\$[\d.]+ per million events at the observed rate/m);
    expect(text.stdout).toMatch(/cost basis .* us-east-1 prices of \d{4}-\d{2}-\d{2}/);

    type Cost = {
      observed: { s3PutListUsd: number; schedulerUsd: number; totalUsd: number };
      idle: { totalUsd: number };
      idleAsleep: { totalUsd: number };
      idleAlwaysOn: { totalUsd: number };
      perMillionEventsUsd: number;
    };
    const costOf = (...args: string[]) =>
      (JSON.parse(sluice('status', '--store', store, '--json', ...args).stdout) as { cost: Cost }).cost;
    const base = costOf();
    expect(base.observed.totalUsd).toBeGreaterThan(base.idleAlwaysOn.totalUsd * 0.5);
    expect(base.idle.totalUsd).toBe(base.idleAsleep.totalUsd);
    expect(base.idleAsleep.totalUsd).toBeLessThan(0.05);
    expect(base.idleAlwaysOn.totalUsd).toBeGreaterThan(base.idleAsleep.totalUsd);
    expect(base.perMillionEventsUsd).toBeGreaterThan(0);

    // a price table with S3 PUT/LIST at twice the price doubles that component only
    const table = JSON.parse(readFileSync(path.join(root, 'cli/prices.json'), 'utf8')) as {
      region: string;
      s3: { putCopyPostListPer1000: number };
    };
    table.region = 'eu-test-1';
    table.s3.putCopyPostListPer1000 *= 2;
    const pricesFile = path.join(dir, 'prices.json');
    writeFileSync(pricesFile, JSON.stringify(table));
    const doubled = costOf('--prices', pricesFile);
    expect(doubled.observed.s3PutListUsd).toBeCloseTo(2 * base.observed.s3PutListUsd, 9);
    expect(doubled.observed.schedulerUsd).toBeCloseTo(base.observed.schedulerUsd, 12);
    expect(sluice('status', '--store', store, '--prices', pricesFile).stdout).toContain(
      'eu-test-1 prices of',
    );
    // the scheduler at 2 GiB costs twice as much
    const bigger = costOf('--scheduler-memory', '2048');
    expect(bigger.observed.schedulerUsd).toBeCloseTo(2 * base.observed.schedulerUsd, 9);
  });

  it('status --prices with a bad file fails naming the option (exit 2)', () => {
    const missing = sluice('status', '--store', store, '--prices', path.join(dir, 'nope.json'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/invalid option '--prices': cannot read .*nope\.json/);
    const bad = path.join(dir, 'bad-prices.json');
    writeFileSync(bad, JSON.stringify({ region: 'us-east-1', date: '2026-01-01', lambda: {} }));
    const wrong = sluice('status', '--store', store, '--prices', bad);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/invalid option '--prices': .*'lambda.requestPerMillion' must be a number/);
    expect(wrong.stderr).not.toMatch(/^\s+at /m);
    const memory = sluice('status', '--store', store, '--partition-memory', '64');
    expect(memory.code).toBe(2);
    expect(memory.stderr).toContain("'--partition-memory'");
  });

  it('lineage prints the tree of a materialized partition, down to the input blocks', () => {
    const status = JSON.parse(sluice('status', '--store', store, '--json').stdout) as {
      batches: {
        batchTimeMs: number;
        input: { records: number };
        outputs: { name: string; kind: string }[];
      }[];
    };
    // the last batch with input that materialized an RDD (a catch-up batch closed before the
    // generator's first cut may be empty); its shuffle data is cleaned up by now (at the driver's
    // stop), its lineage is in the manifest: the tree still reaches the input blocks
    const last = status.batches
      .filter((b) => b.input.records > 0 && b.outputs.some((o) => o.kind === 'rdd'))
      .at(-1)!;
    expect(last).toBeDefined();
    const rdd = last.outputs.find((o) => o.kind === 'rdd')!;

    const tree = sluice('lineage', rdd.name, String(last.batchTimeMs), '0', '--store', store);
    expect(tree.stderr).toBe('');
    expect(tree.code).toBe(0);
    const lines = tree.stdout.split('\n');
    expect(lines[0]).toMatch(
      new RegExp(`^${rdd.name}\\[0\\] @\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  reduceByKey · \\d+ records`),
    );
    expect(tree.stdout).toContain('operators: shuffleRead(');
    expect(tree.stdout).toMatch(/├── shuffle:\S+\[0\]/);
    expect(tree.stdout).toContain('input block (leaf): inputs/');

    const dot = sluice('lineage', rdd.name, 'last', '1', '--store', store, '--dot');
    expect(dot.code).toBe(0);
    expect(dot.stdout).toMatch(/^digraph lineage \{/);
    expect(dot.stdout).toContain(' -> ');

    const missing = sluice('lineage', 'nope', String(last.batchTimeMs), '0', '--store', store);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no lineage record for nope');
    expect(missing.stderr).toContain(`rdd      ${rdd.name}`);
  });

  it('a bad option value exits 2 and names the option', () => {
    const partitions = sluice('run', pipeline, '--partitions', '-1', '--store', store);
    expect(partitions.code).toBe(2);
    expect(partitions.stderr.trim()).toBe(
      "sluice: invalid option '--partitions': must be at least 1 (partitions), got -1",
    );

    const interval = sluice('run', pipeline, '--interval', 'soon');
    expect(interval.code).toBe(2);
    expect(interval.stderr).toContain("sluice: invalid option '--interval'");

    const source = sluice('run', pipeline, '--source', 'kafka');
    expect(source.code).toBe(2);
    expect(source.stderr).toContain("invalid option '--source': unknown source 'kafka'");
  });

  it('a pipeline module that does not exist or has no default export exits 1 and names it', () => {
    const absent = path.join(dir, 'absent.ts');
    const missing = sluice('run', absent, '--store', store);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(absent);
    expect(missing.stderr).toContain('does not exist');
    expect(missing.stderr).not.toMatch(/^\s+at /m);

    const noDefault = path.join(dir, 'no-default.mts');
    const bad = sluice('run', noDefault, '--store', path.join(dir, 'store2'), '--batches', '1');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(noDefault);
    expect(bad.stderr).toContain('default-export a function');
    expect(bad.stderr).not.toMatch(/^\s+at /m);
  });
});
