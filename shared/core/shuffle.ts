import { KeyMap } from './keys.ts';
import type { Aggregator, ShuffleDependency, Sink } from './rdd-core.ts';
import { partitionOf } from './rdd-core.ts';
import type { TaskContext } from './task-context.ts';

type KV = readonly [unknown, unknown];

/** A value no combiner can equal: the key has no combiner yet. */
export const NO_COMBINER: unknown = Symbol('no combiner');

/**
 * A sink folding [key, value] records (`values`: createCombiner, then mergeValue) or [key,
 * combiner] records (`combiners`: mergeCombiners) into `map`. A record whose function throws is
 * left out of its key's fold and handed to `tc.recordError` with its key (dead-lettered, or the
 * task fails with `onRecordError: 'fail'`); the key's other records still fold. Records arrive in
 * a deterministic order, so a retry leaves out the same records and writes the same bytes.
 * A combiner that a throwing function mutated before throwing keeps that mutation.
 */
export function foldSink<C>(
  tc: TaskContext,
  operator: string,
  agg: Aggregator<unknown, C>,
  map: KeyMap<C>,
  mode: 'values' | 'combiners',
): Sink<KV> {
  const none = NO_COMBINER as C;
  const fresh = () => none; // one closure for the task, not one per record
  const { createCombiner, mergeValue, mergeCombiners } = agg;
  const fail = (step: string, err: unknown, kv: KV) => {
    const label = operator === 'combineByKey' ? `combineByKey (${step})` : operator;
    const what = mode === 'combiners' ? ' (a partial result of one map task, left out)' : '';
    tc.recordError(
      operator,
      `${label} threw${what}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
      kv[1],
      kv[0],
    );
  };
  if (mode === 'combiners') {
    return (kv) => {
      const entry = map.entry(kv[0], fresh);
      if (entry[1] === none) entry[1] = kv[1] as C;
      else {
        try {
          entry[1] = mergeCombiners(entry[1], kv[1] as C);
        } catch (err) {
          fail('mergeCombiners', err, kv);
        }
      }
    };
  }
  return (kv) => {
    const entry = map.entry(kv[0], fresh);
    if (entry[1] === none) {
      try {
        entry[1] = createCombiner(kv[1]);
      } catch (err) {
        map.delete(kv[0]);
        fail('createCombiner', err, kv);
      }
    } else {
      try {
        entry[1] = mergeValue(entry[1], kv[1]);
      } catch (err) {
        fail('mergeValue', err, kv);
      }
    }
  };
}

/**
 * The map side of a shuffle: splits one map partition into reduce buckets, combining values
 * per key first when the dependency asks for map-side combining (reduceByKey, combineByKey).
 * Keys are hashed once per distinct key, not once per record.
 */
export async function bucketize(
  dep: ShuffleDependency,
  produce: (sink: Sink<KV>) => Promise<void>,
  tc: TaskContext,
): Promise<KV[][]> {
  const n = dep.partitioner.numPartitions;
  const buckets: KV[][] = Array.from({ length: n }, () => []);
  const agg = dep.aggregator;
  if (dep.mapSideCombine && agg) {
    const combined = new KeyMap<unknown>();
    await produce(foldSink(tc, dep.operator ?? 'combine', agg, combined, 'values'));
    for (const [k, c] of combined.entries()) buckets[partitionOf(dep.partitioner, k)]!.push([k, c]);
  } else {
    await produce((kv) => {
      buckets[partitionOf(dep.partitioner, kv[0])]!.push(kv);
    });
  }
  return buckets;
}
