/**
 * Property-based tests: random streams through representative pipelines, on the engine and on the
 * reference evaluator, must give the same outputs (order ignored where Spark leaves it undefined).
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { DStream, State } from '../../shared/index.ts';
import { type Build, type Build2, type Comparison, expectSame, expectSame2 } from '../reference/harness.ts';

/** Modest by default so the file stays fast; raise it to hunt: SLUICE_PROPERTY_RUNS=2000 npx vitest run ... */
const NUM_RUNS = Number(process.env.SLUICE_PROPERTY_RUNS ?? 50);
const add = (a: number, b: number) => a + b;
const sub = (a: number, b: number) => a - b;

type Key = string | number;

/** Small key space so keys repeat within and across batches; strings and numbers mixed. */
const keyArb: fc.Arbitrary<Key> = fc.oneof(
  fc.constantFrom('a', 'b', 'c', 'd', '1'),
  fc.integer({ min: 0, max: 3 }),
);
const valueArb = fc.integer({ min: -3, max: 9 });

function batchesOf<T>(item: fc.Arbitrary<T>, maxBatches = 8): fc.Arbitrary<T[][]> {
  return fc.array(fc.array(item, { maxLength: 7 }), { minLength: 1, maxLength: maxBatches });
}

const pairsArb = batchesOf(fc.tuple(keyArb, valueArb));
const keysArb = batchesOf(keyArb);
const linesArb = batchesOf(
  fc.array(fc.constantFrom('x', 'y', 'z', 'the', 'a'), { maxLength: 4 }).map((ws) => ws.join(' ')),
);

/** An initial state: distinct keys. */
const initialArb = fc.uniqueArray(fc.tuple(keyArb, fc.integer({ min: 0, max: 5 })), {
  selector: ([k]) => k,
  maxLength: 3,
});

const runArb = fc.record({
  partitions: fc.integer({ min: 1, max: 4 }),
  /** Extra empty batches after the input. */
  extra: fc.integer({ min: 0, max: 3 }),
  batchIntervalMs: fc.constantFrom(100, 1000),
});

/** Window and slide as multiples of the batch interval. */
const windowArb = fc.record({
  windowMult: fc.integer({ min: 1, max: 4 }),
  slideMult: fc.integer({ min: 1, max: 3 }),
});

function options(input: unknown[][], run: { partitions: number; extra: number; batchIntervalMs: number }) {
  return {
    partitions: run.partitions,
    batchIntervalMs: run.batchIntervalMs,
    numBatches: input.length + run.extra,
  };
}

async function check<T, V>(
  input: T[][],
  run: { partitions: number; extra: number; batchIntervalMs: number },
  build: Build<T, V>,
  compare: Comparison = 'unordered',
): Promise<void> {
  await expectSame(input, build, { ...options(input, run), compare });
}

function property<A>(arb: fc.Arbitrary<A>, body: (a: A) => Promise<void>): Promise<void> {
  return fc.assert(fc.asyncProperty(arb, body), { numRuns: NUM_RUNS });
}

describe('engine agrees with the reference on random streams', () => {
  it('wordcount: flatMap, map, reduceByKey', () =>
    property(
      fc.tuple(linesArb, runArb, fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined })),
      ([input, run, n]) =>
        check(input, run, (s) =>
          s
            .flatMap((l) => l.split(' '))
            .filter((w) => w.length > 0)
            .map((w): [string, number] => [w, 1])
            .reduceByKey(add, n),
        ),
    ));

  it('groupByKey', () =>
    property(fc.tuple(pairsArb, runArb), ([input, run]) =>
      check(input, run, (s) => s.groupByKey(), 'groups'),
    ));

  it('countByValue and count', () =>
    property(fc.tuple(keysArb, runArb), async ([input, run]) => {
      await check(input, run, (s) => s.countByValue());
      await check(input, run, (s) => s.count(), 'ordered');
    }));

  it('join, leftOuterJoin, fullOuterJoin and cogroup of two streams', () =>
    property(fc.tuple(pairsArb, pairsArb, runArb), async ([a, b, run]) => {
      const opts = {
        partitions: run.partitions,
        batchIntervalMs: run.batchIntervalMs,
        numBatches: Math.max(a.length, b.length) + run.extra,
      };
      const cases: [Build2<[Key, number], [Key, number], any>, Comparison][] = [
        [(x, y) => x.join(y), 'unordered'],
        [(x, y) => x.leftOuterJoin(y, 3), 'unordered'],
        [(x, y) => x.fullOuterJoin(y.reduceByKey(add)), 'unordered'],
        [(x, y) => x.cogroup(y), 'cogroups'],
        [(x, y) => x.union(y), 'ordered'],
      ];
      for (const [build, compare] of cases) await expectSame2(a, b, build, { ...opts, compare });
    }));

  it('window then reduceByKey', () =>
    property(fc.tuple(pairsArb, runArb, windowArb), ([input, run, w]) =>
      check(input, run, (s) =>
        s.window(w.windowMult * run.batchIntervalMs, w.slideMult * run.batchIntervalMs).reduceByKey(add),
      ),
    ));

  it('window keeps batch order', () =>
    property(fc.tuple(keysArb, runArb, windowArb), ([input, run, w]) =>
      check(
        input,
        run,
        (s) => s.window(w.windowMult * run.batchIntervalMs, w.slideMult * run.batchIntervalMs),
        'ordered',
      ),
    ));

  it('reduceByKeyAndWindow with inverse and filter, and without inverse', () =>
    property(
      fc.tuple(pairsArb, runArb, windowArb, fc.integer({ min: 1, max: 4 })),
      async ([input, run, w, n]) => {
        const windowMs = w.windowMult * run.batchIntervalMs;
        const slideMs = w.slideMult * run.batchIntervalMs;
        await check(input, run, (s) =>
          s.reduceByKeyAndWindow(add, {
            windowMs,
            slideMs,
            inverse: sub,
            filter: ([, v]) => v !== 0,
            partitions: n,
          }),
        );
        await check(input, run, (s) => s.reduceByKeyAndWindow(add, { windowMs, slideMs, inverse: sub }));
        await check(input, run, (s) => s.reduceByKeyAndWindow(add, { windowMs, slideMs }));
      },
    ));

  it('countByValueAndWindow and countByWindow', () =>
    property(fc.tuple(keysArb, runArb, windowArb), async ([input, run, w]) => {
      const windowMs = w.windowMult * run.batchIntervalMs;
      const slideMs = w.slideMult * run.batchIntervalMs;
      await check(input, run, (s) => s.countByValueAndWindow({ windowMs, slideMs }));
      await check(input, run, (s) => s.countByWindow({ windowMs, slideMs }), 'ordered');
    }));

  it('groupByKeyAndWindow', () =>
    property(fc.tuple(pairsArb, runArb, windowArb), ([input, run, w]) =>
      check(
        input,
        run,
        (s) =>
          s.groupByKeyAndWindow({
            windowMs: w.windowMult * run.batchIntervalMs,
            slideMs: w.slideMult * run.batchIntervalMs,
          }),
        'groups',
      ),
    ));

  it('updateStateByKey with removal', () =>
    property(fc.tuple(pairsArb, runArb, initialArb), ([input, run, initial]) =>
      check(input, run, (s) =>
        s.updateStateByKey<Key, number, number>(
          (values, state) => {
            // A key goes away when its sum passes 8 or when a batch brings nothing for it.
            if (values.length === 0 && state !== undefined && state % 2 === 1) return undefined;
            const next = (state ?? 0) + values.reduce(add, 0);
            return next > 8 ? undefined : next;
          },
          { initialState: initial, partitions: run.partitions === 1 ? undefined : 3 },
        ),
      ),
    ));

  it('mapWithState with timeout: outputs and state snapshots', () =>
    property(
      fc.tuple(pairsArb, runArb, fc.integer({ min: 1, max: 3 }), initialArb),
      async ([input, run, timeoutMult, initial]) => {
        const build = (s: DStream<[Key, number]>) =>
          s.mapWithState({
            fn: (key: Key, value: number | undefined, state: State<number[]>) => {
              if (state.isTimingOut()) return ['timeout', key, ...state.get()];
              if (value === undefined) return undefined;
              if (value < 0) {
                if (state.exists()) state.remove();
                return ['removed', key];
              }
              if (value === 0) return state.exists() ? ['read', key, ...state.get()] : undefined;
              const list = [...(state.getOption() ?? []), value];
              state.update(list);
              return [key, ...list];
            },
            timeoutMs: timeoutMult * run.batchIntervalMs,
            initialState: initial.map(([k, v]): [Key, number[]] => [k, [v]]),
          });
        await check(input, run, build);
        await check(input, run, (s) => build(s).stateSnapshots());
      },
    ));
});

/**
 * One step of a random pipeline on DStream<[Key, number]>; window sizes are multiples of the parent's
 * slide. Every step is insensitive to the order of records inside a batch, which shuffles leave undefined.
 */
type Step =
  | { kind: 'mapValues' | 'filter' | 'unionSelf' | 'joinSelf'; mod: number }
  | { kind: 'reduceByKey' | 'group' | 'state' | 'rekey' }
  | { kind: 'repartition'; n: number }
  | { kind: 'mapWithState'; timeoutMult: number | undefined }
  | { kind: 'window' | 'countByValueAndWindow'; wm: number; sm: number }
  | { kind: 'reduceByKeyAndWindow'; wm: number; sm: number; inverse: boolean; filter: boolean };

const mult = fc.integer({ min: 1, max: 3 });
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constantFrom('mapValues', 'filter', 'unionSelf', 'joinSelf'),
    mod: fc.integer({ min: 0, max: 4 }),
  }),
  fc.record({ kind: fc.constantFrom('reduceByKey', 'group', 'state', 'rekey') }),
  fc.record({ kind: fc.constant('repartition'), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('mapWithState'), timeoutMult: fc.option(mult, { nil: undefined }) }),
  fc.record({
    kind: fc.constantFrom('window', 'countByValueAndWindow'),
    wm: mult,
    sm: fc.integer({ min: 1, max: 2 }),
  }),
  fc.record({
    kind: fc.constant('reduceByKeyAndWindow'),
    wm: mult,
    sm: fc.integer({ min: 1, max: 2 }),
    inverse: fc.boolean(),
    filter: fc.boolean(),
  }),
) as fc.Arbitrary<Step>;

const isWindowed = (s: Step) =>
  s.kind === 'window' || s.kind === 'countByValueAndWindow' || s.kind === 'reduceByKeyAndWindow';

function applyStep(s: DStream<[Key, number]>, step: Step, intervalMs: number): DStream<[Key, number]> {
  const small = (v: number) => ((v % 50) + 50) % 50;
  switch (step.kind) {
    case 'mapValues':
      return s.mapValues((v) => small(v * 3 + step.mod));
    case 'filter':
      return s.filter(([, v]) => (v + step.mod) % 3 !== 0);
    case 'unionSelf':
      return s.union(s.mapValues((v) => v + step.mod));
    case 'joinSelf':
      return s.join(s.filter(([, v]) => v % 2 === step.mod % 2)).mapValues(([a, b]) => small(a - b));
    case 'reduceByKey':
      return s.reduceByKey(add);
    case 'group':
      return s.groupByKey().mapValues((vs) => small(vs.reduce(add, 0) * 10 + vs.length));
    case 'rekey':
      return s.map(([k, v]): [Key, number] => [
        Math.abs(v) % 3,
        typeof k === 'number' ? v + k : v + k.length,
      ]);
    case 'repartition':
      return s.repartition(step.n);
    case 'state':
      return s.updateStateByKey<Key, number, number>((vs, st) => {
        const n = (st ?? 0) + vs.reduce(add, 0);
        return n > 40 || (vs.length === 0 && n % 2 === 0) ? undefined : small(n);
      });
    case 'mapWithState': {
      // Order-insensitive (shuffles before it leave the order of a key's records undefined):
      // sums per key, emits only on timeout, and shows the table through stateSnapshots.
      const ms = s.mapWithState({
        fn: (k: Key, v: number | undefined, st: State<number>): [Key, number] | undefined => {
          if (st.isTimingOut()) return [k, -100 - st.get()];
          st.update(small((st.getOption() ?? 0) + (v ?? 0)));
          return undefined;
        },
        timeoutMs: step.timeoutMult === undefined ? undefined : step.timeoutMult * intervalMs,
      });
      return ms.union(ms.stateSnapshots());
    }
    case 'window':
      return s.window(step.wm * s.slideMs, step.sm * s.slideMs);
    case 'countByValueAndWindow':
      return s
        .countByValueAndWindow({ windowMs: step.wm * s.slideMs, slideMs: step.sm * s.slideMs })
        .map(([[k, v], n]): [Key, number] => [k, small(v * 10 + n)]);
    case 'reduceByKeyAndWindow':
      return s.reduceByKeyAndWindow(add, {
        windowMs: step.wm * s.slideMs,
        slideMs: step.sm * s.slideMs,
        inverse: step.inverse ? sub : undefined,
        filter: step.filter ? ([, v]) => v !== 0 : undefined,
      });
  }
}

describe('random pipelines', () => {
  it('compositions of operations agree with the reference', () =>
    property(
      fc.tuple(
        pairsArb,
        runArb,
        fc
          .array(stepArb, { minLength: 1, maxLength: 4 })
          .filter((steps) => steps.filter(isWindowed).length <= 2),
      ),
      async ([input, run, steps]) => {
        await expectSame(
          input,
          (s) => steps.reduce((acc, step) => applyStep(acc, step, run.batchIntervalMs), s),
          {
            partitions: run.partitions,
            batchIntervalMs: run.batchIntervalMs,
            numBatches: input.length + run.extra + 4,
            compare: 'unordered',
          },
        );
      },
    ));
});
