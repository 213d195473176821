/**
 * Single-value results finished on the driver (issue 14, item 2), as Spark's `RDD.count` and
 * `RDD.reduce` do: each partition is folded by its own task into one small partial value (a
 * count, or the partition's reduction), and the driver combines the partials. No second stage,
 * no shuffle: `DStream.count()` and `DStream.reduce()` are one stage of N tasks.
 *
 * A `FoldRDD` has one partition that reads every partition of its parent (the partials). The
 * planner (`finishOnDriver`) materializes the partials; when the single value is only read by
 * `foreachRDD` outputs (reason `output`), it is not materialized at all: the output's `collect()`
 * on the driver computes it from the stored partials (N tiny reads). When something else reads
 * it (a window, a saved output, state), one task computes it from the partials, still without a
 * shuffle.
 *
 * @module
 */

import type { Target } from './planner.ts';
import { type Dependency, RDD, type Sink } from './rdd.ts';
import type { TaskContext } from './task-context.ts';

/** One partition: `combine` applied to every record of every partition of `partials`. */
export class FoldRDD<P, R> extends RDD<R> {
  readonly operator: string;
  readonly deps: readonly Dependency[];
  readonly numPartitions = 1;
  readonly partials: RDD<P>;
  private readonly combine: (partials: P[]) => Iterable<R>;

  constructor(partials: RDD<P>, operator: string, combine: (partials: P[]) => Iterable<R>) {
    super(partials.scope);
    this.partials = partials;
    this.operator = operator;
    this.combine = combine;
    const all = Array.from({ length: partials.numPartitions }, (_, i) => i);
    this.deps = [{ kind: 'narrow', rdd: partials, parents: () => all }];
  }

  async iterate(_p: number, tc: TaskContext, sink: Sink<R>): Promise<void> {
    const values: P[] = [];
    for (let q = 0; q < this.partials.numPartitions; q++) {
      await tc.iterate(this.partials, q, (x) => values.push(x));
    }
    for (const r of this.combine(values)) sink(r);
  }
}

/** The stored name of a fold's partials. */
export function partialsName(fold: FoldRDD<unknown, unknown>): string {
  return `${fold.partials.id}.partials`;
}

/**
 * Rewrites a batch's targets so single values finish on the driver: every `FoldRDD` reached from a
 * target gets its partials materialized (one task per partition), and a target that is a fold
 * read only by `foreachRDD` outputs is dropped (the driver computes it from the partials).
 */
export function finishOnDriver(targets: readonly Target[]): Target[] {
  const folds = new Map<string, { fold: FoldRDD<unknown, unknown>; reason: string }>();
  const seen = new Set<string>();
  const visit = (rdd: RDD<unknown>, reason: string): void => {
    if (seen.has(rdd.id)) return;
    seen.add(rdd.id);
    if (rdd instanceof FoldRDD && !folds.has(rdd.id)) folds.set(rdd.id, { fold: rdd, reason });
    for (const dep of rdd.deps) visit(dep.rdd, reason);
  };
  for (const t of targets) visit(t.rdd, t.reason);
  if (folds.size === 0) return [...targets];
  const out: Target[] = [];
  for (const t of targets) {
    const isFoldOutput = t.kind === 'rdd' && t.reason === 'output' && t.rdd instanceof FoldRDD;
    if (!isFoldOutput) out.push(t);
  }
  const names = new Set(out.map((t) => t.name));
  for (const { fold } of folds.values()) {
    const name = partialsName(fold);
    if (names.has(name)) continue;
    names.add(name);
    out.push({ rdd: fold.partials, name, kind: 'rdd', reason: 'partials' });
  }
  return out;
}
