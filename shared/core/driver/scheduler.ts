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
import { CountingObjectStore } from '../counting-store.ts';
import type { FaultInjector } from '../faults.ts';
import type { BatchGeneration } from '../generation.ts';
import { IdlePath } from '../idle-path.ts';
import { layout } from '../layout.ts';
import type { LeaseRecord } from '../lease.ts';
import { BatchPlan, type Target } from '../planner.ts';
import { TaskRunner } from '../task-runner.ts';
import { BatchOrigins } from './batch-origin.ts';
import { BatchRetry } from './batch-retry.ts';
import { CommitOrder } from './commit-order.ts';
import { countTaskDeadLetters } from './dead-letters.ts';
import { drainUntilMs as drainUntil } from './drain.ts';
import { DriverFaultHooks } from './fault-hooks.ts';
import { DriverFence } from './fencing.ts';
import { InputTracker } from './input-tracker.ts';
import { LineageRecovery } from './lineage-recovery.ts';
import { type BatchManifest, BatchTally, Phases } from './manifest.ts';
import {
  type BatchSchedulerOptions,
  type ResolvedDriverOptions,
  type RunOptions,
  resolveDriverOptions,
} from './options.ts';
import { runOutputs, targetsOf } from './outputs.ts';
import { RateController } from './rate-controller.ts';
import { resumePoint } from './resume.ts';
import { Retention } from './retention.ts';
import type { SkippedBatch } from './skip.ts';
import { StageRunner } from './stage-runner.ts';
import { processingStart, sleepUntil } from './timing.ts';

/** A batch's plan made ahead (a backlog announces every batch's materializations first). */
interface Prepared {
  readonly plan: BatchPlan;
  readonly done: Map<string, () => void>;
}

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
  private readonly batchRetry: BatchRetry;
  private readonly runner: TaskRunner;
  private pipelineValue: Pipeline | undefined;
  private nextTimeMs = 0;
  private lastCommittedMs: number | undefined;
  private pending: number[] = [];
  private started = false;
  private stopping = false;
  private fenceOf = DriverFence.none;
  private readonly commitOrder = new CommitOrder();
  /** Which batches are re-runs after a restart and which were closed to catch up (manifest flags). */
  private readonly origins = new BatchOrigins();
  private skipped = new Map<number, SkippedBatch>();
  /** idle fast path (issue 11): empty batches of a quiet stream, committed in idle spans. */
  private readonly idlePath: IdlePath;

  constructor(ctx: StreamingContext, options: BatchSchedulerOptions) {
    this.ctx = ctx;
    const o = resolveDriverOptions(options);
    this.options = o;
    const log = (e: Record<string, unknown>) => this.log(e);
    this.hooks = new DriverFaultHooks(o.faults, o.incarnation, {
      onCrash: () => {
        this.stopping = true; // a dead driver runs nothing more; its lease is left to expire
        this.fenceOf.stop();
      },
      log,
    });
    // overload faults decorate the ports (shared/core/driver/faulty-store.ts, faulty-invoker.ts)
    this.store = new CountingObjectStore(this.hooks.decorateStore(o.store));
    this.invoker = this.hooks.decorateInvoker(o.invoker);
    this.batchRetry = new BatchRetry(o.batchRetry ?? {}, log);
    this.runner = new TaskRunner({
      invoker: this.invoker,
      maxTaskAttempts: o.maxTaskAttempts,
      taskTimeoutMs: o.taskTimeoutMs,
      retryBackoffMs: o.retryBackoffMs,
      speculation: o.speculation ?? {},
      faults: this.hooks.injector,
      recover: (key) => this.lineage.recover(key),
      log,
    });
    this.rate = new RateController({
      intervalMs: ctx.batchIntervalMs,
      maxRecordsPerBatch: o.maxRecordsPerBatch,
      adaptive: o.backpressure && o.clock !== 'manual',
      log,
    });
    this.inputs = new InputTracker(ctx, this.store, {
      manualClock: o.clock === 'manual',
      maxRecords: () => this.rate.maxRecords,
      fence: (what) => this.fenceOf.check(what),
    });
    // idle fast path (issue 11)
    this.idlePath = new IdlePath(ctx, this.store, {
      enabled: o.idleFastPath !== false,
      fingerprint: () => this.pipeline.fingerprint,
    });
    this.stages = new StageRunner(ctx, () => this.pipeline, this.runner, {
      isSkipped: (t) => this.skipped.has(t),
      idleSpans: (t) => this.idlePath.specSpans(t, this.retention.historyMs),
      log,
      tinyBatch: o.tinyBatch, // issue 11: a tiny batch runs in the driver (tiny-batch.ts)
      taskStore: this.store.inner,
    });
    this.lineage = new LineageRecovery(
      this.store,
      () => this.pipeline,
      () => this.stages,
      {
        targetsOf: (gen) => this.targetsOf(gen),
        log,
      },
    );
    this.retention = new Retention(ctx, this.store, o, (t) => this.idlePath.spans.contains(t));
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
    return this.pending[0] ?? this.nextTimeMs;
  }

  /** idle fast path (issue 11): how long the stream has been idle, batch after batch (ms). */
  get idleForMs(): number {
    return this.idlePath.idleForMs;
  }

  get lastCommittedBatchMs(): number | undefined {
    return this.lastCommittedMs;
  }

  /** Loads or creates meta/graph.json, checks the graph, finds where to resume, starts sources. */
  async start(): Promise<void> {
    if (this.started) return;
    const ctx = this.ctx;
    if (this.options.lease !== false) {
      this.fenceOf = await DriverFence.take(this.store, this.options.lease, (e) => this.log(e));
    }
    const at = await resumePoint(ctx, this.store, this.inputs, this.idlePath, this.options);
    this.pipelineValue = at.pipeline;
    this.lastCommittedMs = at.lastCommittedMs;
    this.pending = at.pending;
    this.origins.restarted(this.pending);
    this.skipped = at.skipped;
    this.nextTimeMs = at.nextTimeMs;
    await this.inputs.startSources(this.options.sources);
    this.started = true;
    this.log({
      event: 'driver.start',
      store: this.store.describe(),
      invoker: this.invoker.describe(),
      zeroTimeMs: at.pipeline.zeroTimeMs,
      resumeAtMs: this.nextBatchTimeMs,
      pending: this.pending.length,
      fingerprint: this.pipeline.fingerprint,
    });
  }

  /** True when every finite source is exhausted and no batch is pending. */
  sourcesExhausted(): boolean {
    return this.pending.length === 0 && this.inputs.exhausted;
  }

  /**
   * Runs batches until `numBatches` ran, `untilMs` (a batch time) passed, `signal` aborted, or
   * every source is exhausted (`stopWhenExhausted`).
   */
  async run(options: RunOptions = {}): Promise<BatchManifest[]> {
    await this.start();
    const manifests: BatchManifest[] = [];
    const wall = this.options.clock !== 'manual';
    const parallel = this.options.parallelRecovery;
    let drainUntilMs: number | undefined;
    while (!this.stopping && !options.signal?.aborted) {
      const left = options.numBatches === undefined ? Infinity : options.numBatches - manifests.length;
      if (left <= 0) break;
      // idle fast path (issue 11): idle long enough, the caller may sleep
      if (options.stopWhenIdleMs !== undefined && this.idlePath.idleForMs >= options.stopWhenIdleMs) break;
      const t = this.nextBatchTimeMs;
      if (options.untilMs !== undefined && t > options.untilMs) break;
      if (options.stopWhenExhausted && this.sourcesExhausted()) {
        // finite sources ended: go on (without waiting) until the windows holding their data emitted
        drainUntilMs ??= drainUntil(this.ctx, t, (e) => this.log(e));
        if (t > drainUntilMs) break;
      }
      if (options.deadlineMs !== undefined) {
        // leave room for one more batch: its interval plus the slowest recent processing time
        const need = Math.max(t, Date.now()) + this.ctx.batchIntervalMs + this.rate.slowestRecentMs;
        if (need > options.deadlineMs) break;
      }
      // close the interval: polling sources (SQS) collect during it, buffering ones hand over after
      if (wall && drainUntilMs === undefined) {
        await sleepUntil(this.inputs.polls ? t - this.ctx.batchIntervalMs : t, options.signal);
      }
      if (options.signal?.aborted) break;
      if (wall && drainUntilMs === undefined && this.pending.length === 0 && parallel) {
        // far behind (a driver took over after a gap): close every batch already due, run them as a backlog
        const due = this.rate.dueBacklog(t, Date.now(), left);
        if (due > 0) await this.retrying(options.signal, () => this.closeBatches(due));
      }
      if (this.pending.length > 1 && parallel) {
        // catch up within capacity: as many batches at once as the (adaptive) invoker limit serves
        const chunk = this.rate.catchUpChunk(this.runner.limiter.limit, this.ctx.defaultPartitions);
        const n = Math.min(left, this.pending.length, chunk);
        manifests.push(...(await this.retrying(options.signal, () => this.fenceOf.race(this.runBacklog(n)))));
        continue;
      }
      const m = await this.retrying(options.signal, () => this.fenceOf.race(this.runNextBatch()));
      this.rate.recordProcessing(m.processingMs);
      manifests.push(m);
    }
    return manifests;
  }

  /** Runs `step` again after a retryable failure (BatchRetry: bounded, with backoff); else rethrows. */
  private retrying<R>(signal: AbortSignal | undefined, step: () => Promise<R>): Promise<R> {
    return this.batchRetry.run(step, {
      batchTimeMs: () => this.nextBatchTimeMs,
      signal,
      beforeRetry: () => {
        // a failed batch made the ones after it fail; the retry starts a fresh commit order
        this.commitOrder.reset();
        // records a source handed out for an input that was never stored are asked for again
        this.inputs.rewind();
      },
    });
  }

  async stop(): Promise<void> {
    // idle fast path (issue 11): commit the open idle span while the lease is still ours
    if (this.started && this.idlePath.hasOpenSpan && !this.fenceOf.keeper?.fenced) await this.flushIdle();
    // clean-up runs once a block of batch times (retention.ts): the rest now (and so before a sleep)
    if (this.started && !this.fenceOf.keeper?.fenced) await this.retention.flush(this.pipeline);
    this.stopping = true;
    this.fenceOf.stop();
    await this.inputs.stopSources();
    await this.fenceOf.release();
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
    await this.fenceOf.check('the next batch');
    const times = this.pending.slice(0, n);
    this.log({ event: 'recovery.backlog', batches: times });
    // announce what every batch will materialize before any starts, so each can wait for its inputs
    const prepared = new Map(
      times.map((t) => {
        const plan = new BatchPlan(t, this.targetsOf(this.pipeline.generate(t)));
        return [t, { plan, done: this.stages.announce(t, plan) }] as const;
      }),
    );
    // every batch settles before a failure is reported, so a retry never overlaps a leftover
    const settled = await Promise.allSettled(
      times.map((t) => this.runBatch(t, this.origins.isRecovered(t), prepared.get(t))),
    );
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    this.pending.splice(0, n);
    return settled.map((r) => (r as PromiseFulfilledResult<BatchManifest>).value);
  }

  /**
   * Closes the next `n` batches: receives their input and writes their write-ahead entries, without
   * running them. They become pending and run as a backlog (catch-up after a gap, and tests).
   */
  async closeBatches(n: number): Promise<number[]> {
    await this.start();
    await this.fenceOf.check('the next batch');
    const closed: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = this.nextTimeMs;
      await this.inputs.receive(t);
      this.pending.push(t);
      this.origins.closedBehind(t);
      this.nextTimeMs = t + this.ctx.batchIntervalMs;
      closed.push(t);
    }
    return closed;
  }

  /** idle fast path (issue 11): commits the open idle span (one put-if-absent), fenced. */
  private async flushIdle(): Promise<void> {
    await this.fenceOf.check('an idle span');
    await this.idlePath.flush();
  }

  /**
   * idle fast path (issue 11): commits every batch due before `nowMs` as idle without polling the
   * sources, when the stream is quiet and nothing is pending (a sleeping scheduler woken by
   * messages: they go to the current batch). Returns how many batches it committed.
   */
  async fillIdleUntil(nowMs: number): Promise<number> {
    await this.start();
    let n = 0;
    const none = { get: 0, put: 0, list: 0, delete: 0, bytesRead: 0, bytesWritten: 0 };
    while (this.pending.length === 0 && this.nextTimeMs + this.ctx.batchIntervalMs <= nowMs) {
      const t = this.nextTimeMs;
      if (!this.idlePath.quietAt(t)) break;
      if (this.idlePath.add(t, none)) await this.flushIdle();
      this.lastCommittedMs = t;
      this.nextTimeMs = t + this.ctx.batchIntervalMs;
      n++;
    }
    if (n > 0) await this.flushIdle();
    this.idlePath.woke(); // the span it slept through must not send it back to sleep at once
    return n;
  }

  /** Runs the next batch (a pending one first) and commits it. */
  async runNextBatch(): Promise<BatchManifest> {
    await this.start();
    await this.fenceOf.check('the next batch');
    const t = this.nextBatchTimeMs;
    const recovered = this.pending[0] === t;
    const manifest = await this.runBatch(t, recovered && this.origins.isRecovered(t));
    if (recovered) this.pending.shift();
    else this.nextTimeMs = t + this.ctx.batchIntervalMs;
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
      this.pending.length === 0 && t > (this.lastCommittedMs ?? -1) && this.idlePath.quietAt(t);
    const existing = quietNext ? undefined : await this.readJson<BatchManifest>(layout.manifest(t));
    if (existing) {
      this.lastCommittedMs = t;
      return existing;
    }
    const recomputedBefore = this.lineage.recomputed;

    // 1. receive: blocks, write-ahead entry, ack (on SQS the poll is the interval itself)
    const marks = { polledAt: 0 };
    const receiveStart = Date.now();
    const received = await this.inputs.receiveOrIdle(
      t,
      marks,
      (polled) => this.idlePath.canSkip(t, polled, this.pending.length) && !this.skipped.has(t),
    );
    // idle fast path (issue 11): an idle batch joins the open span; otherwise the span commits first
    if (!received)
      return this.commitIdle(t, previous, { dueAtMs: manual ? startedAtMs : t, startedAtMs }, requestsBefore);
    if (this.idlePath.hasOpenSpan) await this.flushIdle();
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
    this.lastCommittedMs = Math.max(t, this.lastCommittedMs ?? t);
    this.origins.forget(t);
    await this.hooks.afterCommit(t, plan, this.store);

    // 6. rate and clean-up
    this.rate.onBatchCompleted(manifest);
    this.pipeline.forget(t - 4 * this.ctx.batchIntervalMs);
    this.inputs.forget(t);
    this.options.onBatch?.(manifest);
    return manifest;
  }

  /** idle fast path (issue 11): commits batch t in the open idle span; foreachRDD and print see an empty RDD. */
  private async commitIdle(
    t: number,
    previous: Promise<boolean>,
    timing: { dueAtMs: number; startedAtMs: number },
    requestsBefore: ReturnType<CountingObjectStore['snapshot']>,
  ): Promise<BatchManifest> {
    if (!(await previous)) {
      throw new BatchFailedError(t, `the batch before it failed; batches commit in time order`);
    }
    await this.retention.cleanUp(t, this.pipeline); // before the span counts the batch's requests
    const full = this.idlePath.add(t, this.store.since(requestsBefore), this.inputs.idlePositions);
    if (this.ctx.graph.outputs.some((o) => o.kind === 'foreach')) {
      const gen = this.pipeline.generate(t);
      gen.store = this.store;
      gen.idleSpans = this.idlePath.specSpans(t, this.retention.historyMs).idleSpans;
      await runOutputs(this.ctx, this.store, t, gen, undefined, (key) => this.lineage.recover(key));
    }
    if (full) await this.flushIdle();
    const finishedAtMs = Date.now();
    const manifest = this.idlePath.manifest(
      t,
      this.pipeline.fingerprint,
      { ...timing, finishedAtMs },
      this.store.since(requestsBefore),
    );
    this.lastCommittedMs = Math.max(t, this.lastCommittedMs ?? t);
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
