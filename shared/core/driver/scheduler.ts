/**
 * The driver's batch loop, as Spark's `JobGenerator` (one tick per interval: allocate the
 * received blocks to the batch, generate its jobs, submit them, checkpoint, clear old metadata).
 * `BatchScheduler` closes each interval, has the input tracker receive it, generates and plans
 * the batch, has the stage runner run its stages, runs its outputs, commits its manifest and
 * cleans up. Every job it delegates lives in its own room beside this file: see
 * docs/ARCHITECTURE.md. The same code runs in `sluice run` and inside the scheduler Lambda.
 * An empty batch of a quiet stream takes the idle fast path (issue 11, `../idle-path.ts`): no
 * task, nothing stored but its place in an idle span.
 *
 * @module
 */
import { BatchFailedError, SluiceError } from '../../errors.ts';
import type { Invoker } from '../../ports/invoker.ts';
import { decodeJson as decodeJsonOf, encodeJson } from '../codec.ts';
import type { Pipeline, StreamingContext } from '../context.ts';
import type { CountingObjectStore } from '../counting-store.ts';
import type { FaultInjector } from '../faults.ts';
import type { BatchGeneration } from '../generation.ts';
import type { IdlePath } from '../idle-path.ts';
import { layout } from '../layout.ts';
import type { LeaseRecord } from '../lease.ts';
import { BatchPlan, type Target } from '../planner.ts';
import type { TaskRunner } from '../task-runner.ts';
import { closeBatches, type Prepared, runBacklog } from './backlog.ts';
import { BatchOrigins } from './batch-origin.ts';
import { CommitOrder } from './commit-order.ts';
import { countTaskDeadLetters } from './dead-letters.ts';
import type { DriverFaultHooks } from './fault-hooks.ts';
import { DriverFence } from './fencing.ts';
import { IdleBatches } from './idle-batches.ts';
import type { InputTracker } from './input-tracker.ts';
import type { LineageRecovery } from './lineage-recovery.ts';
import { type BatchManifest, BatchTally, Phases } from './manifest.ts';
import {
  type BatchSchedulerOptions,
  type ResolvedDriverOptions,
  type RunOptions,
  resolveDriverOptions,
} from './options.ts';
import { runOutputs, targetsOf } from './outputs.ts';
import { BatchPositions } from './positions.ts';
import type { RateController } from './rate-controller.ts';
import type { Retention } from './retention.ts';
import { runLoop } from './run-loop.ts';
import type { SkippedBatch } from './skip.ts';
import type { StageRunner } from './stage-runner.ts';
import { shutDown, startUp } from './start-up.ts';
import { processingStart } from './timing.ts';
import { type DriverHandles, type DriverRooms, wireRooms } from './wiring.ts';

/**
 * The driver. After a restart it resumes from the last committed batch, re-running first any
 * batch whose input was received but not committed.
 */
export class BatchScheduler {
  readonly ctx: StreamingContext;
  readonly store: CountingObjectStore;
  readonly invoker: Invoker;
  private readonly options: ResolvedDriverOptions;
  private readonly hooks: DriverFaultHooks;
  private readonly inputs: InputTracker;
  private readonly rate: RateController;
  private readonly stages: StageRunner;
  private readonly lineage: LineageRecovery;
  private readonly retention: Retention;
  private readonly runner: TaskRunner;
  private readonly rooms: DriverRooms;
  private readonly handles: DriverHandles;
  private pipelineValue: Pipeline | undefined;
  private readonly at = new BatchPositions();
  private started = false;
  private stopping = false;
  private fenceOf = DriverFence.none;
  private readonly commitOrder = new CommitOrder();
  /** Which batches are re-runs after a restart and which were closed to catch up (manifest flags). */
  private readonly origins = new BatchOrigins();
  private skipped = new Map<number, SkippedBatch>();
  /** idle fast path (issue 11): empty batches of a quiet stream, committed in idle spans. */
  private readonly idlePath: IdlePath;
  private readonly idle: IdleBatches;

  constructor(ctx: StreamingContext, options: BatchSchedulerOptions) {
    this.ctx = ctx;
    const o = (this.options = resolveDriverOptions(options));
    this.handles = {
      onCrash: () => {
        this.stopping = true; // a dead driver runs nothing more; its lease is left to expire
        this.fenceOf.stop();
      },
      fence: () => this.fenceOf,
      pipeline: () => this.pipeline,
      isSkipped: (t) => this.skipped.has(t),
      targetsOf: (gen) => this.targetsOf(gen),
      log: (e) => this.log(e),
      stopping: () => this.stopping,
      commitOrder: this.commitOrder,
      at: this.at,
    };
    const r = (this.rooms = wireRooms(ctx, o, this.handles));
    ({ hooks: this.hooks, store: this.store, invoker: this.invoker, runner: this.runner } = r);
    ({ rate: this.rate, inputs: this.inputs, idlePath: this.idlePath, stages: this.stages } = r);
    ({ lineage: this.lineage, retention: this.retention } = r);
    this.idle = new IdleBatches(ctx, o, r, this.handles);
  }

  /** The fault injector (undefined without fault options): its counts tell what was injected. */
  get faults(): FaultInjector | undefined {
    return this.hooks.injector;
  }

  get pipeline(): Pipeline {
    if (!this.pipelineValue) throw new SluiceError('BatchScheduler.start() has not been called');
    return this.pipelineValue;
  }

  /** The time of the next batch to run. */
  get nextBatchTimeMs(): number {
    return this.at.pending[0] ?? this.at.nextTimeMs;
  }

  /** idle fast path (issue 11): how long the stream has been idle, batch after batch (ms). */
  get idleForMs(): number {
    return this.idlePath.idleForMs;
  }

  get lastCommittedBatchMs(): number | undefined {
    return this.at.lastCommittedMs;
  }

  /** Loads or creates meta/graph.json, checks the graph, finds where to resume, starts sources. */
  async start(): Promise<void> {
    if (this.started) return;
    await startUp(this.ctx, this.options, this.rooms, this.handles, this.origins, {
      fenced: (fence) => (this.fenceOf = fence),
      resumed: (pipeline, skipped) => {
        this.pipelineValue = pipeline;
        this.skipped = skipped;
      },
      started: () => (this.started = true),
    });
  }

  /** True when every finite source is exhausted and no batch is pending. */
  sourcesExhausted(): boolean {
    return this.at.pending.length === 0 && this.inputs.exhausted;
  }

  /**
   * Runs batches until `numBatches` ran, `untilMs` (a batch time) passed, `signal` aborted, or
   * every source is exhausted (`stopWhenExhausted`).
   */
  async run(options: RunOptions = {}): Promise<BatchManifest[]> {
    await this.start();
    return runLoop(this, { options: this.options, rooms: this.rooms, d: this.handles }, options);
  }

  async stop(): Promise<void> {
    await shutDown(this.rooms, this.handles, this.idle, this.started, () => (this.stopping = true));
  }

  /** The lease this driver holds (undefined without one). */
  get leaseRecord(): LeaseRecord | undefined {
    return this.fenceOf.record;
  }

  /**
   * Re-runs the first `n` pending batches at once: each stage starts as soon as what it reads
   * exists (a state partition of the previous batch, say), so independent work of different
   * batches proceeds in parallel, as in the paper's parallel recovery.
   */
  async runBacklog(n: number): Promise<BatchManifest[]> {
    return runBacklog(n, this.handles, this.rooms, this.origins, (t, r, p) => this.runBatch(t, r, p));
  }

  /**
   * Closes the next `n` batches: receives their input and writes their write-ahead entries, without
   * running them. They become pending and run as a backlog (catch-up after a gap, and tests).
   */
  async closeBatches(n: number): Promise<number[]> {
    await this.start();
    return closeBatches(n, this.ctx, this.handles, this.rooms, this.origins);
  }

  /**
   * idle fast path (issue 11): commits every batch due before `nowMs` as idle without polling the
   * sources, when the stream is quiet and nothing is pending (a sleeping scheduler woken by
   * messages: they go to the current batch). Returns how many batches it committed.
   */
  async fillIdleUntil(nowMs: number): Promise<number> {
    await this.start();
    return this.idle.fillUntil(nowMs);
  }

  /** Runs the next batch (a pending one first) and commits it. */
  async runNextBatch(): Promise<BatchManifest> {
    await this.start();
    await this.fenceOf.check('the next batch');
    const t = this.nextBatchTimeMs;
    const recovered = this.at.pending[0] === t;
    const manifest = await this.runBatch(t, recovered && this.origins.isRecovered(t));
    if (recovered) this.at.pending.shift();
    else this.at.nextTimeMs = t + this.ctx.batchIntervalMs;
    return manifest;
  }

  private async runBatch(t: number, recovered: boolean, prepared?: Prepared): Promise<BatchManifest> {
    try {
      // its own request counter: batches of a backlog run at once, each counts only its requests
      return await this.commitOrder.next((previous) =>
        this.store.scoped(() => this.runBatchInner(t, recovered, previous, prepared)),
      );
    } catch (err) {
      for (const release of prepared?.done.values() ?? []) release();
      throw err;
    }
  }

  /** One batch: receive, generate, plan, run stages, outputs, commit, clean up. */
  private async runBatchInner(
    t: number,
    recovered: boolean,
    previous: Promise<boolean>,
    prepared: Prepared | undefined,
  ): Promise<BatchManifest> {
    const manual = this.options.clock === 'manual';
    const startedAtMs = Date.now();
    const requestsBefore = this.store.snapshot();
    const phases = new Phases();
    // idle fast path (issue 11): a quiet stream's next batch cannot have a manifest yet (one driver, leased)
    const quietNext =
      this.at.pending.length === 0 && t > (this.at.lastCommittedMs ?? -1) && this.idlePath.quietAt(t);
    const existing = quietNext ? undefined : await this.readJson<BatchManifest>(layout.manifest(t));
    if (existing) {
      this.at.lastCommittedMs = t;
      return existing;
    }
    const recomputedBefore = this.lineage.recomputed;

    // 1. receive: blocks, write-ahead entry, ack (on SQS the poll is the interval itself)
    const marks = { polledAt: 0 };
    const receiveStart = Date.now();
    const received = await this.inputs.receiveOrIdle(
      t,
      marks,
      (polled) => this.idlePath.canSkip(t, polled, this.at.pending.length) && !this.skipped.has(t),
    );
    // idle fast path (issue 11): an idle batch joins the open span; otherwise the span commits first
    if (!received)
      return this.idle.commit(
        t,
        previous,
        { dueAtMs: manual ? startedAtMs : t, startedAtMs },
        requestsBefore,
      );
    if (this.idlePath.hasOpenSpan) await this.idle.flush();
    this.stages.sized(t, received, this.store.since(requestsBefore).bytesWritten); // tiny batch? (issue 11)
    // Spark's rule: processing starts when the interval closes; polling before that (SQS) is the
    // receive window, kept apart (receiveWindowMs) and out of processing and scheduling delay
    const processingStartMs = manual ? startedAtMs : processingStart(startedAtMs, Date.now(), t);
    phases.ms.receive = Math.max(
      0,
      (marks.polledAt || receiveStart) - Math.max(receiveStart, processingStartMs),
    );
    phases.ms.writeInput = Date.now() - Math.max(marks.polledAt, receiveStart);
    this.hooks.at(t, 'afterReceive');

    // 2. generate and plan
    const gen = this.pipeline.generate(t);
    const plan = prepared?.plan ?? new BatchPlan(t, this.targetsOf(gen));
    const done = prepared?.done ?? this.stages.announce(t, plan);

    // 3. run the stages
    const tally = new BatchTally(this.runner.limiter.limit);
    const lineages = await phases.time('tasks', () =>
      this.stages.run(t, plan, (stage, results, report) => {
        tally.onStage(stage, results, report);
        if (stage.target?.kind === 'rdd') done.get(stage.target.name)?.();
      }),
    );
    this.hooks.at(t, 'afterTasks');

    // 4. outputs, in time order also when a backlog of batches is re-run in parallel
    gen.materialized = plan.materializedNames();
    gen.store = this.stages.storeOf(t, this.store); // a tiny batch's own RDDs are in memory (issue 11)
    gen.idleSpans = this.idlePath.specSpans(t, this.retention.historyMs).idleSpans; // idle fast path (issue 11)
    gen.inputBlocks = this.inputs.blocks.lists; // issue 14: driver-side reads of input partitions
    if (!(await previous)) {
      throw new BatchFailedError(t, `the batch before it failed; batches commit in time order`);
    }
    if (!this.skipped.has(t)) {
      await phases.time('outputs', () =>
        runOutputs(this.ctx, this.store, t, gen, plan, (key) => this.lineage.recover(key)),
      );
    }

    await this.retention.cleanUp(t, this.pipeline, this.stages.storedNothing(t)); // before the manifest, which counts its requests
    // 5. commit: the manifest (one rule for dead letters: a record computed by two stages is one)
    const taskDeadLetters =
      tally.taskMetrics.deadLettered > 0 ? await countTaskDeadLetters(this.store, t) : 0;
    const manifest = tally.build({
      t,
      fingerprint: this.pipeline.fingerprint,
      dueAtMs: manual ? startedAtMs : t,
      startedAtMs,
      processingStartMs,
      finishedAtMs: Date.now(),
      recovered,
      catchUp: this.origins.catchUpOf(t),
      received,
      plan,
      lineages,
      phases: phases.ms,
      recomputed: this.lineage.recomputed - recomputedBefore,
      taskDeadLetters,
      requests: this.store.since(requestsBefore),
      skipped: this.skipped.get(t),
    });
    this.hooks.at(t, 'beforeCommit');
    await this.hooks.beforeCommit(t, this.fenceOf.keeper);
    await phases.time('commit', async () => {
      await this.fenceOf.check(`the manifest of batch ${t}`);
      await this.store.putIfAbsent(layout.manifest(t), encodeJson(manifest));
    });
    this.idlePath.worked(manifest); // idle fast path (issue 11)
    this.stages.settled(t);
    this.at.lastCommittedMs = Math.max(t, this.at.lastCommittedMs ?? t);
    this.origins.forget(t);
    await this.hooks.afterCommit(t, plan, this.store);

    // 6. rate and clean-up
    this.rate.onBatchCompleted(manifest);
    this.pipeline.forget(t - 4 * this.ctx.batchIntervalMs);
    this.inputs.forget(t);
    this.options.onBatch?.(manifest);
    return manifest;
  }

  private targetsOf(gen: BatchGeneration): Target[] {
    return targetsOf(this.ctx, this.pipeline, gen, this.skipped.has(gen.batchTimeMs));
  }

  private async readJson<T>(key: string): Promise<T | undefined> {
    const bytes = await this.store.get(key);
    return bytes ? decodeJsonOf<T>(bytes) : undefined;
  }

  private log(event: Record<string, unknown>): void {
    this.options.log?.(event);
  }
}
