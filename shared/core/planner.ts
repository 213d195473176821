import { finishOnDriver } from './fold.ts';
import { layout } from './layout.ts';
import type { OutputFormat, ParquetSchema } from './parquet.ts';
import { type RDD, type ShuffleDependency, StoredRDD } from './rdd.ts';
import type { InputRef, LineageRecord, TaskOutput } from './task.ts';

/** Something a batch must produce: an RDD to materialize in the store, or an output to save. */
export interface Target {
  readonly rdd: RDD<unknown>;
  /** Stored name: `ds<N>` (or the stream's explicit name) for RDDs, the output's name for files. */
  readonly name: string;
  readonly kind: 'rdd' | 'file';
  readonly format?: OutputFormat;
  /** Files: the part files' extension ('' or starting with a dot). */
  readonly ext?: string;
  /** Parquet files: the declared column types, if any. */
  readonly schema?: ParquetSchema;
  /** Why: 'state', 'window', 'output', 'save'. */
  readonly reason: string;
}

export interface Stage {
  readonly id: number;
  readonly kind: 'shuffle' | 'result';
  /** The RDD whose partitions the stage's tasks compute. */
  readonly rdd: RDD<unknown>;
  readonly shuffle?: ShuffleDependency;
  readonly target?: Target;
  /** Stages that must finish first. */
  readonly parents: Stage[];
  /** Operators pipelined in each task, from inputs to output. */
  readonly operators: string[];
  readonly numTasks: number;
}

/**
 * Turns the targets of a batch into stages. Narrow operators are pipelined in one task; a stage
 * ends at a shuffle (reduceByKey, groupByKey, join, cogroup, repartition), and a materialized RDD
 * is computed once and read by every stage that needs it.
 */
export class BatchPlan {
  readonly batchTimeMs: number;
  readonly stages: Stage[] = [];
  readonly targets: readonly Target[];
  private readonly materialized = new Map<string, Target>();

  constructor(batchTimeMs: number, requested: readonly Target[]) {
    this.batchTimeMs = batchTimeMs;
    // issue 14: single values (count, reduce) finish on the driver, from partials (fold.ts)
    const targets = finishOnDriver(requested);
    this.targets = targets;
    for (const t of targets)
      if (t.kind === 'rdd' && !this.materialized.has(t.rdd.id)) this.materialized.set(t.rdd.id, t);

    const resultStages = new Map<string, MutableStage>();
    const shuffleStages = new Map<string, MutableStage>();
    const order: MutableStage[] = [];

    const build = (rdd: RDD<unknown>, computeRoot: boolean, stage: MutableStage): void => {
      const seen = new Set<string>();
      const visit = (r: RDD<unknown>, isRoot: boolean): void => {
        if (seen.has(r.id)) return;
        seen.add(r.id);
        const mat = this.materialized.get(r.id);
        if (mat && !(isRoot && computeRoot)) {
          addParent(stage, resultStage(mat));
          stage.operators.push(`read(${mat.name})`);
          return;
        }
        if (r instanceof StoredRDD) {
          stage.operators.push(r.operator);
          return;
        }
        for (const dep of r.deps) {
          if (dep.kind === 'narrow') visit(dep.rdd, false);
          else {
            addParent(stage, shuffleStage(dep));
            stage.operators.push(`shuffleRead(${dep.id})`);
          }
        }
        stage.operators.push(r.operator);
      };
      visit(rdd, true);
    };

    const resultStage = (target: Target): MutableStage => {
      const key = `${target.kind}:${target.name}:${target.rdd.id}`;
      let stage = resultStages.get(key);
      if (stage) return stage;
      stage = {
        id: -1,
        kind: 'result',
        rdd: target.rdd,
        target,
        parents: [],
        operators: [],
        numTasks: target.rdd.numPartitions,
      };
      resultStages.set(key, stage);
      const computesRoot = target.kind === 'rdd' && this.materialized.get(target.rdd.id) === target;
      build(target.rdd, computesRoot, stage);
      if (target.kind === 'file') stage.operators.push(`save(${target.name})`);
      order.push(stage);
      return stage;
    };

    const shuffleStage = (dep: ShuffleDependency): MutableStage => {
      let stage = shuffleStages.get(dep.id);
      if (stage) return stage;
      stage = {
        id: -1,
        kind: 'shuffle',
        rdd: dep.rdd,
        shuffle: dep,
        parents: [],
        operators: [],
        numTasks: dep.rdd.numPartitions,
      };
      shuffleStages.set(dep.id, stage);
      build(dep.rdd, false, stage);
      stage.operators.push(`shuffleWrite(${dep.id})`);
      order.push(stage);
      return stage;
    };

    for (const t of targets) resultStage(t);
    order.forEach((s, i) => {
      s.id = i;
      this.stages.push(s);
    });
  }

  /** rdd id -> stored name of every RDD materialized by this batch. */
  materializedNames(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [id, t] of this.materialized) out.set(id, t.name);
    return out;
  }

  /** Where task `p` of `stage` writes, and its commit (lineage) key. */
  outputOf(stage: Stage, p: number): { output: TaskOutput; commitKey: string; name: string } {
    const t = this.batchTimeMs;
    let output: TaskOutput;
    let name: string;
    if (stage.kind === 'shuffle') {
      const dep = stage.shuffle!;
      name = `shuffle:${dep.id}`;
      output = {
        kind: 'shuffle',
        shuffleId: dep.id,
        key: layout.shuffleOutput(t, dep.id, p),
        buckets: dep.partitioner.numPartitions,
      };
    } else if (stage.target!.kind === 'file') {
      const target = stage.target!;
      name = target.name;
      output = {
        kind: 'file',
        key: layout.output(target.name, t, p, target.ext ?? ''),
        format: target.format ?? 'text',
        ...(target.schema ? { schema: target.schema } : {}),
      };
    } else {
      name = stage.target!.name;
      output = { kind: 'rdd', key: layout.rddPartition(t, name, p) };
    }
    return { output, commitKey: layout.lineageOf(output.key), name };
  }

  /**
   * What task `p` of `stage` reads. Shuffle inputs need the lineage (with the bucket index) of
   * every map task of the parent shuffle stages, so this is called once those have committed.
   */
  inputsOf(
    stage: Stage,
    p: number,
    shuffleOutputs: (shuffleId: string) => readonly LineageRecord[],
  ): InputRef[] {
    const inputs: InputRef[] = [];
    const computesRoot = stage.kind === 'result' && stage.target!.kind === 'rdd';
    const seen = new Set<string>();
    const reach = (r: RDD<unknown>, q: number, isRoot: boolean): void => {
      const id = `${r.id}/${q}`;
      if (seen.has(id)) return;
      seen.add(id);
      const mat = this.materialized.get(r.id);
      if (mat && !(isRoot && computesRoot && mat === stage.target)) {
        inputs.push({ kind: 'materialized', rddId: r.id, name: mat.name, partition: q });
        return;
      }
      if (r instanceof StoredRDD) {
        inputs.push({ kind: 'block', key: r.keyOfPartition(q) });
        return;
      }
      for (const dep of r.deps) {
        if (dep.kind === 'narrow') {
          for (const parentPartition of dep.parents(q)) reach(dep.rdd, parentPartition, false);
        } else {
          for (const lineage of shuffleOutputs(dep.id)) {
            const range = lineage.index?.[q] ?? [0, 0];
            inputs.push({
              kind: 'shuffle',
              shuffleId: dep.id,
              map: lineage.partition,
              key: lineage.key,
              start: range[0],
              end: range[1],
            });
          }
        }
      }
    };
    reach(stage.rdd, p, true);
    return inputs;
  }

  /** A readable outline of the plan, for `sluice run --explain` and tests. */
  explain(): string {
    return this.stages
      .map((s) => {
        const what =
          s.kind === 'shuffle' ? `shuffle ${s.shuffle!.id}` : `${s.target!.kind} ${s.target!.name}`;
        const after = s.parents.length ? ` after ${s.parents.map((p) => p.id).join(',')}` : '';
        return `stage ${s.id} (${what}, ${s.numTasks} tasks${after}): ${s.operators.join(' > ')}`;
      })
      .join('\n');
  }
}

type MutableStage = { -readonly [K in keyof Stage]: Stage[K] };

function addParent(stage: MutableStage, parent: MutableStage): void {
  if (!stage.parents.includes(parent)) stage.parents.push(parent);
}
