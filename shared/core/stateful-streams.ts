/**
 * The stateful stream operators, built on DStream: the incremental (invertible) window reduce
 * (Spark's ReducedWindowedDStream), updateStateByKey (StateDStream) and mapWithState
 * (MapWithStateDStream). Each reads its own previous RDD, so it is materialized (`persisted`) and
 * has a fixed shape. The DStream methods of the same names (`updateStateByKey`, `mapWithState`)
 * check their arguments and call these; they are declared on `DStream` here and added to it when
 * `streams.ts` loads this module.
 *
 * @module
 */

import { GraphError } from '../errors.ts';
import { addOperators, DStream } from './dstream.ts';
import { MapWithStateRDD, type MapWithStateRecord } from './map-with-state-rdd.ts';
import {
  CoGroupedRDD,
  checkPartitions,
  hashPartitioner,
  MapPartitionsRDD,
  type Pair,
  ParallelCollectionRDD,
} from './rdd.ts';
import type { State } from './state.ts';
import type { TaskContext } from './task-context.ts';

/** reduceByKeyAndWindow with an inverse: the window updated from the previous one. */
export function invertibleWindow<K, V>(
  parent: DStream<Pair<K, V>>,
  fn: (a: V, b: V) => V,
  inverse: (a: V, b: V) => V,
  options: {
    windowMs: number;
    slideMs: number;
    partitions: number;
    filter: ((kv: [K, V]) => boolean) | undefined;
    name: string | undefined;
  },
): DStream<[K, V]> {
  const { windowMs, slideMs, partitions: n, filter } = options;
  const partitioner = hashPartitioner(n);
  const reduced = parent.reduceByKey(fn, n).withShape({ numPartitions: n, partitioner });
  if (options.name) reduced.explicitName = `${options.name}.reduced`;
  reduced.persisted = true;
  const self: DStream<[K, V]> = new DStream<[K, V]>(
    parent.ctx,
    'reduceByKeyAndWindow',
    [reduced],
    (t, g) => {
      const ps = reduced.slideMs;
      const oldRdds = g.slice(reduced, t - slideMs - windowMs + ps, t - windowMs);
      const newRdds = g.slice(reduced, t - slideMs + ps, t);
      const prev =
        g.rddOf(self, t - slideMs) ?? new ParallelCollectionRDD<[K, V]>(g, [], n, true, 'emptyWindow');
      const cogrouped = new CoGroupedRDD<K>(g, [prev, ...oldRdds, ...newRdds], partitioner);
      const nOld = oldRdds.length;
      return new MapPartitionsRDD<[K, unknown[][]], [K, V]>(
        cogrouped,
        'mapPartitions',
        (groups, _p, tc) => {
          const out: [K, V][] = [];
          for (const [k, arrays] of groups) {
            // a key whose reduce or inverse throws keeps its previous window value (none for a new
            // key) and is dead-lettered with what entered and left (or the batch fails with 'fail')
            let step = 'reduce';
            try {
              const prevValues = arrays[0] as V[];
              let newValue: V | undefined;
              let hasNew = false;
              for (let i = 1 + nOld; i < arrays.length; i++) {
                for (const v of arrays[i] as V[]) {
                  newValue = hasNew ? fn(newValue as V, v) : v;
                  hasNew = true;
                }
              }
              let value: V;
              if (prevValues.length === 0) {
                // A key with neither a previous value nor new values has left the window (Spark throws here).
                if (!hasNew) continue;
                value = newValue as V;
              } else {
                value = prevValues[0] as V;
                let oldValue: V | undefined;
                let hasOld = false;
                for (let i = 1; i <= nOld; i++) {
                  for (const v of arrays[i] as V[]) {
                    oldValue = hasOld ? fn(oldValue as V, v) : v;
                    hasOld = true;
                  }
                }
                step = 'inverse';
                if (hasOld) value = inverse(value, oldValue as V);
                step = 'reduce';
                if (hasNew) value = fn(value, newValue as V);
              }
              const kv: [K, V] = [k, value];
              if (!filter || filter(kv)) out.push(kv);
            } catch (err) {
              const prevValues = arrays[0] as V[];
              const why = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
              tc.recordError(
                'reduceByKeyAndWindow',
                `reduceByKeyAndWindow (${step}) threw: ${why}`,
                {
                  window: prevValues[0] ?? null,
                  leaving: arrays.slice(1, 1 + nOld).flat(),
                  entering: arrays.slice(1 + nOld).flat(),
                },
                k,
              );
              if (prevValues.length > 0) {
                const kv: [K, V] = [k, prevValues[0] as V];
                if (!filter || filter(kv)) out.push(kv);
              }
            }
          }
          return out;
        },
        true,
      );
    },
    {
      params: { windowMs, slideMs, partitions: n, inverse: true, filter: !!filter },
      slideMs,
      lookBackMs: windowMs,
      fixedShape: { numPartitions: n, partitioner },
      storageName: options.name,
    },
  );
  self.persisted = true;
  return self;
}

/** updateStateByKey: a state per key across batches (see DStream.updateStateByKey). */
export function updateStateStream<K, V, S>(
  parent: DStream<Pair<K, V>>,
  fn: (values: V[], state: S | undefined, key: K, timeMs: number) => S | undefined,
  options: { partitions?: number; initialState?: [K, S][]; name?: string },
): DStream<[K, S]> {
  const n = options.partitions ?? parent.ctx.defaultPartitions;
  checkPartitions(n, 'updateStateByKey');
  const partitioner = hashPartitioner(n);
  const self: DStream<[K, S]> = new DStream<[K, S]>(
    parent.ctx,
    'updateStateByKey',
    [parent],
    (t, g) => {
      const data = g.req(parent, t);
      const prev =
        g.rddOf(self, t - self.slideMs) ??
        (options.initialState
          ? new ParallelCollectionRDD<[K, S]>(g, options.initialState, n, true, 'initialState')
          : undefined);
      // A key whose fn throws keeps its previous state (none for a new key); its values of
      // parent batch go to the dead letters with the key (or the batch fails with onRecordError 'fail').
      const update = (out: [K, S][], k: K, vs: V[], old: S | undefined, tc: TaskContext) => {
        let s: S | undefined;
        try {
          s = fn(vs, old, k, t);
        } catch (err) {
          tc.recordError('updateStateByKey', err, { values: vs, state: old ?? null }, k);
          s = old;
        }
        if (s !== undefined) out.push([k, s]);
      };
      if (!prev) {
        return new MapPartitionsRDD<[K, V[]], [K, S]>(
          data.groupByKey(n),
          'mapPartitions',
          (groups, _p, tc) => {
            const out: [K, S][] = [];
            for (const [k, vs] of groups) update(out, k, vs, undefined, tc);
            return out;
          },
          true,
        );
      }
      const cogrouped = new CoGroupedRDD<K>(g, [data, prev], partitioner);
      return new MapPartitionsRDD<[K, unknown[][]], [K, S]>(
        cogrouped,
        'mapPartitions',
        (groups, _p, tc) => {
          const out: [K, S][] = [];
          for (const [k, [vs, ss]] of groups as [K, [V[], S[]]][]) {
            update(out, k, vs, ss.length > 0 ? ss[0] : undefined, tc);
          }
          return out;
        },
        true,
      );
    },
    { params: { partitions: n }, fixedShape: { numPartitions: n, partitioner }, storageName: options.name },
  );
  self.persisted = true;
  return self;
}

/** mapWithState: see DStream.mapWithState (`n` partitions, arguments already checked). */
export function mapWithStateStream<K, V, S, U>(
  parent: DStream<Pair<K, V>>,
  spec: {
    fn: (key: K, value: V | undefined, state: State<S>, timeMs: number) => U | undefined;
    initialState?: [K, S][];
    name?: string;
  },
  n: number,
  timeoutMs: number | undefined,
): MapWithStateDStream<U, K, S> {
  const partitioner = hashPartitioner(n);
  const internal: DStream<MapWithStateRecord<K, S, U>> = new DStream<MapWithStateRecord<K, S, U>>(
    parent.ctx,
    'mapWithState',
    [parent],
    (t, g) => {
      // values grouped per key on the map side: one shuffle record per key, order kept per key
      const data = g.req(parent, t).groupByKey(n);
      let prev = g.rddOf(internal, t - internal.slideMs);
      if (!prev) {
        prev = new ParallelCollectionRDD<[K, S]>(g, spec.initialState ?? [], n, true, 'initialState').map(
          ([k, s]) => ['s', k, s, t] as MapWithStateRecord<K, S, U>,
        );
      }
      return new MapWithStateRDD<K, V, S, U>(prev, data, spec.fn, t, timeoutMs);
    },
    {
      params: { partitions: n, timeoutMs: timeoutMs ?? null },
      fixedShape: { numPartitions: n, partitioner },
      storageName: spec.name,
    },
  );
  internal.persisted = true;
  return new MapWithStateDStream<U, K, S>(internal);
}

/** The result of mapWithState: the emitted values, and the whole state table via stateSnapshots(). */
export class MapWithStateDStream<U, K, S> extends DStream<U> {
  private readonly internal: DStream<MapWithStateRecord<K, S, U>>;
  constructor(internal: DStream<MapWithStateRecord<K, S, U>>) {
    super(internal.ctx, 'mapWithStateValues', [internal], (t, g) =>
      g.req(internal, t).flatMap((r) => (r[0] === 'e' ? [r[1]] : [])),
    );
    this.internal = internal;
  }
  /** The key -> state table after each batch. */
  stateSnapshots(): DStream<[K, S]> {
    const internal = this.internal;
    return new DStream<[K, S]>(this.ctx, 'stateSnapshots', [internal], (t, g) =>
      g.req(internal, t).flatMap((r) => (r[0] === 's' ? [[r[1], r[2]] as [K, S]] : [])),
    );
  }
}

declare module './dstream.ts' {
  interface DStream<T> {
    /**
     * Keeps a state per key across batches. Every existing key is updated each batch (with the
     * batch's values, possibly none); returning `undefined` removes the key.
     */
    updateStateByKey<K, V, S>(
      this: DStream<Pair<K, V>>,
      fn: (values: V[], state: S | undefined, key: K, timeMs: number) => S | undefined,
      options?: { partitions?: number; initialState?: [K, S][]; name?: string },
    ): DStream<[K, S]>;
    /**
     * Calls `fn` once per record with the key's state (and once more with `undefined` when a key
     * times out after `timeoutMs` without records); emits what `fn` returns, unless undefined.
     */
    mapWithState<K, V, S, U>(
      this: DStream<Pair<K, V>>,
      spec: {
        fn: (key: K, value: V | undefined, state: State<S>, timeMs: number) => U | undefined;
        timeoutMs?: number;
        initialState?: [K, S][];
        partitions?: number;
        name?: string;
      },
    ): MapWithStateDStream<U, K, S>;
  }
}

addOperators({
  updateStateByKey<K, V, S>(
    this: DStream<Pair<K, V>>,
    fn: (values: V[], state: S | undefined, key: K, timeMs: number) => S | undefined,
    options: { partitions?: number; initialState?: [K, S][]; name?: string } = {},
  ): DStream<[K, S]> {
    return updateStateStream(this, fn, options);
  },
  mapWithState<K, V, S, U>(
    this: DStream<Pair<K, V>>,
    spec: {
      fn: (key: K, value: V | undefined, state: State<S>, timeMs: number) => U | undefined;
      timeoutMs?: number;
      initialState?: [K, S][];
      partitions?: number;
      name?: string;
    },
  ): MapWithStateDStream<U, K, S> {
    const n = spec.partitions ?? this.ctx.defaultPartitions;
    checkPartitions(n, 'mapWithState');
    const timeoutMs = spec.timeoutMs;
    if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs <= 0)) {
      throw new GraphError(
        `mapWithState: timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`,
      );
    }
    return mapWithStateStream(this, spec, n, timeoutMs);
  },
} satisfies Pick<DStream<any>, 'updateStateByKey' | 'mapWithState'>);
