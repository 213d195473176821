/**
 * The RDD of mapWithState: one partition of the previous state table and the batch's values
 * grouped per key in, the next state table and the emitted values out (one stream of records,
 * told apart by their tag).
 *
 * @module
 */
import { KeyMap } from './keys.ts';
import { type Dependency, type Pair, RDD, type Sink } from './rdd.ts';
import { type State, StateImpl } from './state.ts';
import type { TaskContext } from './task-context.ts';

/** Records of mapWithState's internal stream: a key's state, or an emitted value. */
export type MapWithStateRecord<K, S, U> = ['s', K, S, number] | ['e', U];

export class MapWithStateRDD<K, V, S, U> extends RDD<MapWithStateRecord<K, S, U>> {
  readonly operator = 'mapWithState';
  readonly deps: readonly Dependency[];
  readonly numPartitions: number;
  private readonly prev: RDD<MapWithStateRecord<K, S, U>>;
  private readonly data: RDD<Pair<K, V[]>>;

  constructor(
    prev: RDD<MapWithStateRecord<K, S, U>>,
    data: RDD<Pair<K, V[]>>,
    private readonly fn: (key: K, value: V | undefined, state: State<S>, timeMs: number) => U | undefined,
    private readonly timeMs: number,
    private readonly timeoutMs: number | undefined,
  ) {
    super(data.scope, data.partitioner);
    this.prev = prev;
    this.data = data;
    this.numPartitions = data.numPartitions;
    this.deps = [
      { kind: 'narrow', rdd: prev, parents: (p) => [p] },
      { kind: 'narrow', rdd: data, parents: (p) => [p] },
    ];
  }

  async iterate(p: number, tc: TaskContext, sink: Sink<MapWithStateRecord<K, S, U>>): Promise<void> {
    const states = new KeyMap<{ key: K; state: S; updated: number }>();
    await tc.iterate(this.prev, p, (r) => {
      if (r[0] === 's') states.set(r[1], { key: r[1], state: r[2], updated: r[3] });
    });
    const t = this.timeMs;
    const state = new StateImpl<S>();
    const hasTimeout = this.timeoutMs !== undefined;
    // A record whose call throws leaves its key's state as it was before the call and emits
    // nothing; it goes to the dead letters with its key (or fails the batch with onRecordError 'fail').
    await tc.iterate(this.data, p, ([k, values]) => {
      for (const v of values) {
        const current = states.get(k);
        state.reset(current !== undefined, current?.state, false);
        let out: U | undefined;
        try {
          out = this.fn(k, v, state, t);
        } catch (err) {
          tc.recordError('mapWithState', err, v, k);
          continue;
        }
        if (state.removed) states.delete(k);
        // As in Spark, with a timeout any record for an existing key refreshes its time.
        else if (state.updated || (hasTimeout && state.exists())) {
          states.set(k, { key: k, state: state.value as S, updated: t });
        }
        if (out !== undefined) sink(['e', out]);
      }
    });
    if (this.timeoutMs !== undefined) {
      const threshold = t - this.timeoutMs;
      for (const [k, entry] of [...states.entries()]) {
        if (entry.updated >= threshold) continue;
        state.reset(true, entry.state, true);
        let out: U | undefined;
        try {
          out = this.fn(entry.key, undefined, state, t);
        } catch (err) {
          // the key times out all the same
          tc.recordError(
            'mapWithState',
            `mapWithState threw while timing the key out: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
            { state: entry.state },
            entry.key,
          );
        }
        states.delete(k);
        if (out !== undefined) sink(['e', out]);
      }
    }
    for (const [, entry] of states.entries()) sink(['s', entry.key, entry.state, entry.updated]);
  }
}
