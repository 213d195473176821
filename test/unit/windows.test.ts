/**
 * Window operations on the engine, compared with the reference evaluator, plus hand-written
 * expectations (several from Spark's WindowOperationsSuite) and construction errors.
 */
import { describe, expect, it } from 'vitest';
import { type DStream, runBatches, StreamingContext } from '../../shared/index.ts';
import { type Build, expectSame } from '../reference/harness.ts';
import { unordered, unorderedGroups } from '../reference/keys.ts';

const add = (a: number, b: number) => a + b;
const sub = (a: number, b: number) => a - b;
const nonZero = ([, n]: readonly [unknown, number]) => n !== 0;

const six = [[0], [1], [2], [3], [4], [5]];

const bigInput: [string, number][][] = [
  'a',
  'a b',
  'a b c',
  'a b',
  'a',
  '',
  'a',
  'a b',
  'a b c',
  'a b',
  'a',
  '',
].map((spec) => (spec ? spec.split(' ').map((k): [string, number] => [k, 1]) : []));

const counts = (spec: string): [string, number][] =>
  spec ? spec.split(' ').map((kv): [string, number] => [kv.slice(0, 1), Number(kv.slice(1))]) : [];

const bigReduceOutput = [
  'a1',
  'a2 b1',
  'a2 b2 c1',
  'a2 b2 c1',
  'a2 b1',
  'a1',
  'a1',
  'a2 b1',
  'a2 b2 c1',
  'a2 b2 c1',
  'a2 b1',
  'a1',
].map(counts);

const bigReduceInvOutput = [
  'a1',
  'a2 b1',
  'a2 b2 c1',
  'a2 b2 c1',
  'a2 b1 c0',
  'a1 b0 c0',
  'a1 b0 c0',
  'a2 b1 c0',
  'a2 b2 c1',
  'a2 b2 c1',
  'a2 b1 c0',
  'a1 b0 c0',
].map(counts);

const words: string[][] = [
  ['a', 'b', 'a'],
  ['c'],
  [],
  ['a', 'a', 'd'],
  [],
  [],
  ['b'],
  ['b', 'c', 'e', 'a'],
  [],
];
const wordPairs = words.map((batch) => batch.map((w): [string, number] => [w, 1]));
const numbers: number[][] = [[1, 2], [3], [], [4, 5, 6], [], [7], [8, 9], []];

describe('hand-written window expectations (Spark WindowOperationsSuite)', () => {
  it('basic window: window 2, slide 1', async () => {
    expect(await runBatches(six, (s) => s.window(2000, 1000))).toEqual([
      [0],
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 4],
      [4, 5],
    ]);
  });

  it('tumbling window: window == slide', async () => {
    expect(await runBatches(six, (s) => s.window(2000, 2000), { partitions: 2 })).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
  });

  it('larger window: window 4, slide 2', async () => {
    expect(await runBatches(six, (s) => s.window(4000, 2000), { numBatches: 8 })).toEqual([
      [0, 1],
      [0, 1, 2, 3],
      [2, 3, 4, 5],
      [4, 5],
    ]);
  });

  it('non-overlapping window: window 2, slide 3', async () => {
    expect(await runBatches(six, (s) => s.window(2000, 3000))).toEqual([
      [1, 2],
      [4, 5],
    ]);
  });

  it('window 3 x interval, slide 2 x interval: first window not full, empty batch in the middle', async () => {
    expect(
      await runBatches([[1], [2], [], [4], [5]], (s) => s.window(3000, 2000), { numBatches: 6 }),
    ).toEqual([
      [1, 2],
      [2, 4],
      [4, 5],
    ]);
  });

  it('slide 2 intervals over 4 batches produces 2 RDDs', async () => {
    expect(await runBatches([[1], [2], [3], [4]], (s) => s.window(2000, 2000).count())).toEqual([[2], [2]]);
  });

  it('window with a 500 ms interval', async () => {
    expect(await runBatches([[1], [2], [3]], (s) => s.window(1000), { batchIntervalMs: 500 })).toEqual([
      [1],
      [1, 2],
      [2, 3],
    ]);
  });

  it('reduceByKeyAndWindow without inverse, big test', async () => {
    expect(
      unordered(await runBatches(bigInput, (s) => s.reduceByKeyAndWindow(add, { windowMs: 2000 }))),
    ).toEqual(bigReduceOutput);
  });

  it('reduceByKeyAndWindow with inverse keeps zero counts, big test', async () => {
    expect(
      unordered(
        await runBatches(
          bigInput,
          (s) => s.reduceByKeyAndWindow(add, { windowMs: 2000, slideMs: 1000, inverse: sub }),
          {
            partitions: 2,
          },
        ),
      ),
    ).toEqual(bigReduceInvOutput);
  });

  it('reduceByKeyAndWindow with inverse and a filter dropping zero counts, big test', async () => {
    expect(
      unordered(
        await runBatches(
          bigInput,
          (s) => s.reduceByKeyAndWindow(add, { windowMs: 2000, inverse: sub, filter: nonZero }),
          {
            partitions: 3,
          },
        ),
      ),
    ).toEqual(bigReduceOutput);
  });

  it('reduceByKeyAndWindow: key removed from window, with and without inverse', async () => {
    const input: [string, number][][] = [[['a', 1]], [['a', 1]], [], []];
    expect(await runBatches(input, (s) => s.reduceByKeyAndWindow(add, { windowMs: 2000 }))).toEqual([
      [['a', 1]],
      [['a', 2]],
      [['a', 1]],
      [],
    ]);
    expect(
      await runBatches(input, (s) => s.reduceByKeyAndWindow(add, { windowMs: 2000, inverse: sub })),
    ).toEqual([[['a', 1]], [['a', 2]], [['a', 1]], [['a', 0]]]);
  });

  it('reduceByKeyAndWindow: larger slide time, with and without inverse', async () => {
    const input: [string, number][][] = [
      [['a', 1]],
      [['a', 2]],
      [['a', 3]],
      [['a', 4]],
      [['a', 5]],
      [['a', 6]],
      [],
      [],
    ];
    const expected = [[['a', 3]], [['a', 10]], [['a', 18]], [['a', 11]]];
    expect(
      await runBatches(input, (s) => s.reduceByKeyAndWindow(add, { windowMs: 4000, slideMs: 2000 })),
    ).toEqual(expected);
    expect(
      await runBatches(input, (s) =>
        s.reduceByKeyAndWindow(add, { windowMs: 4000, slideMs: 2000, inverse: sub }),
      ),
    ).toEqual(expected);
  });

  it('reduceByKeyAndWindow: a key filtered out of the previous window and leaving it is dropped', async () => {
    const input: [string, number][][] = [[['a', 1]], [['b', 5]], [['b', 5]]];
    const out = await runBatches(input, (s) =>
      s.reduceByKeyAndWindow(add, { windowMs: 2000, inverse: sub, filter: ([, n]) => n >= 2 }),
    );
    expect(out).toEqual([[], [['b', 5]], [['b', 10]]]);
  });

  it('groupByKeyAndWindow, big test', async () => {
    const expected = [
      'a1',
      'a11 b1',
      'a11 b11 c1',
      'a11 b11 c1',
      'a11 b1',
      'a1',
      'a1',
      'a11 b1',
      'a11 b11 c1',
      'a11 b11 c1',
      'a11 b1',
      'a1',
    ].map((spec) =>
      spec.split(' ').map((kv): [string, number[]] => [kv.slice(0, 1), [...kv.slice(1)].map(Number)]),
    );
    expect(
      unorderedGroups(
        await runBatches(bigInput, (s) => s.groupByKeyAndWindow({ windowMs: 2000 }), { partitions: 2 }),
      ),
    ).toEqual(expected);
  });

  it('countByWindow (Spark: empty before the first record, 0 once the window empties)', async () => {
    expect(
      await runBatches([[1], [1], [1, 2], [0], [], []], (s) =>
        s.countByWindow({ windowMs: 2000, slideMs: 1000 }),
      ),
    ).toEqual([[1], [2], [3], [3], [1], [0]]);
    expect(await runBatches([[], [7]], (s) => s.countByWindow({ windowMs: 2000 }))).toEqual([[], [1]]);
  });

  it('countByValueAndWindow (Spark case, and a value leaving the window)', async () => {
    expect(
      unordered(
        await runBatches([['a'], ['b', 'b'], ['a', 'b']], (s) =>
          s.countByValueAndWindow({ windowMs: 2000, slideMs: 1000 }),
        ),
      ),
    ).toEqual([
      [['a', 1]],
      [
        ['a', 1],
        ['b', 2],
      ],
      [
        ['a', 1],
        ['b', 3],
      ],
    ]);
    expect(
      unordered(await runBatches([['a'], ['b'], []], (s) => s.countByValueAndWindow({ windowMs: 2000 }))),
    ).toEqual([
      [['a', 1]],
      [
        ['a', 1],
        ['b', 1],
      ],
      [['b', 1]],
    ]);
  });

  it('reduceByWindow with and without inverse over an emptied window', async () => {
    const input = [[1, 2], [], [], [4]];
    expect(await runBatches(input, (s) => s.reduceByWindow(add, { windowMs: 2000 }))).toEqual([
      [3],
      [3],
      [],
      [4],
    ]);
    expect(await runBatches(input, (s) => s.reduceByWindow(add, { windowMs: 2000, inverse: sub }))).toEqual([
      [3],
      [3],
      [0],
      [4],
    ]);
  });
});

describe('construction errors name the bad value and the interval', () => {
  const cases: [string, Build<[string, number], any>, string][] = [
    ['window length', (s) => s.window(1500), '1500'],
    ['window slide', (s) => s.window(2000, 1500), '1500'],
    ['reduceByWindow', (s) => s.map(([, v]) => v).reduceByWindow(add, { windowMs: 2500 }), '2500'],
    ['countByWindow slide', (s) => s.countByWindow({ windowMs: 2000, slideMs: 700 }), '700'],
    ['countByValueAndWindow', (s) => s.countByValueAndWindow({ windowMs: 3300 }), '3300'],
    ['groupByKeyAndWindow', (s) => s.groupByKeyAndWindow({ windowMs: 1200 }), '1200'],
    ['reduceByKeyAndWindow', (s) => s.reduceByKeyAndWindow(add, { windowMs: 4000, slideMs: 2500 }), '2500'],
    [
      'reduceByKeyAndWindow with inverse',
      (s) => s.reduceByKeyAndWindow(add, { windowMs: 1001, inverse: sub, filter: nonZero }),
      '1001',
    ],
  ];

  it.each(cases)('%s', async (_name, build, bad) => {
    const run = async () => runBatches([[['a', 1]]] as [string, number][][], build);
    await expect(run()).rejects.toThrow(Error);
    await expect(run()).rejects.toThrow(bad);
    await expect(run()).rejects.toThrow('1000');
  });

  it('throws at construction, before anything runs', () => {
    const ctx = new StreamingContext({ batchIntervalMs: 1000 });
    const stream = ctx.queueStream<number>([[1]]);
    expect(() => stream.window(1500)).toThrow(/1500/);
    expect(() => stream.window(1500)).toThrow(/1000/);
    expect(() => stream.window(3000, 1250)).toThrow(/1250/);
  });

  it('on a windowed parent, the parent slide is named', () => {
    const ctx = new StreamingContext({ batchIntervalMs: 1000 });
    const windowed = ctx.queueStream<number>([[1]]).window(2000, 2000);
    expect(() => windowed.window(3000)).toThrow(/3000/);
    expect(() => windowed.window(3000)).toThrow(/2000/);
    expect(() => windowed.window(4000, 4000)).not.toThrow();
  });

  it('a different interval is named', async () => {
    const run = async () => runBatches([[1]], (s) => s.window(1000), { batchIntervalMs: 300 });
    await expect(run()).rejects.toThrow(/1000/);
    await expect(run()).rejects.toThrow(/300/);
  });
});

describe.each([1, 3])('engine vs reference, %i partition(s)', (partitions) => {
  const windowCases: [number, number, number][] = [
    // [interval, window, slide]
    [1000, 1000, 1000],
    [1000, 2000, 1000],
    [1000, 3000, 1000],
    [1000, 2000, 2000],
    [1000, 3000, 2000],
    [1000, 4000, 2000],
    [1000, 2000, 3000],
    [500, 1500, 1000],
  ];

  describe.each(windowCases)('interval %i, window %i, slide %i', (batchIntervalMs, windowMs, slideMs) => {
    const opts = { partitions, batchIntervalMs, numBatches: 9 };
    it('window', () =>
      expectSame(numbers, (s) => s.window(windowMs, slideMs), { ...opts, compare: 'ordered' }));
    it('window then count and reduce', async () => {
      await expectSame(numbers, (s) => s.window(windowMs, slideMs).count(), { ...opts, compare: 'ordered' });
      await expectSame(numbers, (s) => s.window(windowMs, slideMs).reduce(add), {
        ...opts,
        compare: 'ordered',
      });
    });
    it('window then reduceByKey', () =>
      expectSame(wordPairs, (s) => s.window(windowMs, slideMs).reduceByKey(add), opts));
    it('reduceByWindow without inverse', () =>
      expectSame(numbers, (s) => s.reduceByWindow(add, { windowMs, slideMs }), {
        ...opts,
        compare: 'ordered',
      }));
    it('reduceByWindow with inverse', () =>
      expectSame(numbers, (s) => s.reduceByWindow(add, { windowMs, slideMs, inverse: sub }), {
        ...opts,
        compare: 'ordered',
      }));
    it('countByWindow', () =>
      expectSame(numbers, (s) => s.countByWindow({ windowMs, slideMs }), { ...opts, compare: 'ordered' }));
    it('countByValueAndWindow', () =>
      expectSame(words, (s) => s.countByValueAndWindow({ windowMs, slideMs }), opts));
    it('countByValueAndWindow with partitions', () =>
      expectSame(words, (s) => s.countByValueAndWindow({ windowMs, slideMs, partitions: 2 }), opts));
    it('groupByKeyAndWindow', () =>
      expectSame(wordPairs, (s) => s.groupByKeyAndWindow({ windowMs, slideMs }), {
        ...opts,
        compare: 'groups',
      }));
    it('reduceByKeyAndWindow without inverse', () =>
      expectSame(wordPairs, (s) => s.reduceByKeyAndWindow(add, { windowMs, slideMs }), opts));
    it('reduceByKeyAndWindow with inverse', () =>
      expectSame(wordPairs, (s) => s.reduceByKeyAndWindow(add, { windowMs, slideMs, inverse: sub }), opts));
    it('reduceByKeyAndWindow with inverse and filter', () =>
      expectSame(
        wordPairs,
        (s) =>
          s.reduceByKeyAndWindow(add, { windowMs, slideMs, inverse: sub, filter: nonZero, partitions: 2 }),
        opts,
      ));
    it('reduceByKeyAndWindow with inverse and a filter that removes live keys', () =>
      expectSame(
        wordPairs,
        (s) =>
          s.reduceByKeyAndWindow(add, {
            windowMs,
            slideMs,
            inverse: sub,
            filter: ([k, n]) => n > 1 || k === 'a',
          }),
        opts,
      ));
    it('reduceByKeyAndWindow with a filter and no inverse', () =>
      expectSame(
        wordPairs,
        (s) => s.reduceByKeyAndWindow(add, { windowMs, slideMs, filter: ([k]) => k !== 'b' }),
        opts,
      ));
    it('reduceByKeyAndWindow with inverse on a windowed parent', () =>
      expectSame(
        wordPairs,
        (s) =>
          s.window(slideMs, slideMs).reduceByKeyAndWindow(add, {
            windowMs: (windowMs * slideMs) / batchIntervalMs,
            slideMs: slideMs * 2,
            inverse: sub,
          }),
        opts,
      ));
    it('window of a windowed stream', () =>
      expectSame(numbers, (s: DStream<number>) => s.window(windowMs, slideMs).window(slideMs * 2, slideMs), {
        ...opts,
        compare: 'ordered',
      }));
  });
});

describe('long windows and shared parents', () => {
  const keys = ['a', 'b', 'c', 'd'];
  const long = Array.from({ length: 30 }, (_, i) =>
    Array.from({ length: (i * 5) % 4 }, (_, j): [string, number] => [
      keys[(i * 3 + j) % keys.length] as string,
      1 + ((i + j) % 3),
    ]),
  );
  const opts = { partitions: 2, numBatches: 34 };

  it('windows much longer than the slide read old batches correctly', async () => {
    await expectSame(long, (s) => s.window(6000, 1000), { ...opts, compare: 'ordered' });
    await expectSame(long, (s) => s.window(8000, 4000).reduceByKey(add), opts);
    await expectSame(
      long,
      (s) => s.reduceByKeyAndWindow(add, { windowMs: 7000, slideMs: 3000, inverse: sub }),
      opts,
    );
    await expectSame(long, (s) => s.countByValueAndWindow({ windowMs: 9000, slideMs: 1000 }), opts);
  });

  it('chained windows and state on windows', async () => {
    await expectSame(
      long,
      (s) =>
        s.window(3000, 1000).reduceByKeyAndWindow(add, {
          windowMs: 4000,
          slideMs: 2000,
          inverse: sub,
          filter: ([, n]) => n !== 0,
        }),
      opts,
    );
    await expectSame(
      long,
      (s) =>
        s
          .reduceByKeyAndWindow(add, { windowMs: 4000, slideMs: 2000 })
          .updateStateByKey<string, number, number>((vs, st) => (st ?? 0) + vs.reduce(add, 0)),
      opts,
    );
  });

  it('one stream feeding several branches', async () => {
    await expectSame(
      long,
      (s) => {
        const counts = s.reduceByKey(add);
        return counts.window(3000).union(
          counts.mapValues((v) => -v),
          s.window(2000).map(([k]) => [k, 0] as [string, number]),
        );
      },
      opts,
    );
    await expectSame(
      long,
      (s) => {
        const windowed = s.reduceByKeyAndWindow(add, { windowMs: 3000, inverse: sub });
        return windowed.join(windowed.filter(([, n]) => n > 1)).mapValues(([x, y]) => x * 100 + y);
      },
      opts,
    );
    await expectSame(
      long,
      (s) => {
        const state = s.updateStateByKey<string, number, number>((vs, st) => (st ?? 0) + vs.length);
        return state.fullOuterJoin(
          s.countByValueAndWindow({ windowMs: 2000 }).map(([[k]]) => [k, 1] as [string, number]),
        );
      },
      opts,
    );
  });
});
