/**
 * RDDs that gather other data: the union of RDDs, a local collection, and a partition stored by an
 * earlier batch. Loaded through `rdd.ts`, which registers them for the base class.
 *
 * @module
 */

import {
  checkPartitions,
  type Dependency,
  hashPartitioner,
  type NarrowDependency,
  type Pair,
  type Partitioner,
  partitionOf,
  RDD,
  type RDDScope,
  type Sink,
  samePartitioner,
} from './rdd-core.ts';
import type { TaskContext } from './task-context.ts';

/**
 * Union of RDDs. When every parent has the same partitioner, partition `p` is the union of the
 * parents' partitions `p` and the partitioner is kept (Spark's PartitionerAwareUnionRDD);
 * otherwise the partitions are concatenated.
 */
export class UnionRDD<T> extends RDD<T> {
  readonly operator = 'union';
  readonly deps: readonly Dependency[];
  readonly numPartitions: number;
  readonly parents: readonly RDD<T>[];
  private readonly aware: boolean;
  private readonly offsets: number[];

  constructor(scope: RDDScope, parents: readonly RDD<T>[]) {
    const first = parents[0]?.partitioner;
    const aware = parents.length > 0 && parents.every((r) => samePartitioner(r.partitioner, first));
    super(scope, aware ? first : undefined);
    this.parents = parents;
    this.aware = aware;
    this.offsets = [];
    let total = 0;
    for (const r of parents) {
      this.offsets.push(total);
      total += r.numPartitions;
    }
    this.numPartitions = aware ? (first?.numPartitions ?? 0) : total;
    this.deps = parents.map((rdd, i): NarrowDependency => {
      if (aware) return { kind: 'narrow', rdd, parents: (p) => [p] };
      const off = this.offsets[i]!;
      return {
        kind: 'narrow',
        rdd,
        parents: (p) => (p >= off && p < off + rdd.numPartitions ? [p - off] : []),
      };
    });
  }

  async iterate(p: number, tc: TaskContext, sink: Sink<T>): Promise<void> {
    if (this.aware) {
      for (const parent of this.parents) await tc.iterate(parent, p, sink);
      return;
    }
    for (let i = this.parents.length - 1; i >= 0; i--) {
      const off = this.offsets[i]!;
      if (p >= off) {
        await tc.iterate(this.parents[i]!, p - off, sink);
        return;
      }
    }
  }
}

/** Records held in the pipeline module itself (initial state, static lookups), split into partitions. */
export class ParallelCollectionRDD<T> extends RDD<T> {
  readonly operator: string;
  readonly deps: readonly Dependency[] = [];
  readonly numPartitions: number;
  private readonly slices: T[][];

  constructor(
    scope: RDDScope,
    data: readonly T[],
    numPartitions: number,
    byKey: boolean,
    operator = 'parallelize',
  ) {
    const partitioner = byKey ? hashPartitioner(numPartitions) : undefined;
    super(scope, partitioner);
    checkPartitions(numPartitions, operator);
    this.operator = operator;
    this.numPartitions = numPartitions;
    this.slices = Array.from({ length: numPartitions }, () => [] as T[]);
    if (partitioner) {
      for (const x of data) this.slices[partitionOf(partitioner, (x as Pair<unknown, unknown>)[0])]!.push(x);
    } else {
      data.forEach((x, i) => {
        this.slices[Math.floor((i * numPartitions) / Math.max(1, data.length))]!.push(x);
      });
    }
  }
  async iterate(p: number, _tc: TaskContext, sink: Sink<T>): Promise<void> {
    for (const x of this.slices[p] ?? []) sink(x);
  }
}

/** Reads blocks from the store: input blocks of a batch, or partitions materialized by an earlier batch. */
export class StoredRDD<T> extends RDD<T> {
  readonly operator: string;
  readonly deps: readonly Dependency[] = [];
  readonly numPartitions: number;
  /** The batch that wrote the blocks (may be earlier than the current batch). */
  readonly storedTimeMs: number;
  /** Name of what was stored: `input:<stream>` or a DStream's RDD name. */
  readonly storedName: string;
  /** Set for datasets kept as one text object: every partition reads it and keeps its slice. */
  readonly format: 'jsonl' | 'text' | undefined;
  private readonly keyOf: (p: number) => string;

  constructor(
    scope: RDDScope,
    options: {
      operator: string;
      storedTimeMs: number;
      storedName: string;
      numPartitions: number;
      partitioner?: Partitioner;
      keyOf: (p: number) => string;
      format?: 'jsonl' | 'text';
    },
  ) {
    super(scope, options.partitioner);
    this.format = options.format;
    this.operator = options.operator;
    this.storedTimeMs = options.storedTimeMs;
    this.storedName = options.storedName;
    this.numPartitions = options.numPartitions;
    this.keyOf = options.keyOf;
  }
  keyOfPartition(p: number): string {
    return this.keyOf(p);
  }
  iterate(p: number, tc: TaskContext, sink: Sink<T>): Promise<void> {
    return tc.readStored(this, p, sink);
  }
}
