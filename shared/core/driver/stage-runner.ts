/**
 * The stage runner, as Spark's `JobScheduler` handing jobs to the `DAGScheduler`: it runs each
 * stage of a batch's plan once its parents are done, the tasks of ready stages in parallel up to
 * the invoker's concurrency (through the TaskRunner: retries, speculation), and reports each
 * stage as it finishes. Batches of a backlog run at once: a stage that reads an RDD an earlier
 * batch is still materializing waits for it (`announce`, `awaitInputs`).
 *
 * @module
 */
import type { ObjectStore } from '../../ports/object-store.ts';
import type { Pipeline, StreamingContext } from '../context.ts';
import { timeKey } from '../layout.ts';
import type { BatchPlan, Stage } from '../planner.ts';
import type { InputRef, LineageRecord, TaskResult, TaskSpec } from '../task.ts';
import type { TaskRunner } from '../task-runner.ts';
import { warnNondeterministic } from './determinism.ts';
import type { ReceivedEntry, StageReport } from './manifest.ts';
import { DriverInvoker, TinyBatches, type TinyBatchOptions } from './tiny-batch.ts';

export type OnStage = (stage: Stage, results: TaskResult[], report: StageReport) => void;

/** Only what one stage needs, and only these partitions of it (recomputation from lineage). */
export interface StageGoal {
  readonly stage: Stage;
  readonly partitions: number[];
}

export class StageRunner {
  /** Materializations in flight, by `rdd/<t>/<name>/` prefix: a backlog batch waits for what it reads. */
  private readonly materializing = new Map<string, Promise<void>>();
  /** Batches small enough to run in the driver (issue 11): tiny-batch.ts. */
  private readonly tiny: TinyBatches;

  constructor(
    private readonly ctx: StreamingContext,
    private readonly pipeline: () => Pipeline,
    private readonly runner: TaskRunner,
    private readonly o: {
      /** Whether batch t was skipped on request (its tasks read no input). */
      readonly isSkipped: (t: number) => boolean;
      /** idle fast path (issue 11): the idle spans a task of batch t may read back over. */
      readonly idleSpans: (t: number) => { idleSpans?: [number, number][] };
      /**
       * issue 14: input partitions written during the interval are lists of blocks, recorded in the
       * batch's write-ahead entry (`load`, read once; a recomputation reads it too) and added to
       * each task's inputs (`expand`). The input tracker's `ReceivedBlocks`.
       */
      readonly blocks?: {
        load(t: number): Promise<void>;
        expand(inputs: InputRef[]): InputRef[];
      };
      readonly log: (event: Record<string, unknown>) => void;
      /** `tinyBatch` (tiny-batch.ts) and the store its tasks write to (uncounted: they count their own). */
      readonly tinyBatch?: false | TinyBatchOptions;
      readonly taskStore?: ObjectStore;
    },
  ) {
    this.tiny = new TinyBatches(o.taskStore ? o.tinyBatch : false);
  }

  /** Batch t was received: with its size, whether it runs in the driver (tiny-batch.ts). */
  sized(t: number, received: ReceivedEntry, bytesWritten: number): void {
    const records = Object.values(received.streams).reduce((n, s) => n + s.records, 0);
    this.tiny.sized(t, records, bytesWritten);
  }

  /** Batch t ran in the driver and stored nothing under `shuffle/` or `rdd/` (tiny-batch.ts). */
  storedNothing(t: number): boolean {
    return this.tiny.storedNothing(t);
  }

  /** The store batch t's driver-side outputs read: a tiny batch's own data is in memory. */
  storeOf(t: number, store: ObjectStore): ObjectStore {
    return this.tiny.storeOf(t, store);
  }

  /**
   * Runs every stage once its parents are done, tasks in parallel up to the invoker's concurrency.
   * With `goal`, runs only what one stage needs and only the given partitions of it.
   */
  async run(
    t: number,
    plan: BatchPlan,
    onStage: OnStage,
    goal?: StageGoal,
  ): Promise<Map<Stage, LineageRecord[]>> {
    const lineages = new Map<Stage, LineageRecord[]>();
    const shuffleOutputs = new Map<string, LineageRecord[]>();
    const running = new Map<Stage, Promise<void>>();
    const pipeline = this.pipeline();
    const graph = {
      batchIntervalMs: this.ctx.batchIntervalMs,
      zeroTimeMs: pipeline.zeroTimeMs,
      defaultPartitions: this.ctx.defaultPartitions,
      fingerprint: pipeline.fingerprint,
    };
    const skipInput = this.o.isSkipped(t);
    // a tiny batch runs in the driver (a recomputation from lineage never does: it has no size)
    const memory = goal ? undefined : this.tiny.memoryOf(t, plan);
    const via =
      memory && this.o.taskStore
        ? new DriverInvoker(this.pipeline, this.o.taskStore, memory, this.runner.limiter.limit)
        : undefined;
    const runStage = (stage: Stage): Promise<void> => {
      let p = running.get(stage);
      if (p) return p;
      p = (async () => {
        await Promise.all(stage.parents.map(runStage));
        await this.o.blocks?.load(t); // issue 14 (cached; a recomputation of an old batch reads it)
        const partitions =
          goal && stage === goal.stage
            ? goal.partitions
            : Array.from({ length: stage.numTasks }, (_, i) => i);
        const specs = partitions.map((partition): Omit<TaskSpec, 'attempt'> => {
          const { output, commitKey, name } = plan.outputOf(stage, partition);
          return {
            graph,
            batchTimeMs: t,
            stageId: stage.id,
            partition,
            rddId: stage.rdd.id,
            name,
            operators: stage.operators,
            inputs: this.expand(plan.inputsOf(stage, partition, (id) => shuffleOutputs.get(id) ?? [])),
            output,
            commitKey,
            ...(skipInput ? { skipInput: true } : {}),
            ...this.o.idleSpans(t), // idle fast path (issue 11)
          };
        });
        await this.awaitInputs(t, specs);
        const startedAtMs = Date.now();
        const outcome = await this.runner.runStage(specs, via);
        const stageLineages: LineageRecord[] = [];
        outcome.results.forEach((r, i) => {
          stageLineages[partitions[i]!] = r.lineage;
          if (r.nondeterministic) warnNondeterministic(this.o.log, t, stage.id, r);
        });
        lineages.set(stage, stageLineages);
        if (stage.shuffle) shuffleOutputs.set(stage.shuffle.id, stageLineages);
        const present = stageLineages.filter((l) => l !== undefined);
        onStage(stage, outcome.results, {
          id: stage.id,
          kind: stage.kind,
          target: stage.kind === 'shuffle' ? `shuffle ${stage.shuffle!.id}` : stage.target!.name,
          operators: stage.operators,
          tasks: specs.length,
          attempts: outcome.attempts,
          retries: outcome.retries,
          speculative: outcome.speculative,
          startedAtMs,
          durationMs: Date.now() - startedAtMs,
          records: present.reduce((n, l) => n + l.records, 0),
          bytes: present.reduce((n, l) => n + l.bytes, 0),
          taskDurationsMs: outcome.taskDurationsMs,
          throttled: outcome.throttled,
          concurrency: outcome.concurrency,
          ...(via ? { inDriver: true as const } : {}),
        });
      })();
      running.set(stage, p);
      return p;
    };
    await Promise.all((goal ? [goal.stage] : plan.stages).map(runStage));
    return lineages;
  }

  /** issue 14: an input partition written during the interval is read as its list of blocks. */
  private expand(inputs: InputRef[]): InputRef[] {
    return this.o.blocks ? this.o.blocks.expand(inputs) : inputs;
  }

  /** Registers the RDDs batch t will materialize, so backlog batches reading them can wait. */
  announce(t: number, plan: BatchPlan): Map<string, () => void> {
    const done = new Map<string, () => void>();
    for (const target of plan.targets) {
      if (target.kind !== 'rdd') continue;
      const prefix = `rdd/${timeKey(t)}/${target.name}/`;
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.materializing.set(prefix, promise);
      done.set(target.name, resolve);
    }
    return done;
  }

  /** Batch t committed: nothing waits for its materializations any more. */
  settled(t: number): void {
    this.tiny.forget(t);
    for (const key of [...this.materializing.keys()])
      if (key.startsWith(`rdd/${timeKey(t)}/`)) this.materializing.delete(key);
  }

  /** Waits until RDDs of earlier batches that these tasks read have been materialized. */
  private async awaitInputs(t: number, specs: readonly Omit<TaskSpec, 'attempt'>[]): Promise<void> {
    if (this.materializing.size === 0) return;
    const waits = new Set<Promise<void>>();
    for (const spec of specs) {
      for (const input of spec.inputs) {
        if (input.kind !== 'block' || !input.key.startsWith('rdd/')) continue;
        const prefix = input.key.slice(0, input.key.lastIndexOf('/') + 1);
        if (prefix.startsWith(`rdd/${timeKey(t)}/`)) continue;
        const w = this.materializing.get(prefix);
        if (w) waits.add(w);
      }
    }
    await Promise.all(waits);
  }
}
