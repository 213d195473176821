/**
 * Poison records: a value that makes a reduce, combine or state function throw, or that the codec
 * cannot store, is dead-lettered with its key, the operator and a readable reason, and the batch
 * commits without it; `onRecordError: 'fail'` fails the batch with a readable message instead.
 * Results are compared with the reference evaluator run on the input without the poison.
 * `sluice run --skip-batch` is checked end to end with the real command.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { catalog } from '../../shared/core/catalog.ts';
import {
  BatchFailedError,
  type BatchManifest,
  type DStream,
  type MemoryObjectStore,
  runPipeline,
  type StreamingContext,
} from '../../shared/index.ts';
import { DirectoryObjectStore } from '../../shared/local/directory-store.ts';
import { type RefStream, refRun } from '../reference/evaluator.ts';
import { unordered } from '../reference/keys.ts';

type KV = [string, number];

interface Letter {
  raw: string;
  reason: string;
  operator?: string;
  key?: string;
}

async function letters(store: MemoryObjectStore): Promise<Letter[]> {
  const out: Letter[] = [];
  for (const k of await store.list('deadletter/')) {
    const text = Buffer.from((await store.get(k))!).toString();
    for (const line of text.split('\n').filter(Boolean)) out.push(JSON.parse(line) as Letter);
  }
  return out;
}

/** Runs `build` on the engine (collecting each batch) and on the reference with `clean` input. */
async function both<V>(
  input: KV[][],
  clean: KV[][],
  build: (s: DStream<KV>) => DStream<V>,
  options: { onRecordError?: 'fail' } = {},
): Promise<{ engine: V[][]; reference: V[][]; manifests: BatchManifest[]; store: MemoryObjectStore }> {
  const engine: V[][] = [];
  const { store, manifests } = await runPipeline(
    (ctx: StreamingContext) => {
      build(ctx.inputStream<KV>()).foreachRDD(async (rdd) => {
        engine.push(await rdd.collect());
      });
    },
    { input: input },
    { partitions: 2, ...options },
  );
  const reference = refRun(clean, build as unknown as (s: RefStream<KV>) => RefStream<V>);
  return { engine, reference, manifests, store };
}

const sum = (a: number, b: number) => {
  if (b === 13) throw new RangeError('13 is unlucky');
  return a + b;
};

describe('poison records in reduce, combine and state functions', () => {
  it('reduceByKey: the value that throws is left out of its key, the other values still reduce', async () => {
    // contiguous blocks of 3: 13 is never the first value of its key in a block (it would be the
    // combiner then, and the value merged into it is the one left out)
    const input: KV[][] = [
      [
        ['a', 1],
        ['a', 13],
        ['a', 2],
        ['b', 5],
        ['a', 4],
        ['b', 13],
      ],
      [['a', 1]],
    ];
    const clean = input.map((b) => b.filter(([, v]) => v !== 13));
    const r = await both(input, clean, (s) => s.reduceByKey(sum));
    expect(unordered(r.engine)).toEqual(unordered(r.reference));
    expect(unordered(r.engine)).toEqual([
      [
        ['a', 7],
        ['b', 5],
      ],
      [['a', 1]],
    ]);
    expect(r.manifests.map((m) => m.deadLettered)).toEqual([2, 0]);
    const dl = await letters(r.store);
    expect(dl.map((d) => [d.key, d.operator, d.raw]).sort()).toEqual([
      ['a', 'reduceByKey', '13'],
      ['b', 'reduceByKey', '13'],
    ]);
    for (const d of dl) expect(d.reason).toBe('reduceByKey threw: RangeError: 13 is unlucky');
  });

  it('reduceByKey on the reduce side (merging partial results) and combineByKey leave out only what threw', async () => {
    const input: KV[][] = [
      [
        ['a', 1],
        ['bad', 0],
        ['a', 2],
        ['a', 3],
      ],
    ];
    // createCombiner throws for key 'bad': the key disappears, 'a' still combines
    const r = await both(input, [input[0]!.filter(([k]) => k !== 'bad')], (s) =>
      s.combineByKey<string, number, number[]>(
        (v) => {
          if (v === 0) throw new Error('zero');
          return [v];
        },
        (c, v) => [...c, v],
        (x, y) => [...x, ...y],
      ),
    );
    expect(r.engine[0]!.map(([k, c]) => [k, [...c].sort()])).toEqual([['a', [1, 2, 3]]]);
    expect(r.reference[0]!.map(([k, c]) => [k, [...c].sort()])).toEqual([['a', [1, 2, 3]]]);
    const dl = await letters(r.store);
    expect(dl).toHaveLength(1);
    expect(dl[0]).toMatchObject({ key: 'bad', operator: 'combineByKey', raw: '0' });
    expect(dl[0]!.reason).toBe('combineByKey (createCombiner) threw: Error: zero');

    // the partial sum of the second map task (2 + 3 = 5) makes the merge throw on the reduce side
    const partial = await both(input, input, (s) =>
      s
        .filter(([k]) => k === 'a')
        .reduceByKey((x, y) => {
          if (y === 5) throw new Error('five');
          return x + y;
        }),
    );
    expect(partial.engine).toEqual([[['a', 1]]]);
    const pl = await letters(partial.store);
    expect(pl).toHaveLength(1);
    expect(pl[0]).toMatchObject({ key: 'a', operator: 'reduceByKey', raw: '5' });
    expect(pl[0]!.reason).toContain('a partial result of one map task, left out');
  });

  it('updateStateByKey: a key whose function throws keeps its state; other keys update', async () => {
    const input: KV[][] = [
      [
        ['a', 1],
        ['x', 2],
      ],
      [
        ['a', 1],
        ['x', 13],
      ],
      [['x', 1]],
    ];
    const clean = input.map((b) => b.filter(([, v]) => v !== 13));
    const r = await both(input, clean, (s) =>
      s.updateStateByKey<string, number, number>((vs, state, key) => {
        if (vs.includes(13)) throw new Error(`13 for ${key}`);
        return (state ?? 0) + vs.reduce((m, n) => m + n, 0);
      }),
    );
    expect(unordered(r.engine)).toEqual(unordered(r.reference));
    expect(unordered(r.engine)[1]).toEqual([
      ['a', 2],
      ['x', 2],
    ]);
    expect(unordered(r.engine)[2]).toEqual([
      ['a', 2],
      ['x', 3],
    ]);
    expect(r.manifests.map((m) => m.deadLettered)).toEqual([0, 1, 0]);
    const dl = await letters(r.store);
    expect(dl).toEqual([
      expect.objectContaining({
        key: 'x',
        operator: 'updateStateByKey',
        raw: '{"values":[13],"state":2}',
        reason: 'updateStateByKey threw: Error: 13 for x',
      }),
    ]);
  });

  it('reduceByKeyAndWindow with an inverse: a key whose reduce or inverse throws is dead-lettered and keeps its window value; the batch commits', async () => {
    // the throws happen only where windows combine (one value per key and batch: the per-batch
    // reduceByKey never calls the function): 60 + 50 passes 100 (reduce), 7 leaving (inverse)
    const add = (a: number, b: number) => {
      if (a + b > 100) throw new RangeError(`${a} + ${b} is over 100`);
      return a + b;
    };
    const sub = (a: number, b: number) => {
      if (b === 7) throw new Error('7 cannot leave');
      return a - b;
    };
    const input: KV[][] = [
      [
        ['a', 60],
        ['b', 7],
        ['c', 1],
      ],
      [
        ['a', 50],
        ['b', 1],
        ['c', 1],
      ],
      [['c', 1]],
    ];
    const engine: KV[][] = [];
    const { store, manifests } = await runPipeline(
      (ctx: StreamingContext) => {
        ctx
          .inputStream<KV>()
          .reduceByKeyAndWindow(add, { windowMs: 2000, inverse: sub })
          .foreachRDD(async (rdd) => {
            engine.push(await rdd.collect());
          });
      },
      { input },
      { partitions: 2 },
    );
    expect(manifests).toHaveLength(3);
    expect(unordered(engine)).toEqual([
      [
        ['a', 60],
        ['b', 7],
        ['c', 1],
      ],
      // a: 60 + 50 threw, the window keeps 60; b and c add up
      [
        ['a', 60],
        ['b', 8],
        ['c', 2],
      ],
      // a: 60 leaving is subtracted (60 - 60 = 0); b: 7 leaving threw, b keeps 8; c: 2 - 1 + 1
      [
        ['a', 0],
        ['b', 8],
        ['c', 2],
      ],
    ]);
    expect(manifests.map((m) => m.deadLettered)).toEqual([0, 1, 1]);
    const dl = await letters(store);
    expect(dl).toEqual([
      expect.objectContaining({
        key: 'a',
        operator: 'reduceByKeyAndWindow',
        raw: '{"window":60,"leaving":[],"entering":[50]}',
        reason: 'reduceByKeyAndWindow (reduce) threw: RangeError: 60 + 50 is over 100',
      }),
      expect.objectContaining({
        key: 'b',
        operator: 'reduceByKeyAndWindow',
        raw: '{"window":8,"leaving":[7],"entering":[]}',
        reason: 'reduceByKeyAndWindow (inverse) threw: Error: 7 cannot leave',
      }),
    ]);
  });

  it('mapWithState: the record that throws emits nothing and leaves the state as it was', async () => {
    const input: KV[][] = [
      [
        ['a', 1],
        ['a', 13],
        ['b', 2],
      ],
      [
        ['a', 3],
        ['b', 13],
      ],
    ];
    const clean = input.map((b) => b.filter(([, v]) => v !== 13));
    const r = await both(input, clean, (s) =>
      s
        .mapWithState<string, number, number, [string, number]>({
          fn: (key, value, state) => {
            const total = (state.getOption() ?? 0) + (value ?? 0);
            state.update(total);
            if (value === 13) throw new Error('thirteen');
            return [key, total];
          },
        })
        .stateSnapshots(),
    );
    expect(unordered(r.engine)).toEqual(unordered(r.reference));
    expect(unordered(r.engine)[1]).toEqual([
      ['a', 4],
      ['b', 2],
    ]);
    expect(r.manifests.map((m) => m.deadLettered)).toEqual([1, 1]);
    const dl = await letters(r.store);
    expect(dl.map((d) => [d.key, d.operator, d.raw, d.reason]).sort()).toEqual([
      ['a', 'mapWithState', '13', 'mapWithState threw: Error: thirteen'],
      ['b', 'mapWithState', '13', 'mapWithState threw: Error: thirteen'],
    ]);
  });

  it('onRecordError fail: the batch fails at once with a message naming operator, key and error', async () => {
    const run = both(
      [
        [
          ['a', 1],
          ['a', 13],
        ],
      ],
      [],
      (s) => s.reduceByKey(sum),
      { onRecordError: 'fail' },
    );
    await expect(run).rejects.toThrow(BatchFailedError);
    await expect(run).rejects.toThrow(
      /reduceByKey failed on key a, record 13: reduceByKey threw: RangeError: 13 is unlucky\. The batch stops because onRecordError is 'fail'.*\(not retryable\)|\(not retryable\).*reduceByKey failed on key a, record 13/,
    );
  });
});

describe('values the codec cannot store', () => {
  class Point {
    constructor(readonly x: number) {}
  }
  const cycle = (): unknown => {
    const o: { a: { b: unknown } } = { a: { b: null } };
    o.a.b = o;
    return o;
  };
  const emit = (s: string): [string, unknown] => {
    switch (s) {
      case 'sym':
        return ['s', { x: Symbol('bad') }];
      case 'cycle':
        return ['c', cycle()];
      case 'point':
        return ['p', new Point(1)]; // the codec refuses a class instance (docs/API.md, "Records")
      case 'big':
        return ['g', 2n ** 70n]; // stored as it is (msgpackr moreTypes): not poison
      default:
        return [s, 1];
    }
  };
  const byKey = (a: unknown[], b: unknown[]) => String(a[0]).localeCompare(String(b[0]));

  it('are dead-lettered with key, operator and reason; the other records are counted exactly', async () => {
    // stored as the map's output (read back on the driver)
    const seen: unknown[][][] = [];
    const stored = await runPipeline(
      (ctx) => {
        ctx
          .inputStream<string>()
          .map(emit)
          .foreachRDD(async (rdd) => {
            seen.push((await rdd.collect()) as unknown[][]);
          });
      },
      { input: [['a', 'sym', 'cycle', 'b', 'big', 'point', 'c']] },
      { partitions: 2 },
    );
    expect(seen.map((rs) => [...rs].sort(byKey))).toEqual([
      [
        ['a', 1],
        ['b', 1],
        ['c', 1],
        ['g', 2n ** 70n],
      ],
    ]);
    expect(stored.manifests[0]!.deadLettered).toBe(3);
    expect(stored.manifests[0]!.outputs[0]!.records).toBe(4);
    const dl = await letters(stored.store);
    expect(dl.map((d) => `${d.operator} ${d.key}: ${d.reason}`).sort()).toEqual([
      'map c: value cannot be stored: a cycle at .a.b',
      expect.stringMatching(
        /^map p: value cannot be stored: UnsupportedRecordError: a record holds an instance of class Point, which would come back .* convert it to a plain object first$/,
      ),
      'map s: value cannot be stored: a Symbol at .x',
    ]);
    expect(dl.find((d) => d.key === 'c')!.raw).toBe('{"a":{"b":"[Circular]"}}');
    expect(dl.find((d) => d.key === 'p')!.raw).toBe('{"x":1}');

    // in a shuffle (grouped on the map side): the key's group is set aside
    const shuffled = await runPipeline(
      (ctx) => {
        ctx.inputStream<string>().map(emit).groupByKey().saveAsJsonLines('groups');
      },
      { input: [['a', 'sym', 'cycle', 'b', 'big', 'point', 'c']] },
      { partitions: 2 },
    );
    const m = shuffled.manifests[0]!;
    expect(m.deadLettered).toBe(4); // the BigInt passes the shuffle but JSON output has no BigInt
    expect(m.outputs[0]!.records).toBe(3);
    const sl = await letters(shuffled.store);
    expect(sl.map((d) => `${d.operator} ${d.key}: ${d.reason}`).sort()).toEqual([
      'groupByKey c: value cannot be stored: a cycle at [0].a.b',
      'groupByKey g: value cannot be stored: a BigInt (2^70) at [0]: JSON has no BigInt',
      expect.stringMatching(
        /^groupByKey p: value cannot be stored: UnsupportedRecordError: a record holds an instance of class Point/,
      ),
      'groupByKey s: value cannot be stored: a Symbol at [0].x',
    ]);
  });

  it('as JSON output: a BigInt is dead-lettered with the reason instead of failing the save', async () => {
    const { store, manifests } = await runPipeline(
      (ctx) => {
        ctx
          .inputStream<number>()
          .map((n): [string, unknown] => [`k${n}`, n === 2 ? 5n : n])
          .saveAsJsonLines('out');
      },
      { input: [[1, 2, 3]] },
      { partitions: 1 },
    );
    expect(manifests[0]!.deadLettered).toBe(1);
    const files = (await store.list('outputs/')).filter((k) => k.endsWith('.jsonl'));
    const text = (
      await Promise.all(files.map(async (k) => Buffer.from((await store.get(k))!).toString()))
    ).join('');
    expect(text).toBe('["k1",1]\n["k3",3]\n');
    const dl = await letters(store);
    expect(dl).toEqual([
      expect.objectContaining({
        key: 'k2',
        operator: 'map',
        reason: 'value cannot be stored: a BigInt (5) at the top level: JSON has no BigInt',
      }),
    ]);
  });

  it('onRecordError fail: the batch fails with a readable reason, not the codec text', async () => {
    const run = runPipeline(
      (ctx) => {
        ctx.inputStream<string>().map(emit).groupByKey().print();
      },
      { input: [['a', 'sym']] },
      { onRecordError: 'fail' },
    );
    await expect(run).rejects.toThrow(
      /groupByKey failed on key s, record .*: value cannot be stored: a Symbol at \[0\]\.x\. The batch stops/,
    );
  });
});

describe('attempt numbers in messages', () => {
  it('count every run of the task from 1, and the limit counts failures', async () => {
    const run = runPipeline(
      (ctx) => {
        ctx
          .inputStream<number>()
          .mapPartitions(() => {
            throw new Error('always');
          })
          .print();
      },
      { input: [[1, 2]] },
      { partitions: 1 },
    );
    await expect(run).rejects.toThrow(/\(attempt 4\) failed 4 times \(maxTaskAttempts 4\): always/);
  });
});

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/sluice.js');

function sluice(cwd: string, ...args: string[]) {
  const env = { ...process.env };
  delete env.SLUICE_DEBUG;
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: 60_000, env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('sluice run --skip-batch', () => {
  it('commits a batch that cannot be isolated without its input, records it in the manifest, and goes on', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sluice-skip-'));
    try {
      writeFileSync(
        path.join(dir, 'p.mts'),
        `export const options = { batchIntervalMs: 200, partitions: 2 };
export default function p(ctx) {
  const counts = ctx
    .inputStream()
    .mapPartitions((lines) => {
      if (lines.includes('poison')) throw new Error('cannot handle poison');
      return lines.map((w) => [w, 1]);
    })
    .reduceByKey((a, b) => a + b);
  counts.updateStateByKey((vs, s) => (s ?? 0) + vs.length).saveAsJsonLines('totals');
}
`,
      );
      writeFileSync(path.join(dir, 'in.txt'), 'a\nb\npoison\na\n');
      const args = ['run', 'p.mts', '--source', 'file:in.txt', '--store', 'store', '--workers', '1'];
      const failed = sluice(dir, ...args);
      expect(failed.code).toBe(1);
      const t = Number(
        /Batch (\d+) failed: .*\(attempt 4\) failed 4 times.*cannot handle poison/.exec(failed.stderr)?.[1],
      );
      expect(t).toBeGreaterThan(0);

      // a batch that is not waiting to be re-run is refused, naming the option
      const wrong = sluice(dir, ...args, '--skip-batch', String(t + 1));
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toContain('--skip-batch');
      expect(wrong.stderr).toContain(`the uncommitted batches are`);

      const skipped = sluice(dir, ...args, '--skip-batch', String(t), '--batches', '2');
      expect(skipped.stderr).toContain(`skipping batch ${t} (--skip-batch)`);
      expect(skipped.code).toBe(0);
      const store = path.join(dir, 'store');
      const manifestFile = readdirSync(path.join(store, 'manifests')).find(
        (f) => Number(f.slice(0, -5)) === t,
      )!;
      const manifest = JSON.parse(
        readFileSync(path.join(store, 'manifests', manifestFile), 'utf8'),
      ) as BatchManifest;
      expect(manifest.skipped?.records).toBe(4);
      expect(manifest.skipped?.reason).toContain('--skip-batch');
      // no outputs for the skipped batch; its input is still stored
      const outDir = path.join(store, 'outputs');
      const outputs = existsSync(outDir) ? readdirSync(outDir, { recursive: true }).map(String) : [];
      expect(outputs.some((o) => o.includes(`batch=${t}`))).toBe(false);
      // and the stream went on: a later batch committed (whether an empty state writes an
      // empty output directory depends on whether that batch took the idle fast path)
      const committed = await catalog.committed(new DirectoryObjectStore(store));
      expect(committed).toContain(t);
      expect(committed.some((c) => c > t)).toBe(true);
      expect(readdirSync(path.join(store, 'inputs')).some((d) => Number(d) === t)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
