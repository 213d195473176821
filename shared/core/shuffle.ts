import { KeyMap } from './keys.ts';
import { partitionOf, type ShuffleDependency, type Sink } from './rdd.ts';

type KV = readonly [unknown, unknown];

/**
 * The map side of a shuffle: splits one map partition into reduce buckets, combining values
 * per key first when the dependency asks for map-side combining (reduceByKey, combineByKey).
 * Keys are hashed once per distinct key, not once per record.
 */
export async function bucketize(
  dep: ShuffleDependency,
  produce: (sink: Sink<KV>) => Promise<void>,
): Promise<KV[][]> {
  const n = dep.partitioner.numPartitions;
  const buckets: KV[][] = Array.from({ length: n }, () => []);
  const agg = dep.aggregator;
  if (dep.mapSideCombine && agg) {
    const combined = new KeyMap<unknown>();
    const none = combined; // a sentinel no combiner can equal
    const fresh = () => none; // one closure for the task, not one per record
    const { createCombiner, mergeValue } = agg;
    await produce((kv) => {
      const entry = combined.entry(kv[0], fresh);
      entry[1] = entry[1] === none ? createCombiner(kv[1]) : mergeValue(entry[1], kv[1]);
    });
    for (const [k, c] of combined.entries()) buckets[partitionOf(dep.partitioner, k)]!.push([k, c]);
  } else {
    await produce((kv) => {
      buckets[partitionOf(dep.partitioner, kv[0])]!.push(kv);
    });
  }
  return buckets;
}
