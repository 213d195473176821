/**
 * Lineage recovery: a lost or corrupt stored object is recomputed from its lineage, as Spark
 * recomputes a lost RDD partition from its parents. The batch that wrote it is generated again
 * and just what that partition needs is re-run (its shuffle map stage, then the one partition);
 * what that reads, if lost too, is recovered the same way, recursively, back to data that exists
 * (input blocks, or a state checkpoint). Input blocks themselves cannot be recomputed; an input
 * partition written during the interval (issue 14) is read from the block list in the batch's
 * write-ahead entry (the stage runner loads it).
 *
 * @module
 */
import type { ObjectStore } from '../../ports/object-store.ts';
import { decodeJson } from '../codec.ts';
import type { Pipeline } from '../context.ts';
import type { BatchGeneration } from '../generation.ts';
import { layout, parseTimeKey } from '../layout.ts';
import { BatchPlan, type Stage, type Target } from '../planner.ts';
import type { LineageRecord } from '../task.ts';
import { warnNondeterministic } from './determinism.ts';
import type { BatchManifest } from './manifest.ts';
import type { StageRunner } from './stage-runner.ts';

const RDD_KEY = /^rdd\/(\d+)\/([^/]+)\/(\d+)\.blk$/;
const SHUFFLE_KEY = /^shuffle\/(\d+)\/([^/]+)\/(\d+)\.blk$/;

export class LineageRecovery {
  private readonly recovering = new Map<string, Promise<boolean>>();
  /** Partitions recomputed so far (the manifest counts a batch's share). */
  recomputed = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly pipeline: () => Pipeline,
    private readonly stages: () => StageRunner,
    private readonly o: {
      /** The targets of batch t (what a shuffle map stage fed). */
      readonly targetsOf: (gen: BatchGeneration) => Target[];
      readonly log: (event: Record<string, unknown>) => void;
    },
  ) {}

  /**
   * Recomputes `key`; true if it exists again. Concurrent requests for the same stored RDD of a
   * batch share one recomputation: it restores every partition of that RDD found missing, so
   * sibling losses share one re-run of the map stage.
   */
  recover(key: string): Promise<boolean> {
    const scope = key.startsWith('rdd/') ? key.slice(0, key.lastIndexOf('/') + 1) : key;
    let p = this.recovering.get(scope);
    if (!p) {
      p = this.recompute(key).finally(() => this.recovering.delete(scope));
      this.recovering.set(scope, p);
    }
    return p;
  }

  private async recompute(key: string): Promise<boolean> {
    const rdd = RDD_KEY.exec(key);
    const shuffle = SHUFFLE_KEY.exec(key);
    const started = Date.now();
    const pipeline = this.pipeline();
    if (rdd) {
      const t = parseTimeKey(rdd[1]!);
      const name = rdd[2]!;
      const partition = Number(rdd[3]);
      const stream = pipeline.targetStreams().find((s) => s.storageName === name);
      const gen = pipeline.generate(t);
      const target = stream ? gen.rddOf(stream, t) : undefined;
      // issue 14: partials of a single value (fold.ts) are a target of the batch's own plan
      const plan = target
        ? new BatchPlan(t, [{ rdd: target, name, kind: 'rdd', reason: 'recompute' }])
        : new BatchPlan(
            t,
            new BatchPlan(t, this.o.targetsOf(gen)).targets.filter((x) => x.name === name),
          );
      if (plan.targets.length === 0) return false;
      const stage = plan.stages.find((s) => s.target?.name === name)!;
      const present = new Set(await this.store.list(`rdd/${rdd[1]}/${name}/`));
      const partitions = Array.from({ length: stage.numTasks }, (_, p) => p).filter(
        (p) => p === partition || !present.has(layout.rddPartition(t, name, p)),
      );
      const lineages = await this.stages().run(t, plan, () => {}, { stage, partitions });
      this.recomputed += partitions.length - 1;
      // the operators of the stage and of the stages it read: where a nondeterministic function is
      const chain = (st: Stage): string[] => [...st.parents.flatMap(chain), ...st.operators];
      await this.checkDeterminism(t, stage.id, lineages.get(stage) ?? [], chain(stage));
    } else if (shuffle) {
      const t = parseTimeKey(shuffle[1]!);
      const plan = new BatchPlan(t, this.o.targetsOf(pipeline.generate(t)));
      const stage = plan.stages.find((s) => s.shuffle?.id === shuffle[2]);
      if (!stage) return false;
      await this.stages().run(t, plan, () => {}, { stage, partitions: [Number(shuffle[3])] });
    } else {
      this.o.log({ event: 'recovery.impossible', key, reason: 'input blocks are the source of truth' });
      return false;
    }
    this.recomputed++;
    this.o.log({ event: 'recovery.recomputed', key, ms: Date.now() - started });
    return true;
  }

  /**
   * A recomputed partition must be the bytes batch t committed (its manifest's checksums): if not,
   * the operators are not deterministic. (Before issue 11 a lineage record left beside a lost
   * partition caught this; the record now goes with its object.)
   */
  private async checkDeterminism(
    t: number,
    stageId: number,
    recomputed: readonly LineageRecord[],
    operators: string[],
  ) {
    const bytes = await this.store.get(layout.manifest(t));
    const committed = bytes ? decodeJson<BatchManifest>(bytes).checksums : undefined;
    if (!committed) return;
    for (const l of recomputed) {
      const was = l && committed[l.key];
      if (was !== undefined && was !== l.checksum)
        warnNondeterministic(this.o.log, t, stageId, {
          lineage: { ...l, operators },
          committed: true,
          metrics: {
            readRequests: 0,
            writeRequests: 0,
            bytesRead: 0,
            bytesWritten: 0,
            recordsIn: 0,
            recordsOut: 0,
            deadLettered: 0,
          },
        });
    }
  }
}
