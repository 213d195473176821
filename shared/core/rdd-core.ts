/**
 * The RDD base class and its narrow operators. RDDs: immutable, partitioned datasets with explicit dependencies. An RDD object is only a
 * description; it is computed one partition at a time by a task (see executor.ts), which pushes
 * records through the narrow operators of its stage without building intermediate arrays.
 *
 * RDD ids are deterministic: the same pipeline module, at the same batch time, builds the same
 * RDDs with the same ids in every process (driver, worker thread, Lambda function).
 *
 * @module
 */
import { GraphError } from '../errors.ts';
import type { UnionRDD } from './collection-rdds.ts';
import { stableHash } from './keys.ts';
import type { CoGroupedRDD, LocalCombineRDD, ShuffledRDD } from './shuffled-rdds.ts';
import type { TaskContext } from './task-context.ts';

/**
 * The RDD classes defined in their own modules (shuffled-rdds.ts, collection-rdds.ts), which the
 * base class builds (`reduceByKey`, `union`...). They register here when `rdd.ts` loads them, so
 * this module imports none of them: no import cycle. Import RDDs from `rdd.ts`, never from here.
 */
export const rddClasses = {} as {
  ShuffledRDD: typeof ShuffledRDD;
  CoGroupedRDD: typeof CoGroupedRDD;
  LocalCombineRDD: typeof LocalCombineRDD;
  UnionRDD: typeof UnionRDD;
};

export type Sink<T> = (record: T) => void;

export interface Partitioner {
  /** `hash`: by stable key hash; `direct`: the key is the partition number (repartition). */
  readonly kind: 'hash' | 'direct';
  readonly numPartitions: number;
}

export function hashPartitioner(numPartitions: number): Partitioner {
  return { kind: 'hash', numPartitions };
}

export function samePartitioner(a: Partitioner | undefined, b: Partitioner | undefined): boolean {
  return !!a && !!b && a.kind === b.kind && a.numPartitions === b.numPartitions;
}

export function partitionOf(partitioner: Partitioner, key: unknown): number {
  if (partitioner.kind === 'direct') return key as number;
  return stableHash(key) % partitioner.numPartitions;
}

export interface Aggregator<V, C> {
  createCombiner(value: V): C;
  mergeValue(combiner: C, value: V): C;
  mergeCombiners(a: C, b: C): C;
}

export interface NarrowDependency {
  readonly kind: 'narrow';
  readonly rdd: RDD<any>;
  /** Partitions of the parent that partition `p` of the child reads. */
  parents(p: number): number[];
}

export interface ShuffleDependency {
  readonly kind: 'shuffle';
  /** Unique within the batch; names the shuffle objects. */
  readonly id: string;
  readonly rdd: RDD<readonly [unknown, unknown]>;
  readonly partitioner: Partitioner;
  readonly aggregator?: Aggregator<unknown, unknown>;
  readonly mapSideCombine: boolean;
  /** The operator that shuffles (`reduceByKey`, `combineByKey`, ...), for dead letters. */
  readonly operator?: string;
}

export type Dependency = NarrowDependency | ShuffleDependency;

/** Where RDDs of one batch are created; gives them deterministic ids. See dstream.ts. */
export interface RDDScope {
  readonly batchTimeMs: number;
  readonly defaultPartitions: number;
  nextRddId(): string;
  register(rdd: RDD<any>): void;
  /** Reads an RDD on the driver (materialized partitions, or computed in this process). */
  collect<T>(rdd: RDD<T>): Promise<T[]>;
}

type Pair<K, V> = [K, V];

/** Groups values per key into arrays, in arrival order (map-side grouping for cogroup). */
/** The aggregator of groupByKey: values gathered into an array. */
export const GROUP: Aggregator<unknown, unknown[]> = {
  createCombiner: (v) => [v],
  mergeValue: (c, v) => {
    c.push(v);
    return c;
  },
  mergeCombiners: (a, b) => a.concat(b),
};
type KeyOf<T> = T extends readonly [infer K, unknown] ? K : never;
type ValueOf<T> = T extends readonly [unknown, infer V] ? V : never;

export abstract class RDD<T> {
  readonly id: string;
  readonly scope: RDDScope;
  abstract readonly numPartitions: number;
  abstract readonly deps: readonly Dependency[];
  /** A short name for plans, lineage and the UI: `map`, `reduceByKey`, `input`, ... */
  abstract readonly operator: string;
  readonly partitioner: Partitioner | undefined;

  constructor(scope: RDDScope, partitioner?: Partitioner) {
    this.scope = scope;
    this.id = scope.nextRddId();
    this.partitioner = partitioner;
    scope.register(this);
  }

  /** Pushes every record of partition `p` into `sink`. Parents are read through `tc.iterate`. */
  abstract iterate(p: number, tc: TaskContext, sink: Sink<T>): Promise<void>;

  toString(): string {
    return `${this.operator}[${this.id}]`;
  }

  // ---- narrow transformations -------------------------------------------------------------

  map<U>(fn: (x: T) => U): RDD<U> {
    return new ElementRDD<T, U>(this, 'map', (sink) => (x) => sink(fn(x)));
  }
  filter(fn: (x: T) => boolean): RDD<T> {
    return new ElementRDD<T, T>(
      this,
      'filter',
      (sink) => (x) => {
        if (fn(x)) sink(x);
      },
      true,
    );
  }
  flatMap<U>(fn: (x: T) => Iterable<U>): RDD<U> {
    return new ElementRDD<T, U>(this, 'flatMap', (sink) => (x) => {
      const out = fn(x);
      if (Array.isArray(out)) for (let i = 0; i < out.length; i++) sink(out[i]);
      else for (const y of out) sink(y);
    });
  }
  mapPartitions<U>(
    fn: (records: T[], partition: number) => Iterable<U>,
    preservesPartitioning = false,
  ): RDD<U> {
    return new MapPartitionsRDD<T, U>(this, 'mapPartitions', fn, preservesPartitioning);
  }
  glom(): RDD<T[]> {
    return new MapPartitionsRDD<T, T[]>(this, 'glom', (records) => [records], false);
  }
  union(...others: RDD<T>[]): RDD<T> {
    return new rddClasses.UnionRDD<T>(this.scope, [this, ...others]);
  }
  repartition(numPartitions: number): RDD<T> {
    checkPartitions(numPartitions, 'repartition');
    const tagged = new MapPartitionsRDD<T, Pair<number, T>>(
      this,
      'repartition',
      (records, p) => records.map((x, i): Pair<number, T> => [(p + i) % numPartitions, x]),
      false,
    );
    const shuffled = new rddClasses.ShuffledRDD<number, T, T>(
      tagged,
      { kind: 'direct', numPartitions },
      undefined,
      false,
    );
    return new ElementRDD<Pair<number, T>, T>(
      shuffled as RDD<Pair<number, T>>,
      'values',
      (sink) => (x) => sink(x[1]),
    );
  }
  distinct(numPartitions?: number): RDD<T> {
    const pairs = this.map((x) => [x, null] as [T, null]);
    return pairs.reduceByKey((a) => a, numPartitions).map((kv) => kv[0]);
  }

  // ---- pair transformations (on RDD<[K, V]>) ---------------------------------------------

  mapValues<K, V, U>(this: RDD<Pair<K, V>>, fn: (v: V) => U): RDD<[K, U]> {
    return new ElementRDD<Pair<K, V>, [K, U]>(
      this,
      'mapValues',
      (sink) => (x) => sink([x[0], fn(x[1])]),
      true,
    );
  }
  flatMapValues<K, V, U>(this: RDD<Pair<K, V>>, fn: (v: V) => Iterable<U>): RDD<[K, U]> {
    return new ElementRDD<Pair<K, V>, [K, U]>(
      this,
      'flatMapValues',
      (sink) => (x) => {
        for (const u of fn(x[1])) sink([x[0], u]);
      },
      true,
    );
  }
  keys<K, V>(this: RDD<Pair<K, V>>): RDD<K> {
    return this.map((x) => x[0]);
  }
  values<K, V>(this: RDD<Pair<K, V>>): RDD<V> {
    return this.map((x) => x[1]);
  }

  combineByKey<K, V, C>(
    this: RDD<Pair<K, V>>,
    createCombiner: (v: V) => C,
    mergeValue: (c: C, v: V) => C,
    mergeCombiners: (a: C, b: C) => C,
    numPartitions?: number,
    operator = 'combineByKey',
    mapSideCombine = true,
  ): RDD<[K, C]> {
    const partitioner = hashPartitioner(numPartitions ?? this.scope.defaultPartitions);
    checkPartitions(partitioner.numPartitions, operator);
    const aggregator: Aggregator<V, C> = { createCombiner, mergeValue, mergeCombiners };
    if (samePartitioner(this.partitioner, partitioner)) {
      return new rddClasses.LocalCombineRDD<K, V, C>(this, operator, aggregator);
    }
    return new rddClasses.ShuffledRDD<K, V, C>(
      this,
      partitioner,
      aggregator,
      mapSideCombine,
      operator,
    ) as RDD<[K, C]>;
  }
  reduceByKey<K, V>(this: RDD<Pair<K, V>>, fn: (a: V, b: V) => V, numPartitions?: number): RDD<[K, V]> {
    return this.combineByKey<K, V, V>((v) => v, fn, fn, numPartitions, 'reduceByKey');
  }
  groupByKey<K, V>(this: RDD<Pair<K, V>>, numPartitions?: number): RDD<[K, V[]]> {
    return this.combineByKey<K, V, V[]>(
      (v) => [v],
      (c, v) => {
        c.push(v);
        return c;
      },
      (a, b) => a.concat(b),
      numPartitions,
      'groupByKey',
      // Unlike Spark, group on the map side too: one shuffle record per key instead of one per
      // value makes the shuffle several times cheaper to encode, and keeps the values' order.
      true,
    );
  }
  partitionBy<K, V>(this: RDD<Pair<K, V>>, numPartitions: number): RDD<[K, V]> {
    const partitioner = hashPartitioner(numPartitions);
    if (samePartitioner(this.partitioner, partitioner)) return this as RDD<[K, V]>;
    return new rddClasses.ShuffledRDD<K, V, V>(this, partitioner, undefined, false, 'partitionBy') as RDD<
      [K, V]
    >;
  }

  cogroup<K, V, W>(
    this: RDD<Pair<K, V>>,
    other: RDD<Pair<K, W>>,
    numPartitions?: number,
  ): RDD<[K, [V[], W[]]]> {
    const partitioner = hashPartitioner(numPartitions ?? this.scope.defaultPartitions);
    return new rddClasses.CoGroupedRDD<K>(this.scope, [this, other], partitioner) as unknown as RDD<
      [K, [V[], W[]]]
    >;
  }
  join<K, V, W>(this: RDD<Pair<K, V>>, other: RDD<Pair<K, W>>, numPartitions?: number): RDD<[K, [V, W]]> {
    return this.cogroup(other, numPartitions).flatMapValues(([vs, ws]) => {
      const out: [V, W][] = [];
      for (const v of vs) for (const w of ws) out.push([v, w]);
      return out;
    });
  }
  leftOuterJoin<K, V, W>(
    this: RDD<Pair<K, V>>,
    other: RDD<Pair<K, W>>,
    numPartitions?: number,
  ): RDD<[K, [V, W | undefined]]> {
    return this.cogroup(other, numPartitions).flatMapValues(([vs, ws]) => {
      const out: [V, W | undefined][] = [];
      for (const v of vs) {
        if (ws.length === 0) out.push([v, undefined]);
        else for (const w of ws) out.push([v, w]);
      }
      return out;
    });
  }
  rightOuterJoin<K, V, W>(
    this: RDD<Pair<K, V>>,
    other: RDD<Pair<K, W>>,
    numPartitions?: number,
  ): RDD<[K, [V | undefined, W]]> {
    return this.cogroup(other, numPartitions).flatMapValues(([vs, ws]) => {
      const out: [V | undefined, W][] = [];
      for (const w of ws) {
        if (vs.length === 0) out.push([undefined, w]);
        else for (const v of vs) out.push([v, w]);
      }
      return out;
    });
  }
  fullOuterJoin<K, V, W>(
    this: RDD<Pair<K, V>>,
    other: RDD<Pair<K, W>>,
    numPartitions?: number,
  ): RDD<[K, [V | undefined, W | undefined]]> {
    return this.cogroup(other, numPartitions).flatMapValues(([vs, ws]) => {
      const out: [V | undefined, W | undefined][] = [];
      if (vs.length === 0) for (const w of ws) out.push([undefined, w]);
      else if (ws.length === 0) for (const v of vs) out.push([v, undefined]);
      else for (const v of vs) for (const w of ws) out.push([v, w]);
      return out;
    });
  }

  // ---- actions (driver side) ---------------------------------------------------------------

  /** Reads every record of the RDD, partition by partition. */
  collect(): Promise<T[]> {
    return this.scope.collect(this);
  }
  async count(): Promise<number> {
    return (await this.collect()).length;
  }
  async take(n: number): Promise<T[]> {
    return (await this.collect()).slice(0, n);
  }
}

export function checkPartitions(n: number, operator: string): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new GraphError(`${operator}: the number of partitions must be a positive integer, got ${n}`);
  }
}

/** One-to-one narrow dependency. */
export function oneToOne(rdd: RDD<any>): NarrowDependency {
  return { kind: 'narrow', rdd, parents: (p) => [p] };
}

/** Record-at-a-time operators (map, filter, flatMap, mapValues, ...), fused into one loop per task. */
export class ElementRDD<T, U> extends RDD<U> {
  readonly operator: string;
  readonly deps: readonly Dependency[];
  readonly numPartitions: number;
  private readonly wrap: (sink: Sink<U>) => Sink<T>;
  readonly parent: RDD<T>;

  constructor(
    parent: RDD<T>,
    operator: string,
    wrap: (sink: Sink<U>) => Sink<T>,
    preservesPartitioning = false,
  ) {
    super(parent.scope, preservesPartitioning ? parent.partitioner : undefined);
    this.parent = parent;
    this.operator = operator;
    this.wrap = wrap;
    this.numPartitions = parent.numPartitions;
    this.deps = [oneToOne(parent)];
  }
  iterate(p: number, tc: TaskContext, sink: Sink<U>): Promise<void> {
    return tc.iterate(this.parent, p, tc.guard(this, this.wrap(sink)));
  }
}

/** Whole-partition operators (mapPartitions, glom). */
export class MapPartitionsRDD<T, U> extends RDD<U> {
  readonly operator: string;
  readonly deps: readonly Dependency[];
  readonly numPartitions: number;
  readonly parent: RDD<T>;
  private readonly fn: (records: T[], partition: number, tc: TaskContext) => Iterable<U>;

  constructor(
    parent: RDD<T>,
    operator: string,
    /** `tc` is for the engine's own operators (dead letters per key); user functions take two arguments. */
    fn: (records: T[], partition: number, tc: TaskContext) => Iterable<U>,
    preservesPartitioning: boolean,
  ) {
    super(parent.scope, preservesPartitioning ? parent.partitioner : undefined);
    this.parent = parent;
    this.operator = operator;
    this.fn = fn;
    this.numPartitions = parent.numPartitions;
    this.deps = [oneToOne(parent)];
  }
  async iterate(p: number, tc: TaskContext, sink: Sink<U>): Promise<void> {
    const records: T[] = [];
    await tc.iterate(this.parent, p, (x) => records.push(x));
    for (const y of this.fn(records, p, tc)) sink(y);
  }
}

export type { KeyOf, Pair, ValueOf };
