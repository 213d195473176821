import { KeyMap } from './keys.ts';
import {
  type Aggregator,
  checkPartitions,
  type Dependency,
  GROUP,
  oneToOne,
  type Pair,
  type Partitioner,
  RDD,
  type RDDScope,
  type ShuffleDependency,
  type Sink,
  samePartitioner,
} from './rdd-core.ts';
import { foldSink } from './shuffle.ts';
import type { TaskContext } from './task-context.ts';

/** Combines values of keys already partitioned by the target partitioner (no shuffle needed). */
export class LocalCombineRDD<K, V, C> extends RDD<[K, C]> {
  readonly operator: string;
  readonly deps: readonly Dependency[];
  readonly numPartitions: number;
  readonly parent: RDD<Pair<K, V>>;
  private readonly aggregator: Aggregator<V, C>;

  constructor(parent: RDD<Pair<K, V>>, operator: string, aggregator: Aggregator<V, C>) {
    super(parent.scope, parent.partitioner);
    this.parent = parent;
    this.operator = operator;
    this.aggregator = aggregator;
    this.numPartitions = parent.numPartitions;
    this.deps = [oneToOne(parent)];
  }
  async iterate(p: number, tc: TaskContext, sink: Sink<[K, C]>): Promise<void> {
    const agg = this.aggregator as Aggregator<unknown, C>;
    const map = new KeyMap<C>();
    await tc.iterate(this.parent, p, foldSink(tc, this.operator, agg, map, 'values'));
    for (const [k, c] of map.entries()) sink([k as K, c]);
  }
}

/**
 * The reduce side of a shuffle. Reads the buckets written for partition `p` by every map task
 * of the parent stage and merges them with the aggregator (if any).
 */
export class ShuffledRDD<K, V, C> extends RDD<[K, C]> {
  readonly operator: string;
  readonly deps: readonly Dependency[];
  readonly numPartitions: number;
  readonly dependency: ShuffleDependency;

  constructor(
    parent: RDD<Pair<K, V>>,
    partitioner: Partitioner,
    aggregator: Aggregator<V, C> | undefined,
    mapSideCombine: boolean,
    operator = 'shuffle',
  ) {
    super(parent.scope, partitioner);
    this.operator = operator;
    this.numPartitions = partitioner.numPartitions;
    this.dependency = {
      kind: 'shuffle',
      id: `${this.id}`,
      rdd: parent as RDD<readonly [unknown, unknown]>,
      partitioner,
      aggregator: aggregator as Aggregator<unknown, unknown> | undefined,
      mapSideCombine: !!aggregator && mapSideCombine,
      operator,
    };
    this.deps = [this.dependency];
  }

  async iterate(p: number, tc: TaskContext, sink: Sink<[K, C]>): Promise<void> {
    const dep = this.dependency;
    const agg = dep.aggregator as Aggregator<V, C> | undefined;
    if (!agg) {
      await tc.readShuffle(dep, p, sink as Sink<readonly [unknown, unknown]>);
      return;
    }
    const map = new KeyMap<C>();
    const mode = dep.mapSideCombine ? 'combiners' : 'values';
    await tc.readShuffle(dep, p, foldSink(tc, this.operator, agg as Aggregator<unknown, C>, map, mode));
    for (const [k, c] of map.entries()) sink([k as K, c]);
  }
}

/** Groups the values of several pair RDDs by key: [K, [V1[], V2[], ...]]. */
export class CoGroupedRDD<K> extends RDD<[K, unknown[][]]> {
  readonly operator = 'cogroup';
  readonly deps: readonly Dependency[];
  readonly numPartitions: number;
  readonly parents: readonly RDD<Pair<K, unknown>>[];

  constructor(scope: RDDScope, parents: readonly RDD<Pair<K, unknown>>[], partitioner: Partitioner) {
    super(scope, partitioner);
    checkPartitions(partitioner.numPartitions, 'cogroup');
    this.parents = parents;
    this.numPartitions = partitioner.numPartitions;
    this.deps = parents.map((parent, i): Dependency => {
      if (samePartitioner(parent.partitioner, partitioner)) return oneToOne(parent);
      return {
        kind: 'shuffle',
        id: `${this.id}#${i}`,
        rdd: parent as RDD<readonly [unknown, unknown]>,
        partitioner,
        aggregator: GROUP as Aggregator<unknown, unknown>,
        mapSideCombine: true,
        operator: 'cogroup',
      };
    });
  }

  async iterate(p: number, tc: TaskContext, sink: Sink<[K, unknown[][]]>): Promise<void> {
    const n = this.deps.length;
    const map = new KeyMap<unknown[][]>();
    const init = () => Array.from({ length: n }, () => [] as unknown[]);
    for (let i = 0; i < n; i++) {
      const dep = this.deps[i]!;
      if (dep.kind === 'shuffle') {
        // values arrive grouped per key by the map side (GROUP)
        await tc.readShuffle(dep, p, (kv) => {
          const group = map.entry(kv[0], init)[1][i]!;
          for (const v of kv[1] as unknown[]) group.push(v);
        });
      } else {
        await tc.iterate(dep.rdd as RDD<readonly [unknown, unknown]>, p, (kv) => {
          map.entry(kv[0], init)[1][i]!.push(kv[1]);
        });
      }
    }
    for (const [k, groups] of map.entries()) sink([k as K, groups]);
  }
}
