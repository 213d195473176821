/**
 * Per-batch DStream operations on the engine (runBatches / runBatches2), compared with the reference
 * evaluator, plus hand-written expectations. Windows are in windows.test.ts, state in state.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { runBatches, runBatches2, StreamingContext } from '../../shared/index.ts';
import { expectSame, expectSame2 } from '../reference/harness.ts';
import { sortCanonical, unordered, unorderedCogroups } from '../reference/keys.ts';

const add = (a: number, b: number) => a + b;
const PARTITIONS = [1, 2, 3];

const numbers: number[][] = [[1, 2, 3, 4, 5], [], [6, 7], [8, 9, 10, 11, 12, 13, 14], [15]];
const lines: string[][] = [
  ['the quick brown fox', 'jumps over', 'the lazy dog'],
  [],
  ['the end', 'the the'],
  ['fox'],
];
const pairs: [string, number][][] = [
  [
    ['a', 1],
    ['b', 2],
    ['a', 3],
    ['c', 4],
    ['b', 5],
  ],
  [],
  [
    ['c', 1],
    ['c', 2],
  ],
  [
    ['a', 7],
    ['d', 0],
    ['a', 1],
    ['b', 1],
  ],
];
const others: [string, string][][] = [
  [
    ['a', 'x'],
    ['z', 'y'],
    ['a', 'w'],
  ],
  [['b', 'q']],
  [],
  [
    ['d', 'd1'],
    ['b', 'b1'],
    ['e', 'e1'],
  ],
];

describe('hand-written expectations', () => {
  it('wordcount over 3 batches', async () => {
    const out = await runBatches(
      [['a b', 'b c'], ['a a'], []],
      (s) =>
        s
          .flatMap((l) => l.split(' '))
          .map((w): [string, number] => [w, 1])
          .reduceByKey(add),
      { partitions: 2 },
    );
    expect(unordered(out)).toEqual([
      [
        ['a', 1],
        ['b', 2],
        ['c', 1],
      ],
      [['a', 2]],
      [],
    ]);
  });

  it('count gives one element per batch (0 for an empty batch); reduce gives none', async () => {
    expect(await runBatches([[1, 2, 3], [], [4]], (s) => s.count(), { partitions: 2 })).toEqual([
      [3],
      [0],
      [1],
    ]);
    expect(await runBatches([[1, 2, 3], [], [4]], (s) => s.reduce(add), { partitions: 2 })).toEqual([
      [6],
      [],
      [4],
    ]);
  });

  it('numBatches runs empty batches after the input', async () => {
    expect(await runBatches([[1, 2]], (s) => s.count(), { numBatches: 3 })).toEqual([[2], [0], [0]]);
    expect(await runBatches([[1, 2]], (s) => s.map((x) => x + 1), { numBatches: 3 })).toEqual([
      [2, 3],
      [],
      [],
    ]);
  });

  it('a non-default batch interval is seen by transform', async () => {
    expect(
      await runBatches([[1], [2], []], (s) => s.transform((rdd, t) => rdd.map((x) => [x, t])), {
        batchIntervalMs: 250,
      }),
    ).toEqual([[[1, 250]], [[2, 500]], []]);
  });

  it('joins: a missing side is undefined', async () => {
    const a: [string, number][][] = [
      [
        ['k', 1],
        ['k', 2],
        ['j', 3],
      ],
    ];
    const b: [string, string][][] = [
      [
        ['k', 'x'],
        ['m', 'y'],
      ],
    ];
    expect(unordered(await runBatches2(a, b, (x, y) => x.join(y)))).toEqual([
      [
        ['k', [1, 'x']],
        ['k', [2, 'x']],
      ],
    ]);
    expect(unordered(await runBatches2(a, b, (x, y) => x.leftOuterJoin(y)))).toEqual([
      [
        ['j', [3, undefined]],
        ['k', [1, 'x']],
        ['k', [2, 'x']],
      ],
    ]);
    expect(unordered(await runBatches2(a, b, (x, y) => x.rightOuterJoin(y)))).toEqual([
      [
        ['k', [1, 'x']],
        ['k', [2, 'x']],
        ['m', [undefined, 'y']],
      ],
    ]);
    expect(unordered(await runBatches2(a, b, (x, y) => x.fullOuterJoin(y)))).toEqual([
      [
        ['j', [3, undefined]],
        ['k', [1, 'x']],
        ['k', [2, 'x']],
        ['m', [undefined, 'y']],
      ],
    ]);
    expect(unorderedCogroups(await runBatches2(a, b, (x, y) => x.cogroup(y)))).toEqual([
      [
        ['j', [[3], []]],
        ['k', [[1, 2], ['x']]],
        ['m', [[], ['y']]],
      ],
    ]);
  });

  it('keys are compared by value: arrays, and objects whatever their property order', async () => {
    const input: [unknown, number][][] = [
      [
        [{ a: 1, b: 'x' }, 1],
        [{ b: 'x', a: 1 }, 2],
        [[1, 'a'], 4],
        [[1, 'a'], 8],
        [1, 16],
        ['1', 32],
        [true, 64],
      ],
    ];
    const out = await runBatches(input, (s) => s.reduceByKey(add, 3), { partitions: 3 });
    expect(unordered(out)).toEqual(
      unordered([
        [
          [{ a: 1, b: 'x' }, 3],
          [[1, 'a'], 12],
          [1, 16],
          ['1', 32],
          [true, 64],
        ],
      ]),
    );
  });
});

describe('outputs, RDD actions and construction checks', () => {
  it('foreachRDD sees every batch once, in time order, and collect() reads it', async () => {
    const seen: [number, number[]][] = [];
    await runBatches([[1, 2], [], [3]], (s) => {
      s.foreachRDD(async (rdd, t) => {
        seen.push([t, await rdd.collect()]);
      });
      return s;
    });
    expect(seen).toEqual([
      [1000, [1, 2]],
      [2000, []],
      [3000, [3]],
    ]);
  });

  it('the RDD given to foreachRDD offers count() (api.md)', async () => {
    const counts: unknown[] = [];
    await runBatches(
      [[1, 2, 3], [], [4]],
      (s) => {
        s.foreachRDD(async (rdd) => {
          const count = (rdd as unknown as { count?: () => Promise<number> | number }).count;
          counts.push(typeof count === 'function' ? await count.call(rdd) : 'no count()');
        });
        return s;
      },
      { partitions: 2 },
    );
    expect(counts).toEqual([3, 0, 1]);
  });

  it('numBatches smaller than the input runs only that many batches', async () => {
    expect(await runBatches([[1], [2], [3]], (s) => s.count(), { numBatches: 2 })).toEqual([[1], [1]]);
  });

  it('a third input from ctx.queueStream', () =>
    expectSame(numbers, (s, ctx) => s.union(ctx.queueStream<number>([[-1], [], [-2, -3]])), {
      compare: 'ordered',
    }));

  it('binary operations on streams with different slides throw', () => {
    const ctx = new StreamingContext({ batchIntervalMs: 1000 });
    const a = ctx.queueStream<[string, number]>([]);
    const b = ctx.queueStream<[string, number]>([]).window(2000, 2000);
    expect(() => a.union(b)).toThrow(Error);
    expect(() => a.join(b)).toThrow(Error);
    expect(() => a.transformWith(b, (x) => x)).toThrow(Error);
  });

  it('zero or negative partitions are refused with an Error', async () => {
    const input: [string, number][][] = [[['a', 1]]];
    await expect((async () => runBatches(input, (s) => s.repartition(0)))()).rejects.toThrow(/0/);
    await expect((async () => runBatches(input, (s) => s.reduceByKey(add, 0)))()).rejects.toThrow(/0/);
    await expect((async () => runBatches(input, (s) => s.groupByKey(-1)))()).rejects.toThrow(/-1/);
  });
});

describe('glom and partitioning (partition-dependent: explicit expectations)', () => {
  it('queueStream splits each batch into `partitions` contiguous slices', async () => {
    const out = await runBatches(
      [
        [1, 2, 3, 4, 5, 6],
        [7, 8, 9],
      ],
      (s) => s.glom(),
      { partitions: 3 },
    );
    expect(out).toEqual([
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      [[7], [8], [9]],
    ]);
  });

  it('uneven batches: contiguous slices whose sizes differ by at most one', async () => {
    for (const [n, parts] of [
      [5, 2],
      [7, 3],
      [2, 4],
      [10, 4],
    ] as const) {
      const batch = Array.from({ length: n }, (_, i) => i);
      const [slices] = await runBatches([batch], (s) => s.glom(), { partitions: parts });
      expect(slices, `${n} records in ${parts} partitions`).toHaveLength(parts);
      expect(slices?.flat()).toEqual(batch);
      const sizes = (slices ?? []).map((x) => x.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });

  it('an empty batch has `partitions` empty partitions', async () => {
    expect(await runBatches([[]], (s) => s.glom(), { partitions: 3 })).toEqual([[[], [], []]]);
  });

  it('narrow operations keep partitioning', async () => {
    const out = await runBatches([[1, 2, 3, 4]], (s) => s.map((x) => x * 10).glom(), { partitions: 2 });
    expect(out).toEqual([
      [
        [10, 20],
        [30, 40],
      ],
    ]);
  });

  it('repartition(n) gives n partitions holding the same records', async () => {
    const input = [[1, 2, 3, 4, 5, 6, 7], [], [8]];
    const out = await runBatches(input, (s) => s.repartition(4).glom(), { partitions: 2 });
    expect(out).toHaveLength(3);
    out.forEach((slices, i) => {
      expect(slices).toHaveLength(4);
      expect(sortCanonical(slices.flat())).toEqual(sortCanonical(input[i] ?? []));
    });
  });

  it('reduceByKey(fn, n) gives n partitions, each key in exactly one', async () => {
    const out = await runBatches(pairs, (s) => s.reduceByKey(add, 5).glom(), { partitions: 2 });
    out.forEach((slices) => {
      expect(slices).toHaveLength(5);
      const keys = slices.flat().map(([k]) => k);
      expect(new Set(keys).size).toBe(keys.length);
    });
  });

  it('mapPartitions sees each partition once, with its index', async () => {
    const out = await runBatches([[1, 2, 3, 4, 5, 6]], (s) => s.mapPartitions((xs, p) => [[p, xs.length]]), {
      partitions: 3,
    });
    expect(out).toEqual([
      [
        [0, 2],
        [1, 2],
        [2, 2],
      ],
    ]);
  });
});

describe.each(PARTITIONS)('engine vs reference, %i partition(s)', (partitions) => {
  const opts = { partitions };

  describe('narrow operations keep order', () => {
    it('map', () => expectSame(numbers, (s) => s.map((x) => x * 2 + 1), { ...opts, compare: 'ordered' }));
    it('filter', () =>
      expectSame(numbers, (s) => s.filter((x) => x % 3 !== 0), { ...opts, compare: 'ordered' }));
    it('flatMap', () =>
      expectSame(lines, (s) => s.flatMap((l) => l.split(' ')), {
        ...opts,
        compare: 'ordered',
      }));
    it('flatMap to nothing and to generators', () =>
      expectSame(
        numbers,
        (s) =>
          s.flatMap(function* (x) {
            for (let i = 0; i < x % 3; i++) yield x * 100 + i;
          }),
        { ...opts, compare: 'ordered' },
      ));
    it('mapPartitions with an element-wise function', () =>
      expectSame(numbers, (s) => s.mapPartitions((xs) => xs.map((x) => -x)), {
        ...opts,
        compare: 'ordered',
      }));
    it('mapValues and flatMapValues', async () => {
      await expectSame(pairs, (s) => s.mapValues((v) => `v${v}`), { ...opts, compare: 'ordered' });
      await expectSame(pairs, (s) => s.flatMapValues((v) => Array.from({ length: v % 3 }, (_, i) => i)), {
        ...opts,
        compare: 'ordered',
      });
    });
    it('transform with narrow RDD operations', () =>
      expectSame(numbers, (s) => s.transform((rdd, t) => rdd.filter((x) => x % 2 === 1).map((x) => x + t)), {
        ...opts,
        compare: 'ordered',
      }));
    it('chained narrow operations', () =>
      expectSame(
        lines,
        (s) =>
          s
            .flatMap((l) => l.split(' '))
            .filter((w) => w.length > 3)
            .map((w) => w.toUpperCase()),
        { ...opts, compare: 'ordered' },
      ));
  });

  describe('per-batch aggregations', () => {
    it('count', () => expectSame(numbers, (s) => s.count(), { ...opts, compare: 'ordered' }));
    it('count of a filtered stream with empty batches', () =>
      expectSame(numbers, (s) => s.filter((x) => x > 7).count(), {
        ...opts,
        compare: 'ordered',
        numBatches: 7,
      }));
    it('reduce', () =>
      expectSame(numbers, (s) => s.reduce(add), { ...opts, compare: 'ordered', numBatches: 6 }));
    it('reduce with max', () =>
      expectSame(numbers, (s) => s.reduce((a, b) => Math.max(a, b)), { ...opts, compare: 'ordered' }));
    it('countByValue', () => expectSame(lines, (s) => s.flatMap((l) => l.split(' ')).countByValue(), opts));
    it('repartition keeps the records', () => expectSame(numbers, (s) => s.repartition(4), opts));
    it('repartition then narrow operations', () =>
      expectSame(numbers, (s) => s.repartition(2).map((x) => x % 4), opts));
  });

  describe('pair operations', () => {
    it('wordcount', () =>
      expectSame(
        lines,
        (s) =>
          s
            .flatMap((l) => l.split(' '))
            .map((w): [string, number] => [w, 1])
            .reduceByKey(add),
        opts,
      ));
    it('reduceByKey with explicit partitions', async () => {
      await expectSame(pairs, (s) => s.reduceByKey(add, 1), opts);
      await expectSame(pairs, (s) => s.reduceByKey(add, 4), opts);
    });
    it('reduceByKey then a second reduceByKey on a new key', () =>
      expectSame(
        pairs,
        (s) =>
          s
            .reduceByKey(add)
            .map(([k, v]): [number, number] => [v % 2, k.length])
            .reduceByKey(add),
        opts,
      ));
    it('groupByKey', () => expectSame(pairs, (s) => s.groupByKey(), { ...opts, compare: 'groups' }));
    it('groupByKey with explicit partitions', () =>
      expectSame(pairs, (s) => s.groupByKey(3), { ...opts, compare: 'groups' }));
    it('combineByKey (sum and count)', () =>
      expectSame(
        pairs,
        (s) =>
          s.combineByKey(
            (v): [number, number] => [v, 1],
            ([sum, n], v): [number, number] => [sum + v, n + 1],
            ([s1, n1], [s2, n2]): [number, number] => [s1 + s2, n1 + n2],
            2,
          ),
        opts,
      ));
    it('number and string keys are different keys', () =>
      expectSame(
        [
          [
            [1, 1],
            ['1', 1],
            [1, 1],
            [true, 1],
          ],
        ] as [unknown, number][][],
        (s) => s.reduceByKey(add),
        opts,
      ));
    it('transform with a shuffle inside', () =>
      expectSame(pairs, (s) => s.transform((rdd) => rdd.reduceByKey(add).mapValues((v) => v * 10)), opts));
    it('transform with distinct', () =>
      expectSame(numbers, (s) => s.transform((rdd) => rdd.map((x) => x % 4).distinct()), opts));
  });

  describe('two inputs', () => {
    const a = pairs;
    const b = others;
    it('union keeps both inputs, first then second', () =>
      expectSame2(numbers, [[100], [101, 102]], (x, y) => x.union(y), { ...opts, compare: 'ordered' }));
    it('union of three streams', () =>
      expectSame2(
        numbers,
        [[100], [101, 102]],
        (x, y) =>
          x.union(
            y,
            x.map((v) => v * 1000),
          ),
        { ...opts, compare: 'ordered' },
      ));
    it('join', () => expectSame2(a, b, (x, y) => x.join(y), opts));
    it('join with explicit partitions', () => expectSame2(a, b, (x, y) => x.join(y, 3), opts));
    it('leftOuterJoin', () => expectSame2(a, b, (x, y) => x.leftOuterJoin(y), opts));
    it('rightOuterJoin', () => expectSame2(a, b, (x, y) => x.rightOuterJoin(y), opts));
    it('fullOuterJoin', () => expectSame2(a, b, (x, y) => x.fullOuterJoin(y), opts));
    it('cogroup', () => expectSame2(a, b, (x, y) => x.cogroup(y), { ...opts, compare: 'cogroups' }));
    it('join after reduceByKey on both sides', () =>
      expectSame2(
        a,
        b,
        (x, y) => x.reduceByKey(add).join(y.mapValues((s) => s.length).reduceByKey(add)),
        opts,
      ));
    it('self join', () => expectSame2(a, b, (x) => x.join(x), opts));
    it('transformWith', () =>
      expectSame2(
        a,
        b,
        (x, y) =>
          x.transformWith(y, (r1, r2, t) => r1.leftOuterJoin(r2).map(([k, [v, w]]) => [k, v, w ?? '-', t])),
        opts,
      ));
    it('inputs of different lengths', () =>
      expectSame2([[['a', 1]]] as [string, number][][], others, (x, y) => x.fullOuterJoin(y), opts));
  });
});
