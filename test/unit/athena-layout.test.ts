/**
 * Results ready to query: saved outputs land under Hive-style partitions
 * (outputs/<name>/dt=YYYY-MM-DD/hr=HH/batch=<t>/part-NNNNN.<ext>, UTC), their lineage under
 * lineage/, and Parquet outputs are read back by an independent reader: DuckDB from PyPI, in
 * .venv/readers (installed by test/readers/setup.sh, which this test runs when it is missing).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDataKey, outputPartsOf } from '../../cli/lineage.ts';
import { layout, outputKey, parseOutputKey } from '../../shared/core/layout.ts';
import { readLineage } from '../../shared/core/lineage-store.ts';
import { type MemoryObjectStore, runPipeline, type StreamingContext } from '../../shared/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PYTHON = path.join(ROOT, '.venv/readers/bin/python');
const HOUR = 3_600_000;
const INTERVAL = 12 * HOUR; // batches at 1970-01-01 12:00, 1970-01-02 00:00 and 12:00 UTC

interface Click {
  user: string;
  page: string;
  ms: number;
  at?: Date;
  tags?: string[];
  ok?: boolean;
}

const BATCHES: Click[][] = [
  [
    { user: 'ann', page: '/a', ms: 12, at: new Date(Date.UTC(2026, 0, 1)), tags: ['x'], ok: true },
    { user: 'bob', page: '/b', ms: 7.5 },
  ],
  [{ user: 'cy', page: '/a', ms: 3, ok: false }],
  [
    { user: 'ann', page: '/c', ms: 1 },
    { user: 'dee', page: '/a', ms: 40 },
  ],
];

function pipeline(ctx: StreamingContext): void {
  const clicks = ctx.inputStream<Click>('clicks');
  clicks.saveAsParquet('clicks'); // schema from each partition's records
  clicks
    .map((c) => ({ user: c.user, page: c.page }))
    .saveAsParquet('visits', { schema: { user: 'string', page: 'string', n: 'bigint' } });
  clicks
    .map((c) => [c.page, 1] as [string, number])
    .reduceByKey((a, b) => a + b)
    .map(([page, n]) => ({ page, n }))
    .saveAsJsonLines('pages');
}

/** DuckDB's answer to `sql` over the store written out under `dir`, as JSON rows. */
function duckdb(dir: string, sql: string): Record<string, unknown>[] {
  const script = `
import duckdb, json, sys, datetime
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
cur = con.execute(sys.argv[1])
cols = [d[0] for d in cur.description]
def plain(v):
    if isinstance(v, (datetime.datetime, datetime.date)): return v.isoformat()
    return v
print(json.dumps([{c: plain(v) for c, v in zip(cols, row)} for row in cur.fetchall()]))
`;
  const out = execFileSync(PYTHON, ['-c', script, sql], { cwd: dir, encoding: 'utf8' });
  return JSON.parse(out) as Record<string, unknown>[];
}

describe('saved outputs are ready to query (Hive layout, Parquet, DuckDB)', () => {
  let dir: string;
  let store: MemoryObjectStore;

  beforeAll(async () => {
    execFileSync('bash', [path.join(ROOT, 'test/readers/setup.sh')], { stdio: 'inherit' });
    const run = await runPipeline(
      pipeline,
      { clicks: BATCHES },
      { batchIntervalMs: INTERVAL, partitions: 2 },
    );
    store = run.store;
    dir = mkdtempSync(path.join(ROOT, 'test/.tmp-athena-'));
    for (const key of await store.list('')) {
      mkdirSync(path.dirname(path.join(dir, key)), { recursive: true });
      writeFileSync(path.join(dir, key), (await store.get(key))!);
    }
  }, 180_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes parts under outputs/<name>/dt=/hr=/batch=<t>/ in UTC, a _SUCCESS per batch, lineage in the manifest', async () => {
    const keys = await store.list('outputs/');
    expect(keys.filter((k) => k.endsWith('.lineage.json'))).toEqual([]);
    // issue 11: a part costs one PUT; its lineage is committed in the batch's manifest
    expect(await store.list('lineage/')).toEqual([]);
    const times = [INTERVAL, 2 * INTERVAL, 3 * INTERVAL];
    expect(times.map((t) => outputKey('clicks', t, 'x'))).toEqual([
      'outputs/clicks/dt=1970-01-01/hr=12/batch=43200000/x',
      'outputs/clicks/dt=1970-01-02/hr=00/batch=86400000/x',
      'outputs/clicks/dt=1970-01-02/hr=12/batch=129600000/x',
    ]);
    for (const name of ['clicks', 'visits', 'pages']) {
      for (const t of times) {
        expect(keys).toContain(layout.outputSuccess(name, t));
        const ext = name === 'pages' ? '.jsonl' : '.parquet';
        for (const p of [0, 1]) {
          const part = layout.output(name, t, p, ext);
          // batch 2 has one click: one partition of 'clicks' is empty and, without a schema, has no file
          if (name !== 'clicks' || t !== 2 * INTERVAL) expect(keys).toContain(part);
          const lineage = await readLineage(store, part);
          expect(lineage).toMatchObject({ key: part, partition: p, batchTimeMs: t });
          expect(parseOutputKey(part)).toEqual({
            name,
            batchTimeMs: t,
            file: `part-0000${p}${ext}`,
            partition: p,
          });
        }
      }
    }
  });

  it('sluice lineage and the UI find a saved output part by the output name, through the manifest', async () => {
    const t = 3 * INTERVAL;
    expect(await findDataKey(store, 'pages', t, 1)).toBe(layout.output('pages', t, 1, '.jsonl'));
    expect(await findDataKey(store, 'pages', t, 7)).toBeUndefined();
    expect([...(await outputPartsOf(store, t))]).toEqual([
      ['clicks', [0, 1]],
      ['visits', [0, 1]],
      ['pages', [0, 1]],
    ]);
    expect(layout.lineageOf(layout.output('pages', t, 1, '.jsonl'))).toBe(
      'lineage/outputs/pages/dt=1970-01-02/hr=12/batch=129600000/part-00001.jsonl.lineage.json',
    );
  });

  it('DuckDB reads the Parquet parts back through the Hive partitions, with every row and its types', () => {
    const rows = duckdb(
      dir,
      `SELECT dt::VARCHAR AS dt, hr::INTEGER AS hr, batch, "user", page, ms, "at", tags, ok
       FROM read_parquet('outputs/clicks/*/*/*/*.parquet', hive_partitioning = true, union_by_name = true)
       ORDER BY batch, "user", page`,
    );
    expect(rows).toEqual([
      {
        dt: '1970-01-01',
        hr: 12,
        batch: 43200000,
        user: 'ann',
        page: '/a',
        ms: 12,
        at: '2026-01-01T00:00:00',
        tags: '["x"]',
        ok: true,
      },
      {
        dt: '1970-01-01',
        hr: 12,
        batch: 43200000,
        user: 'bob',
        page: '/b',
        ms: 7.5,
        at: null,
        tags: null,
        ok: null,
      },
      {
        dt: '1970-01-02',
        hr: 0,
        batch: 86400000,
        user: 'cy',
        page: '/a',
        ms: 3,
        at: null,
        tags: null,
        ok: false,
      },
      {
        dt: '1970-01-02',
        hr: 12,
        batch: 129600000,
        user: 'ann',
        page: '/c',
        ms: 1,
        at: null,
        tags: null,
        ok: null,
      },
      {
        dt: '1970-01-02',
        hr: 12,
        batch: 129600000,
        user: 'dee',
        page: '/a',
        ms: 40,
        at: null,
        tags: null,
        ok: null,
      },
    ]);
  });

  it('a declared schema gives every part file the same column types, also an empty part', () => {
    const types = duckdb(
      dir,
      `SELECT DISTINCT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('outputs/visits/*/*/*/*.parquet', hive_partitioning = false))`,
    );
    expect(Object.fromEntries(types.map((r) => [r.column_name, r.column_type]))).toEqual({
      user: 'VARCHAR',
      page: 'VARCHAR',
      n: 'BIGINT',
    });
    const count = duckdb(
      dir,
      `SELECT count(*) AS n, count(n) AS with_n FROM read_parquet('outputs/visits/dt=1970-01-02/*/*/*.parquet', hive_partitioning = true)`,
    );
    expect(count).toEqual([{ n: 3, with_n: 0 }]);
  });

  it('the JSON-lines outputs are queryable through the layout with read_json_auto(hive_partitioning)', () => {
    const rows = duckdb(
      dir,
      `SELECT page, sum(n)::INTEGER AS n, count(DISTINCT batch)::INTEGER AS batches
       FROM read_json_auto('outputs/pages/*/*/*/*.jsonl', hive_partitioning = true)
       WHERE dt = '1970-01-02'
       GROUP BY page ORDER BY page`,
    );
    expect(rows).toEqual([
      { page: '/a', n: 2, batches: 2 },
      { page: '/c', n: 1, batches: 1 },
    ]);
  });

  it('records that do not fit the schema are dead letters naming the field; the rest are written', async () => {
    const { store: s, manifests } = await runPipeline(
      (ctx) => {
        ctx.inputStream<unknown>('in').saveAsParquet('strict', { schema: { id: 'bigint', name: 'string' } });
        ctx.inputStream<unknown>('in2').saveAsParquet('loose');
      },
      {
        in: [[{ id: 1, name: 'a' }, { id: 'two', name: 'b' }, { id: 3, extra: true }, 4, { id: 2.5 }]],
        in2: [[{ v: 1 }, { v: 'x' }]],
      },
      { partitions: 1 },
    );
    expect(manifests[0]!.deadLettered).toBe(5);
    const letters: { reason: string }[] = [];
    for (const key of await s.list('deadletter/')) {
      const text = Buffer.from((await s.get(key))!).toString('utf8');
      for (const line of text.split('\n')) if (line) letters.push(JSON.parse(line) as { reason: string });
    }
    const reasons = letters.map((l) => l.reason).sort();
    expect(reasons).toHaveLength(5);
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringContaining("field 'extra' is not in the declared schema (id, name)"),
        expect.stringContaining(
          "field 'id' is a fraction (2.5), but the column is bigint in the declared schema",
        ),
        expect.stringContaining(
          `field 'id' is a string ("two"), but the column is bigint in the declared schema`,
        ),
        expect.stringContaining(`field 'v' is a string ("x"), but the column is bigint`),
        expect.stringContaining('a Parquet row must be an object whose fields are the columns, not a number'),
      ]),
    );
    const strict = `${dir}/strict`;
    mkdirSync(strict, { recursive: true });
    const part = layout.output('strict', 1000, 0, '.parquet');
    writeFileSync(path.join(strict, 'p.parquet'), (await s.get(part))!);
    expect(duckdb(strict, `SELECT id, name FROM 'p.parquet'`)).toEqual([{ id: 1, name: 'a' }]);
  });
});
