/**
 * Self-tests of the reference evaluator (test/reference/), with hand-computed expectations (several
 * ported from Spark's WindowOperationsSuite), so a bug in the reference cannot hide an engine bug.
 */
import { describe, expect, it } from 'vitest';
import { type RefState, type RefStream, refRun, refRun2 } from '../reference/evaluator.ts';
import {
  canonicalKey,
  sortCanonical,
  unordered,
  unorderedCogroups,
  unorderedGroups,
} from '../reference/keys.ts';

const add = (a: number, b: number) => a + b;
const sub = (a: number, b: number) => a - b;

describe('reference keys', () => {
  it('compares keys by value and distinguishes types', () => {
    expect(canonicalKey({ b: 1, a: [1, 'x'] })).toBe(canonicalKey({ a: [1, 'x'], b: 1 }));
    expect(canonicalKey(1)).not.toBe(canonicalKey('1'));
    expect(canonicalKey(null)).not.toBe(canonicalKey(undefined));
    expect(canonicalKey(true)).not.toBe(canonicalKey('true'));
    expect(canonicalKey([1, [2]])).not.toBe(canonicalKey([[1], 2]));
    expect(sortCanonical([3, 1, 2])).toEqual([1, 2, 3]);
  });

  it('normalizes groups and cogroups', () => {
    expect(
      unorderedGroups([
        [
          ['b', [2, 1]],
          ['a', [3]],
        ],
      ]),
    ).toEqual([
      [
        ['a', [3]],
        ['b', [1, 2]],
      ],
    ]);
    expect(
      unorderedCogroups([
        [
          [
            'a',
            [
              [2, 1],
              ['y', 'x'],
            ],
          ],
        ],
      ]),
    ).toEqual([
      [
        [
          'a',
          [
            [1, 2],
            ['x', 'y'],
          ],
        ],
      ],
    ]);
  });
});

describe('reference: narrow and per-batch operations', () => {
  it('wordcount over 3 batches', () => {
    const out = refRun([['a b', 'b c'], ['a a'], []], (s) =>
      s
        .flatMap((l) => l.split(' '))
        .map((w): [string, number] => [w, 1])
        .reduceByKey(add),
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

  it('map, filter, flatMap, mapPartitions keep order', () => {
    const input = [[1, 2, 3, 4], [], [5]];
    expect(refRun(input, (s) => s.map((x) => x * 10))).toEqual([[10, 20, 30, 40], [], [50]]);
    expect(refRun(input, (s) => s.filter((x) => x % 2 === 0))).toEqual([[2, 4], [], []]);
    expect(refRun(input, (s) => s.flatMap((x) => [x, -x]))).toEqual([
      [1, -1, 2, -2, 3, -3, 4, -4],
      [],
      [5, -5],
    ]);
    expect(refRun(input, (s) => s.mapPartitions((xs) => xs.map((x) => x + 1)))).toEqual([
      [2, 3, 4, 5],
      [],
      [6],
    ]);
  });

  it('count gives one element per batch, reduce gives none on an empty batch', () => {
    const input = [[1, 2, 3], [], [4]];
    expect(refRun(input, (s) => s.count())).toEqual([[3], [0], [1]]);
    expect(refRun(input, (s) => s.reduce(add))).toEqual([[6], [], [4]]);
    expect(refRun(input, (s) => s.count(), { numBatches: 5 })).toEqual([[3], [0], [1], [0], [0]]);
  });

  it('countByValue, repartition, union', () => {
    expect(unordered(refRun([['a', 'b', 'a'], []], (s) => s.countByValue()))).toEqual([
      [
        ['a', 2],
        ['b', 1],
      ],
      [],
    ]);
    expect(refRun([[1, 2]], (s) => s.repartition(3))).toEqual([[1, 2]]);
    expect(refRun2([[1], [2]], [[3, 4]], (a, b) => a.union(b))).toEqual([[1, 3, 4], [2]]);
  });

  it('transform and transformWith receive the batch time', () => {
    expect(refRun([[1], [2]], (s) => s.transform((rdd, t) => rdd.map((x) => x + t)))).toEqual([
      [1001],
      [2002],
    ]);
    expect(
      refRun2([[1, 2], [3]], [[2], [3, 3]], (a, b) =>
        a.transformWith(b, (x, y, t) =>
          x
            .union(y)
            .distinct()
            .map((v) => [v, t]),
        ),
      ),
    ).toEqual([
      [
        [1, 1000],
        [2, 1000],
      ],
      [[3, 2000]],
    ]);
  });

  it('pair operations: groupByKey, combineByKey, mapValues, flatMapValues', () => {
    const input: [string, number][][] = [
      [
        ['a', 1],
        ['b', 2],
        ['a', 3],
      ],
    ];
    expect(unorderedGroups(refRun(input, (s) => s.groupByKey()))).toEqual([
      [
        ['a', [1, 3]],
        ['b', [2]],
      ],
    ]);
    expect(
      unordered(
        refRun(input, (s) =>
          s.combineByKey(
            (v): [number, number] => [v, 1],
            ([sum, n], v): [number, number] => [sum + v, n + 1],
            ([s1, n1], [s2, n2]): [number, number] => [s1 + s2, n1 + n2],
          ),
        ),
      ),
    ).toEqual([
      [
        ['a', [4, 2]],
        ['b', [2, 1]],
      ],
    ]);
    expect(refRun(input, (s) => s.mapValues((v) => v * 2))).toEqual([
      [
        ['a', 2],
        ['b', 4],
        ['a', 6],
      ],
    ]);
    expect(refRun(input, (s) => s.flatMapValues((v) => (v > 1 ? [v, v] : [])))).toEqual([
      [
        ['b', 2],
        ['b', 2],
        ['a', 3],
        ['a', 3],
      ],
    ]);
  });

  it('joins and cogroup, a missing side is undefined', () => {
    const a: [string, number][][] = [
      [
        ['k', 1],
        ['k', 2],
        ['j', 3],
      ],
      [],
    ];
    const b: [string, string][][] = [
      [
        ['k', 'x'],
        ['m', 'y'],
      ],
      [['k', 'z']],
    ];
    expect(unordered(refRun2(a, b, (x, y) => x.join(y)))).toEqual([
      [
        ['k', [1, 'x']],
        ['k', [2, 'x']],
      ],
      [],
    ]);
    expect(unordered(refRun2(a, b, (x, y) => x.leftOuterJoin(y)))).toEqual([
      [
        ['j', [3, undefined]],
        ['k', [1, 'x']],
        ['k', [2, 'x']],
      ],
      [],
    ]);
    expect(unordered(refRun2(a, b, (x, y) => x.rightOuterJoin(y)))).toEqual([
      [
        ['k', [1, 'x']],
        ['k', [2, 'x']],
        ['m', [undefined, 'y']],
      ],
      [['k', [undefined, 'z']]],
    ]);
    expect(unordered(refRun2(a, b, (x, y) => x.fullOuterJoin(y)))).toEqual([
      [
        ['j', [3, undefined]],
        ['k', [1, 'x']],
        ['k', [2, 'x']],
        ['m', [undefined, 'y']],
      ],
      [['k', [undefined, 'z']]],
    ]);
    expect(unorderedCogroups(refRun2(a, b, (x, y) => x.cogroup(y)))).toEqual([
      [
        ['j', [[3], []]],
        ['k', [[1, 2], ['x']]],
        ['m', [[], ['y']]],
      ],
      [['k', [[], ['z']]]],
    ]);
  });

  it('keys are compared by value', () => {
    const input: [[string, number], number][][] = [
      [
        [['a', 1], 1],
        [['a', 1], 2],
        [['a', 2], 4],
      ],
    ];
    expect(unordered(refRun(input, (s) => s.reduceByKey(add)))).toEqual([
      [
        [['a', 1], 3],
        [['a', 2], 4],
      ],
    ]);
  });
});

describe('reference: windows (cases from Spark WindowOperationsSuite)', () => {
  const six = [[0], [1], [2], [3], [4], [5]];

  it('basic window', () => {
    expect(refRun(six, (s) => s.window(2000, 1000))).toEqual([[0], [0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]);
  });

  it('tumbling window (window == slide)', () => {
    expect(refRun(six, (s) => s.window(2000, 2000))).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
  });

  it('larger window', () => {
    expect(refRun(six, (s) => s.window(4000, 2000), { numBatches: 8 })).toEqual([
      [0, 1],
      [0, 1, 2, 3],
      [2, 3, 4, 5],
      [4, 5],
    ]);
  });

  it('non-overlapping window', () => {
    expect(refRun(six, (s) => s.window(2000, 3000))).toEqual([
      [1, 2],
      [4, 5],
    ]);
  });

  it('window 3 intervals, slide 2 intervals, first window not full, empty batch in the middle', () => {
    expect(refRun([[1], [2], [], [4], [5]], (s) => s.window(3000, 2000), { numBatches: 6 })).toEqual([
      [1, 2],
      [2, 4],
      [4, 5],
    ]);
  });

  it('window on a 500 ms interval and window of a window', () => {
    expect(refRun([[1], [2], [3]], (s) => s.window(1000), { batchIntervalMs: 500 })).toEqual([
      [1],
      [1, 2],
      [2, 3],
    ]);
    expect(refRun([[1], [2], [3], [4]], (s) => s.window(2000, 2000).window(4000, 2000))).toEqual([
      [1, 2],
      [1, 2, 3, 4],
    ]);
  });

  it('window or slide that is not a multiple of the interval throws, naming both', () => {
    expect(() => refRun([[1]], (s) => s.window(1500))).toThrow(/1500.*1000/);
    expect(() => refRun([[1]], (s) => s.window(2000, 500))).toThrow(/500.*1000/);
    expect(() =>
      refRun([[['a', 1]]] as [string, number][][], (s) =>
        s.reduceByKeyAndWindow(add, { windowMs: 2500, inverse: sub }),
      ),
    ).toThrow(/2500.*1000/);
  });

  const bigInput: [string, number][][] = [
    [['a', 1]],
    [
      ['a', 1],
      ['b', 1],
    ],
    [
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ],
    [
      ['a', 1],
      ['b', 1],
    ],
    [['a', 1]],
    [],
    [['a', 1]],
    [
      ['a', 1],
      ['b', 1],
    ],
    [
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ],
    [
      ['a', 1],
      ['b', 1],
    ],
    [['a', 1]],
    [],
  ];
  const counts = (spec: string) =>
    spec.split(' ').map((kv): [string, number] => [kv.slice(0, 1), Number(kv.slice(1))]);
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

  it('reduceByKeyAndWindow without inverse, big test', () => {
    expect(unordered(refRun(bigInput, (s) => s.reduceByKeyAndWindow(add, { windowMs: 2000 })))).toEqual(
      bigReduceOutput,
    );
  });

  it('reduceByKeyAndWindow with inverse keeps zero counts, big test', () => {
    expect(
      unordered(
        refRun(bigInput, (s) => s.reduceByKeyAndWindow(add, { windowMs: 2000, slideMs: 1000, inverse: sub })),
      ),
    ).toEqual(bigReduceInvOutput);
  });

  it('reduceByKeyAndWindow with inverse and filter drops zero counts, big test', () => {
    expect(
      unordered(
        refRun(bigInput, (s) =>
          s.reduceByKeyAndWindow(add, { windowMs: 2000, inverse: sub, filter: ([, n]) => n !== 0 }),
        ),
      ),
    ).toEqual(bigReduceOutput);
  });

  it('reduceByKeyAndWindow key removed from window, with and without inverse', () => {
    const input: [string, number][][] = [[['a', 1]], [['a', 1]], [], []];
    expect(refRun(input, (s) => s.reduceByKeyAndWindow(add, { windowMs: 2000 }))).toEqual([
      [['a', 1]],
      [['a', 2]],
      [['a', 1]],
      [],
    ]);
    expect(refRun(input, (s) => s.reduceByKeyAndWindow(add, { windowMs: 2000, inverse: sub }))).toEqual([
      [['a', 1]],
      [['a', 2]],
      [['a', 1]],
      [['a', 0]],
    ]);
  });

  it('reduceByKeyAndWindow larger slide time, with and without inverse', () => {
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
    expect(refRun(input, (s) => s.reduceByKeyAndWindow(add, { windowMs: 4000, slideMs: 2000 }))).toEqual(
      expected,
    );
    expect(
      refRun(input, (s) => s.reduceByKeyAndWindow(add, { windowMs: 4000, slideMs: 2000, inverse: sub })),
    ).toEqual(expected);
  });

  it('reduceByKeyAndWindow with a filter drops a key that returns only through old values', () => {
    // a = 1 at t1, then filtered (n < 2 removed); a leaves the window at t3 with no previous value.
    const input: [string, number][][] = [[['a', 1]], [['b', 5]], [['b', 5]]];
    const out = refRun(input, (s) =>
      s.reduceByKeyAndWindow(add, { windowMs: 2000, inverse: sub, filter: ([, n]) => n >= 2 }),
    );
    expect(out).toEqual([[], [['b', 5]], [['b', 10]]]);
  });

  it('groupByKeyAndWindow, big test', () => {
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
    expect(unorderedGroups(refRun(bigInput, (s) => s.groupByKeyAndWindow({ windowMs: 2000 })))).toEqual(
      expected,
    );
  });

  it('countByWindow (Spark case, and empty before the first element)', () => {
    expect(
      refRun([[1], [1], [1, 2], [0], [], []], (s) => s.countByWindow({ windowMs: 2000, slideMs: 1000 })),
    ).toEqual([[1], [2], [3], [3], [1], [0]]);
    expect(refRun([[], [7]], (s) => s.countByWindow({ windowMs: 2000 }))).toEqual([[], [1]]);
  });

  it('countByValueAndWindow (Spark case, and a value leaving the window)', () => {
    expect(
      unordered(
        refRun([['a'], ['b', 'b'], ['a', 'b']], (s) =>
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
    expect(unordered(refRun([['a'], ['b'], []], (s) => s.countByValueAndWindow({ windowMs: 2000 })))).toEqual(
      [
        [['a', 1]],
        [
          ['a', 1],
          ['b', 1],
        ],
        [['b', 1]],
      ],
    );
  });

  it('reduceByWindow with and without inverse', () => {
    const input = [[1, 2], [], [], [4]];
    expect(refRun(input, (s) => s.reduceByWindow(add, { windowMs: 2000 }))).toEqual([[3], [3], [], [4]]);
    expect(refRun(input, (s) => s.reduceByWindow(add, { windowMs: 2000, inverse: sub }))).toEqual([
      [3],
      [3],
      [0],
      [4],
    ]);
  });
});

describe('reference: state', () => {
  it('updateStateByKey: every key updated each batch, undefined removes it', () => {
    const calls: string[] = [];
    const out = refRun([['a', 'b'], ['a'], ['a', 'b'], [], ['a']], (s) =>
      s
        .map((w): [string, number] => [w, 1])
        .updateStateByKey<string, number, number>((values, state, key, t) => {
          calls.push(`${t}:${key}:${values.length}:${state}`);
          const n = (state ?? 0) + values.length;
          return n >= 3 ? undefined : n;
        }),
    );
    expect(unordered(out)).toEqual([
      [
        ['a', 1],
        ['b', 1],
      ],
      [
        ['a', 2],
        ['b', 1],
      ],
      [['b', 2]],
      [['b', 2]],
      [
        ['a', 1],
        ['b', 2],
      ],
    ]);
    expect(calls.sort()).toEqual(
      [
        '1000:a:1:undefined',
        '1000:b:1:undefined',
        '2000:a:1:1',
        '2000:b:0:1',
        '3000:a:1:2',
        '3000:b:1:1',
        '4000:b:0:2',
        '5000:a:1:undefined',
        '5000:b:0:2',
      ].sort(),
    );
  });

  it('updateStateByKey with an initial state', () => {
    const out = refRun([[['a', 1]], []] as [string, number][][], (s) =>
      s.updateStateByKey<string, number, number>((vs, st) => (st ?? 0) + vs.reduce(add, 0), {
        initialState: [['z', 10]],
      }),
    );
    expect(unordered(out)).toEqual([
      [
        ['a', 1],
        ['z', 10],
      ],
      [
        ['a', 1],
        ['z', 10],
      ],
    ]);
  });

  const counter = (k: string, v: number | undefined, state: RefState<number>) => {
    if (state.isTimingOut()) return `timeout:${k}:${state.get()}`;
    const n = (state.getOption() ?? 0) + (v ?? 0);
    state.update(n);
    return `${k}=${n}`;
  };

  it('mapWithState timeout exactly at the boundary', () => {
    const build = (s: RefStream<string>) =>
      s.map((w): [string, number] => [w, 1]).mapWithState({ fn: counter, timeoutMs: 2000 });
    const input = [['a'], ['b'], [], [], ['a']];
    expect(refRun(input, (s) => build(s), { numBatches: 6 })).toEqual([
      ['a=1'],
      ['b=1'],
      [],
      ['timeout:a:1'],
      ['a=1', 'timeout:b:1'],
      [],
    ]);
    expect(unordered(refRun(input, (s) => build(s).stateSnapshots(), { numBatches: 6 }))).toEqual([
      [['a', 1]],
      [
        ['a', 1],
        ['b', 1],
      ],
      [
        ['a', 1],
        ['b', 1],
      ],
      [['b', 1]],
      [['a', 1]],
      [['a', 1]],
    ]);
  });

  it('mapWithState: a record that only reads the state still refreshes its timeout', () => {
    const out = refRun(
      [[['a', 1]], [], [['a', 0]]] as [string, number][][],
      (s) =>
        s.mapWithState({
          fn: (k: string, v: number | undefined, state: RefState<number>) => {
            if (state.isTimingOut()) return `timeout:${k}`;
            if (v) state.update(v);
            return undefined;
          },
          timeoutMs: 2000,
        }),
      { numBatches: 7 },
    );
    expect(out).toEqual([[], [], [], [], [], ['timeout:a'], []]);
  });

  it('mapWithState: calls per record in order, remove, undefined emits nothing, initial state', () => {
    const out = refRun(
      [
        [
          ['a', 1],
          ['a', 2],
          ['b', 0],
        ],
        [
          ['a', -1],
          ['z', 1],
        ],
      ] as [string, number][][],
      (s) =>
        s
          .mapWithState({
            fn: (k: string, v: number | undefined, state: RefState<number[]>) => {
              if (v === 0) return undefined;
              if (v === -1) {
                state.remove();
                return `${k} removed`;
              }
              const list = [...(state.getOption() ?? []), v as number];
              state.update(list);
              return `${k}:${list.join(',')}`;
            },
            initialState: [['z', [9]]],
          })
          .map((x) => x),
    );
    expect(out).toEqual([
      ['a:1', 'a:1,2'],
      ['a removed', 'z:9,1'],
    ]);
  });

  it('mapWithState initial state times out counting from the first batch', () => {
    const ms = (s: RefStream<[string, number]>) =>
      s.mapWithState({ fn: counter, timeoutMs: 2000, initialState: [['a', 5]] });
    const none: [string, number][][] = [];
    expect(refRun(none, (s) => ms(s), { numBatches: 4 })).toEqual([[], [], [], ['timeout:a:5']]);
    expect(refRun(none, (s) => ms(s).stateSnapshots(), { numBatches: 4 })).toEqual([
      [['a', 5]],
      [['a', 5]],
      [['a', 5]],
      [],
    ]);
  });

  it('State follows Spark StateImpl rules', () => {
    const out = refRun([[['a', 1]]] as [string, number][][], (s) =>
      s.mapWithState({
        fn: (_k: string, _v: number | undefined, state: RefState<number>) => {
          const r: string[] = [];
          r.push(String(state.exists()));
          try {
            state.get();
          } catch {
            r.push('get throws');
          }
          state.update(3);
          r.push(String(state.get()));
          state.remove();
          r.push(String(state.exists()));
          try {
            state.update(4);
          } catch {
            r.push('update after remove throws');
          }
          return r.join(';');
        },
      }),
    );
    expect(out).toEqual([['false;get throws;3;false;update after remove throws']]);
  });
});
