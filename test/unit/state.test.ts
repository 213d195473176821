/**
 * Stateful operations (updateStateByKey, mapWithState, stateSnapshots) on the engine, compared with
 * the reference evaluator, plus hand-written expectations.
 */
import { describe, expect, it } from 'vitest';
import { type DStream, runBatches, type State } from '../../shared/index.ts';
import { expectSame } from '../reference/harness.ts';
import { unordered } from '../reference/keys.ts';

const add = (a: number, b: number) => a + b;
const ones = (batches: string[][]) => batches.map((b) => b.map((w): [string, number] => [w, 1]));

/** Counts per key; times out with a marker. */
const counter = (key: string, value: number | undefined, state: State<number>) => {
  if (state.isTimingOut()) return `timeout:${key}:${state.get()}`;
  const n = (state.getOption() ?? 0) + (value ?? 0);
  state.update(n);
  return `${key}=${n}`;
};

describe('updateStateByKey, hand-written', () => {
  it('running count; returning undefined removes the key; a removed key starts again', async () => {
    const out = await runBatches(
      ones([['a', 'b'], ['a'], ['a', 'b'], [], ['a']]),
      (s) =>
        s.updateStateByKey<string, number, number>((values, state) => {
          const n = (state ?? 0) + values.length;
          return n >= 3 ? undefined : n;
        }),
      { partitions: 2 },
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
  });

  it('every existing key is updated every batch, with empty values, key and batch time', async () => {
    const out = await runBatches(
      ones([['a', 'b', 'a'], [], ['b']]),
      (s) =>
        s.updateStateByKey<string, number, string>(
          (values, state, key, timeMs) => `${state ?? ''}|${key}@${timeMs}:${values.length}`,
        ),
      { partitions: 3 },
    );
    expect(unordered(out)).toEqual([
      [
        ['a', '|a@1000:2'],
        ['b', '|b@1000:1'],
      ],
      [
        ['a', '|a@1000:2|a@2000:0'],
        ['b', '|b@1000:1|b@2000:0'],
      ],
      [
        ['a', '|a@1000:2|a@2000:0|a@3000:0'],
        ['b', '|b@1000:1|b@2000:0|b@3000:1'],
      ],
    ]);
  });

  it('an initial state is updated from the first batch', async () => {
    const out = await runBatches(ones([['a'], []]), (s) =>
      s.updateStateByKey<string, number, number>((vs, st) => (st ?? 0) + vs.reduce(add, 0), {
        initialState: [
          ['z', 10],
          ['a', 5],
        ],
      }),
    );
    expect(unordered(out)).toEqual([
      [
        ['a', 6],
        ['z', 10],
      ],
      [
        ['a', 6],
        ['z', 10],
      ],
    ]);
  });

  it('an initial state can be removed in the first batch', async () => {
    const out = await runBatches(ones([[], ['x']]), (s) =>
      s.updateStateByKey<string, number, number>(
        (vs, st) => (vs.length === 0 ? undefined : (st ?? 0) + vs.length),
        {
          initialState: [['z', 1]],
        },
      ),
    );
    expect(out).toEqual([[], [['x', 1]]]);
  });
});

describe('mapWithState, hand-written', () => {
  it('timeout exactly at the boundary: last update u times out at the first t with u < t - timeout', async () => {
    const input = ones([['a'], ['b'], [], [], ['a']]);
    const opts = { numBatches: 6, partitions: 2 };
    const mapped = await runBatches(input, (s) => s.mapWithState({ fn: counter, timeoutMs: 2000 }), opts);
    expect(mapped.map((b) => [...b].sort())).toEqual([
      ['a=1'],
      ['b=1'],
      [],
      ['timeout:a:1'],
      ['a=1', 'timeout:b:1'],
      [],
    ]);
    const snapshots = await runBatches(
      input,
      (s) => s.mapWithState({ fn: counter, timeoutMs: 2000 }).stateSnapshots(),
      opts,
    );
    expect(unordered(snapshots)).toEqual([
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

  it('fn is called once per record, in arrival order per key, across partitions', async () => {
    const input: [string, number][][] = [
      [
        ['a', 1],
        ['b', 1],
        ['a', 2],
        ['b', 2],
        ['a', 3],
        ['b', 3],
        ['a', 4],
      ],
      [
        ['b', 4],
        ['a', 5],
      ],
    ];
    const out = await runBatches(
      input,
      (s) =>
        s.mapWithState({
          fn: (key: string, value: number | undefined, state: State<string>) => {
            const next = `${state.getOption() ?? ''}${value}`;
            state.update(next);
            return `${key}:${next}`;
          },
        }),
      { partitions: 3 },
    );
    expect(unordered(out)).toEqual(
      unordered([
        ['a:1', 'a:12', 'a:123', 'a:1234', 'b:1', 'b:12', 'b:123'],
        ['b:1234', 'a:12345'],
      ]),
    );
  });

  it('remove(), returning undefined emits nothing, initial state', async () => {
    const input: [string, number][][] = [
      [
        ['a', 1],
        ['a', 2],
        ['b', 0],
      ],
      [
        ['a', -1],
        ['z', 1],
      ],
      [['a', 7]],
    ];
    const build = (s: DStream<[string, number]>) =>
      s.mapWithState({
        fn: (k: string, v: number | undefined, state: State<number[]>) => {
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
      });
    expect(unordered(await runBatches(input, build, { partitions: 2 }))).toEqual([
      ['a:1', 'a:1,2'],
      ['a removed', 'z:9,1'],
      ['a:7'],
    ]);
    expect(unordered(await runBatches(input, (s) => build(s).stateSnapshots(), { partitions: 2 }))).toEqual([
      [
        ['a', [1, 2]],
        ['z', [9]],
      ],
      [['z', [9, 1]]],
      [
        ['a', [7]],
        ['z', [9, 1]],
      ],
    ]);
  });

  it('a record that only reads the state still refreshes its timeout', async () => {
    const out = await runBatches(
      [[['a', 1]], [], [['a', 0]]] as [string, number][][],
      (s) =>
        s.mapWithState({
          fn: (k: string, v: number | undefined, state: State<number>) => {
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

  it('an initial state times out counting from the first batch', async () => {
    const none: [string, number][][] = [];
    const build = (s: DStream<[string, number]>) =>
      s.mapWithState({ fn: counter, timeoutMs: 2000, initialState: [['a', 5]] });
    expect(await runBatches(none, build, { numBatches: 4 })).toEqual([[], [], [], ['timeout:a:5']]);
    expect(await runBatches(none, (s) => build(s).stateSnapshots(), { numBatches: 4 })).toEqual([
      [['a', 5]],
      [['a', 5]],
      [['a', 5]],
      [],
    ]);
  });

  it('State: get() throws when absent, update after remove throws', async () => {
    const out = await runBatches([[['a', 1]]] as [string, number][][], (s) =>
      s.mapWithState({
        fn: (_k: string, _v: number | undefined, state: State<number>) => {
          const r: string[] = [String(state.exists())];
          try {
            state.get();
            r.push('get did not throw');
          } catch {
            r.push('get throws');
          }
          state.update(3);
          r.push(String(state.get()));
          state.remove();
          r.push(String(state.exists()), String(state.getOption()));
          try {
            state.update(4);
            r.push('update after remove did not throw');
          } catch {
            r.push('update after remove throws');
          }
          return r.join(';');
        },
      }),
    );
    expect(out).toEqual([['false;get throws;3;false;undefined;update after remove throws']]);
  });
});

describe('long runs and construction checks', () => {
  it('mapWithState and reduceByKeyAndWindow over 40 batches', async () => {
    const keys = ['a', 'b', 'c', 'd', 'e'];
    const input = Array.from({ length: 40 }, (_, i) =>
      Array.from({ length: (i * 7) % 5 }, (_, j): [string, number] => [
        keys[(i + j * 3) % keys.length] as string,
        (i + j) % 4,
      ]),
    );
    const opts = { partitions: 3, numBatches: 44 };
    await expectSame(input, (s) => s.mapWithState({ fn: counter, timeoutMs: 3000 }).stateSnapshots(), opts);
    await expectSame(input, (s) => s.mapWithState({ fn: counter, timeoutMs: 3000 }), opts);
    await expectSame(
      input,
      (s) =>
        s.reduceByKeyAndWindow(add, {
          windowMs: 5000,
          slideMs: 2000,
          inverse: (a, b) => a - b,
          filter: ([, n]) => n > 0,
        }),
      opts,
    );
    await expectSame(
      input,
      (s) =>
        s.updateStateByKey<string, number, number>((vs, st) =>
          vs.length === 0 ? undefined : (st ?? 0) + vs.reduce(add, 0),
        ),
      opts,
    );
  });

  it('a timeout that is not a positive duration is refused', async () => {
    const input: [string, number][][] = [[['a', 1]]];
    for (const timeoutMs of [0, -1000, Number.NaN]) {
      await expect(
        (async () => runBatches(input, (s) => s.mapWithState({ fn: counter, timeoutMs })))(),
      ).rejects.toThrow(Error);
    }
  });
});

describe.each([1, 2, 4])('engine vs reference, %i partition(s)', (partitions) => {
  const words = [['a', 'b', 'a', 'c'], ['b'], [], ['a', 'd', 'd', 'd'], ['c', 'a'], [], [], ['b', 'e'], []];
  const input = ones(words);
  const opts = { partitions, numBatches: 11 };

  it('updateStateByKey running count', () =>
    expectSame(
      input,
      (s) => s.updateStateByKey<string, number, number>((vs, st) => (st ?? 0) + vs.length),
      opts,
    ));

  it('updateStateByKey with removal after two idle batches', () =>
    expectSame(
      input,
      (s) =>
        s.updateStateByKey<string, number, [number, number]>((vs, st) => {
          const [count, idle] = st ?? [0, 0];
          if (vs.length > 0) return [count + vs.length, 0];
          return idle >= 1 ? undefined : [count, idle + 1];
        }),
      opts,
    ));

  it('updateStateByKey with an initial state, explicit partitions, and time', () =>
    expectSame(
      input,
      (s) =>
        s.updateStateByKey<string, number, number>(
          (vs, st, _k, t) => (vs.length ? (st ?? 0) + vs.length * t : st),
          {
            initialState: [
              ['z', 1],
              ['a', 100],
            ],
            partitions: 3,
          },
        ),
      opts,
    ));

  it('updateStateByKey after a window', () =>
    expectSame(
      input,
      (s) =>
        s
          .window(2000, 2000)
          .updateStateByKey<string, number, number>((vs, st) =>
            vs.length === 0 && st !== undefined ? undefined : (st ?? 0) + vs.length,
          ),
      opts,
    ));

  it('mapWithState output and snapshots, no timeout', async () => {
    const build = (s: DStream<[string, number]>) => s.mapWithState({ fn: counter, partitions: 3 });
    await expectSame(input, build, opts);
    await expectSame(input, (s) => build(s).stateSnapshots(), opts);
  });

  it.each([1000, 2000, 3000])('mapWithState with timeout %i ms', async (timeoutMs) => {
    const build = (s: DStream<[string, number]>) =>
      s.mapWithState({ fn: counter, timeoutMs, initialState: [['z', 42]] });
    await expectSame(input, build, opts);
    await expectSame(input, (s) => build(s).stateSnapshots(), opts);
  });

  it('mapWithState with remove and per-key order', async () => {
    const seq = words.map((b, i) => b.map((w, j): [string, number] => [w, i * 10 + j]));
    const build = (s: DStream<[string, number]>) =>
      s.mapWithState({
        fn: (k: string, v: number | undefined, state: State<number[]>) => {
          if (state.isTimingOut()) return [k, 'timeout', ...state.get()];
          const list = [...(state.getOption() ?? []), v as number];
          if (list.length >= 3) {
            state.remove();
            return [k, 'removed', ...list];
          }
          state.update(list);
          return list.length === 1 ? undefined : [k, ...list];
        },
        timeoutMs: 3000,
      });
    await expectSame(seq, build, opts);
    await expectSame(seq, (s) => build(s).stateSnapshots(), opts);
  });
});
