import { hostname } from 'node:os';
import {
  BatchFailedError,
  ConfigError,
  IncompatibleGraphError,
  MissingDataError,
  SluiceError,
} from '../errors.ts';
import type { Invoker } from '../ports/invoker.ts';
import type { ObjectStore } from '../ports/object-store.ts';
import type { DeadLetter, Source } from '../ports/source.ts';
import type { ConcurrencyRange } from './adaptive-limiter.ts';
import { BatchOrigins } from './batch-origin.ts';
import { BatchRetry, type BatchRetryOptions, backlogChunk } from './batch-retry.ts';
import { decodeJson, encodeBlock, encodeJson, encodeJsonLines } from './codec.ts';
import { type PersistedStreamDescription, Pipeline, type StreamingContext } from './context.ts';
import { CountingObjectStore, type RequestCounts } from './counting-store.ts';
import { countTaskDeadLetters } from './dead-letters.ts';
import { deliveryOf } from './delivery.ts';
import { warnNondeterministic } from './determinism.ts';
import { drainSpanMs } from './drain.ts';
import type { DStream } from './dstream.ts';
import { type CrashPoint, DriverCrashError, FaultInjector, type FaultOptions } from './faults.ts';
import { ThrottlingInvoker } from './faulty-invoker.ts';
import { FaultyObjectStore } from './faulty-store.ts';
import { LeaseKeeper } from './fencing.ts';
import type { BatchGeneration } from './generation.ts';
import { IdlePath } from './idle-path.ts';
import { layout, parseTimeKey, timeKey } from './layout.ts';
import { DriverLease, type LeaseRecord } from './lease.ts';
import { BatchPlan, type Stage, type Target } from './planner.ts';
import { prepareSkips, type SkippedBatch } from './skip.ts';
import type { LineageRecord, TaskResult, TaskSpec } from './task.ts';
import { type SpeculationOptions, TaskRunner } from './task-runner.ts';
import { processingStart } from './timing.ts';

/** meta/graph.json: what the store was written by. */
export interface GraphMeta {
  readonly fingerprint: string;
  readonly zeroTimeMs: number;
  readonly batchIntervalMs: number;
  readonly partitions: number;
  readonly persisted: readonly PersistedStreamDescription[];
  readonly graph: unknown;
  readonly createdAtMs: number;
}

/** batches/<t>/received.json: the write-ahead entry of a batch's input. */
export interface ReceivedEntry {
  readonly batchTimeMs: number;
  readonly receivedAtMs: number;
  readonly streams: Record<
    string,
    {
      records: number;
      blocks: number;
      deadLetters: number;
      deliveryIds?: string[];
      position?: unknown;
      delivery?: { redelivered: number; duplicates: number };
      capped: boolean;
    }
  >;
}

export interface StageReport {
  readonly id: number;
  readonly kind: 'shuffle' | 'result';
  readonly target: string;
  readonly operators: readonly string[];
  readonly tasks: number;
  readonly attempts: number;
  readonly retries: number;
  readonly speculative: number;
  readonly startedAtMs: number;
  readonly durationMs: number;
  readonly records: number;
  readonly bytes: number;
  readonly taskDurationsMs: readonly number[];
  /** Invocations refused as throttled (retried, not counted as failures). */
  readonly throttled?: number;
  /** The adaptive concurrency limit's range while the stage ran. */
  readonly concurrency?: ConcurrencyRange;
}

/** manifests/<t>.json: a committed batch. */
export interface BatchManifest {
  readonly batchTimeMs: number;
  readonly fingerprint: string;
  readonly status: 'committed';
  /** When the batch was due (its end time, on the wall clock runner). */
  readonly dueAtMs: number;
  readonly startedAtMs: number;
  readonly finishedAtMs: number;
  readonly schedulingDelayMs: number;
  readonly processingMs: number;
  readonly totalDelayMs: number;
  /** Re-run after a restart: its write-ahead entry existed, without a manifest, when the driver started. */
  readonly recovered: boolean;
  /**
   * Closed as part of a catch-up backlog by a driver two or more intervals behind the clock
   * (workers warming up, a slow batch, a gap after a restart): not a re-run (see batch-origin.ts).
   * Absent otherwise, and in manifests written before it was recorded.
   */
  readonly catchUp?: boolean;
  /**
   * Time spent polling a source (SQS) before the interval closed, before `startedAtMs`: not
   * processing (absent in manifests written before it was recorded).
   */
  readonly receiveWindowMs?: number;
  /** Messages received again and not counted (SQS): see delivery.ts. Absent when the source has no such counts. */
  readonly delivery?: { readonly redelivered: number; readonly duplicates: number };
  readonly input: { readonly records: number; readonly deadLetters: number; readonly capped: boolean };
  readonly phases: Record<string, number>;
  readonly stages: readonly StageReport[];
  readonly outputs: readonly {
    name: string;
    kind: string;
    reason: string;
    partitions: number;
    records: number;
  }[];
  readonly tasks: {
    readonly total: number;
    readonly attempts: number;
    readonly retries: number;
    readonly speculative: number;
    readonly recomputed: number;
    /** Invocations refused as throttled and retried with backoff (not failures). */
    readonly throttled?: number;
    /** The range of the adaptive invoker concurrency (AIMD) while the batch's stages ran. */
    readonly concurrency?: ConcurrencyRange;
  };
  readonly deadLettered: number;
  readonly requests: RequestCounts;
  /** Set when the batch was skipped on request (`--skip-batch`): why, and how many input records. */
  readonly skipped?: { readonly reason: string; readonly records: number };
  /** An idle batch (issue 11): committed in an idle span (idle/), no manifest of its own. */
  readonly idle?: true;
}

export interface BatchSchedulerOptions {
  readonly store: ObjectStore;
  readonly invoker: Invoker;
  /** Sources for `inputStream()`s, by input name (those built with a factory need none). */
  readonly sources?: Readonly<Record<string, Source<unknown>>>;
  /** `wall`: a batch starts once its interval has passed. `manual`: batches run back to back (tests, replay). */
  readonly clock?: 'wall' | 'manual';
  /** Zero time for a new store (default: now, aligned to the interval; 0 with the manual clock). */
  readonly zeroTimeMs?: number;
  readonly taskTimeoutMs?: number;
  readonly maxTaskAttempts?: number;
  readonly retryBackoffMs?: number;
  /** Backpressure: never take more than this many records into one batch. */
  readonly maxRecordsPerBatch?: number;
  /** Adaptive backpressure: when a batch took longer than the interval, cap the next one. Default true. */
  readonly backpressure?: boolean;
  /** How long input blocks and write-ahead entries stay (for replay and recovery). Default 1 hour. */
  readonly retainInputsMs?: number;
  /**
   * The driver lease (one driver per store). `owner` names this driver; the lease lasts
   * `durationMs` and is renewed while batches run unless `renew` is false (the scheduler Lambda
   * takes it until its own deadline). Default: owner `<host>:<pid>`, 30 s, renewed. `false`: no lease.
   */
  readonly lease?:
    | false
    | {
        readonly owner?: string;
        readonly durationMs?: number;
        readonly renew?: boolean;
        /** Take the lease even from a live holder (`sluice run --force`); it is fenced. */
        readonly force?: boolean;
        /** Allowed clock difference between drivers (default 2 s, at most a tenth of the duration). */
        readonly skewMs?: number;
      };
  /** Speculative copies of stragglers (on by default). */
  readonly speculation?: SpeculationOptions;
  /** Keep every n-th batch's state for recovery, so lineage never walks back further. Default 10. */
  readonly checkpointEvery?: number;
  /** Re-run a backlog of uncommitted batches in parallel, as far as their dependencies allow. Default true. */
  readonly parallelRecovery?: boolean;
  /** Fault injection (off by default): see FaultOptions. */
  readonly faults?: FaultOptions;
  /** Batches to skip (stored, not committed): see shared/core/skip.ts. Default none. */
  readonly skipBatches?: readonly number[];
  /** A batch failing for a retryable cause is run again by the same driver (default 3 tries, 1 s backoff). */
  readonly batchRetry?: BatchRetryOptions;
  /** Which life of this driver this is (fault injection decides crashes per incarnation). */
  readonly incarnation?: number;
  /** The idle fast path for empty batches (shared/core/empty-batch.ts). Default true. */
  readonly idleFastPath?: boolean;
  readonly onBatch?: (manifest: BatchManifest) => void;
  readonly log?: (event: Record<string, unknown>) => void;
}

/**
 * The driver: closes each interval into input blocks, plans the batch, runs its tasks through the
 * invoker (retrying failures), runs output operations and commits the batch in a manifest. After
 * a restart it resumes from the last committed batch, re-running any batch whose input was
 * received but not committed. The same code runs in `sluice run` and inside the scheduler Lambda.
 */
export class BatchScheduler {
  readonly ctx: StreamingContext;
  readonly store: CountingObjectStore;
  readonly invoker: Invoker;
  private readonly options: BatchSchedulerOptions;
  private readonly batchRetry: BatchRetry;
  private pipelineValue: Pipeline | undefined;
  private readonly sources = new Map<string, Source<unknown>>();
  private nextTimeMs = 0;
  private lastCommittedMs: number | undefined;
  private pending: number[] = [];
  private readonly seenDeliveries = new Map<string, number>();
  private cap: number | undefined;
  /** Source positions from the last received batch, handed to each source on its first receive. */
  private resumePositions = new Map<string, unknown>();
  /** Source positions in the latest write-ahead entry: a retried batch rewinds its sources to them. */
  private readonly receivedPositions = new Map<string, unknown>();
  private started = false;
  private stopping = false;
  private lease: DriverLease | undefined;
  private keeper: LeaseKeeper | undefined;
  /** Which batches are re-runs after a restart and which were closed to catch up (manifest flags). */
  private readonly origins = new BatchOrigins();
  private readonly runner: TaskRunner;
  readonly faults: FaultInjector | undefined;
  private readonly recovering = new Map<string, Promise<boolean>>();
  /** Materializations in flight, by `rdd/<t>/<name>/` prefix: a backlog batch waits for what it reads. */
  private readonly materializing = new Map<string, Promise<void>>();
  private recomputedCount = 0;
  /** Resolves true once the latest started batch committed, false if it failed. */
  private previousBatch: Promise<boolean> = Promise.resolve(true);
  private readonly recentProcessing: number[] = [];
  private skipped = new Map<number, SkippedBatch>();
  /** idle fast path (issue 11): empty batches of a quiet stream, committed in idle spans. */
  private readonly idlePath: IdlePath;
  private idlePositions: Record<string, unknown> = {};

  private get slowestRecentMs(): number {
    return Math.max(0, ...this.recentProcessing);
  }

  constructor(ctx: StreamingContext, options: BatchSchedulerOptions) {
    this.ctx = ctx;
    this.options = options;
    this.store = new CountingObjectStore(options.store);
    this.invoker = options.invoker;
    const positive = (name: keyof BatchSchedulerOptions) => {
      const v = options[name];
      if (v !== undefined && (typeof v !== 'number' || !(v > 0))) {
        throw new ConfigError(name, `must be a positive number, got ${String(v)}`);
      }
    };
    for (const name of [
      'taskTimeoutMs',
      'maxTaskAttempts',
      'retryBackoffMs',
      'maxRecordsPerBatch',
      'retainInputsMs',
    ] as const) {
      positive(name);
    }
    positive('checkpointEvery');
    this.faults = options.faults ? new FaultInjector(options.faults) : undefined;
    // overload faults wrap the ports (shared/core/faulty-store.ts, faulty-invoker.ts)
    if (this.faults?.options.slowStore)
      this.store = new CountingObjectStore(
        new FaultyObjectStore(options.store, this.faults, options.incarnation),
      );
    if (this.faults?.options.throttleTasks) this.invoker = new ThrottlingInvoker(this.invoker, this.faults);
    this.batchRetry = new BatchRetry(options.batchRetry ?? {}, (e) => this.log(e));
    // idle fast path (issue 11)
    this.idlePath = new IdlePath(ctx, this.store, {
      enabled: options.idleFastPath !== false,
      fingerprint: () => this.pipeline.fingerprint,
    });
    this.runner = new TaskRunner({
      invoker: this.invoker,
      maxTaskAttempts: options.maxTaskAttempts ?? 4,
      taskTimeoutMs: options.taskTimeoutMs ?? 120_000,
      retryBackoffMs: options.retryBackoffMs ?? 50,
      speculation: options.speculation ?? {},
      faults: this.faults,
      recover: (key) => this.recover(key),
      log: (e) => this.log(e),
    });
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
    const leaseOptions = this.options.lease;
    if (leaseOptions !== false) {
      const durationMs = leaseOptions?.durationMs ?? 30_000;
      this.lease = new DriverLease(this.store, leaseOptions?.owner ?? `${hostname()}:${process.pid}`, {
        skewMs: leaseOptions?.skewMs ?? Math.min(2_000, durationMs / 10),
        // only `<host>:<pid>` drivers (sluice run): a named owner (the scheduler Lambda) may share both
        detectDeadHolders: leaseOptions?.owner === undefined,
      });
      const record = await this.lease.acquire(durationMs, Date.now(), { force: leaseOptions?.force });
      const takeover = this.lease.takeover;
      if (takeover) this.log({ event: 'lease.takeover', ...takeover, epoch: record.epoch });
      this.keeper = new LeaseKeeper(this.lease, {
        durationMs,
        renew: leaseOptions?.renew !== false,
        log: (e) => this.log(e),
      });
      this.keeper.start();
    }
    if (!ctx.graph.isFrozen) ctx.graph.freeze();
    const interval = ctx.batchIntervalMs;
    const provisional = new Pipeline(ctx, 0);
    let meta = await this.readJson<GraphMeta>(layout.graph());
    if (!meta) {
      const zero =
        this.options.zeroTimeMs ??
        (this.options.clock === 'manual' ? 0 : Math.floor(Date.now() / interval) * interval);
      const fresh: GraphMeta = {
        fingerprint: provisional.fingerprint,
        zeroTimeMs: zero,
        batchIntervalMs: interval,
        partitions: ctx.defaultPartitions,
        persisted: ctx.graph.persistedStreams(),
        graph: ctx.graph.describe(),
        createdAtMs: Date.now(),
      };
      if (!(await this.store.putIfAbsent(layout.graph(), encodeJson(fresh)))) {
        meta = await this.readJson<GraphMeta>(layout.graph());
      } else meta = fresh;
    }
    if (!meta) throw new SluiceError(`could not read ${layout.graph()} from ${this.store.describe()}`);
    checkCompatible(meta, provisional.fingerprint, ctx);
    this.pipelineValue = new Pipeline(ctx, meta.zeroTimeMs);

    const manifests = await this.store.list(layout.manifestsPrefix());
    const committed = manifests.map((k) => parseTimeKey(k.slice('manifests/'.length, -'.json'.length)));
    this.lastCommittedMs = committed.length > 0 ? Math.max(...committed) : undefined;
    const done = new Set(committed);
    const batchKeys = await this.store.list('batches/');
    const received = batchKeys
      .filter((k) => k.endsWith('/received.json'))
      .map((k) => parseTimeKey(k.split('/')[1]!));
    // every batch whose input is stored but that never committed (also one before the last commit:
    // a backlog batch that failed while later ones went on) is re-run first
    this.pending = received.filter((t) => !done.has(t)).sort((a, b) => a - b);
    this.origins.restarted(this.pending);
    this.skipped = await prepareSkips(
      this.store,
      this.options.skipBatches ?? [],
      { pending: this.pending, committed: done, keys: batchKeys },
      async (t) =>
        Object.values((await this.readJson<ReceivedEntry>(layout.received(t)))?.streams ?? {}).reduce(
          (n, s) => n + s.records,
          0,
        ),
    );
    // idle fast path (issue 11): committed idle spans are committed batches
    const idle = await this.idlePath.load(
      this.lastCommittedMs,
      received.length ? Math.max(...received) : undefined,
    );
    if (idle.lastMs !== undefined)
      this.lastCommittedMs = Math.max(this.lastCommittedMs ?? idle.lastMs, idle.lastMs);
    const last = Math.max(this.lastCommittedMs ?? meta.zeroTimeMs, ...this.pending);
    this.nextTimeMs = last + interval;
    // remember recent delivery ids so redelivered messages are not counted twice, and where
    // each source was, so a restarted source carries on after what it already gave
    for (const t of received.filter((t) => t > last - 10 * 60_000).sort((a, b) => a - b)) {
      const entry = await this.readJson<ReceivedEntry>(layout.received(t));
      for (const [name, s] of Object.entries(entry?.streams ?? {})) {
        for (const id of s.deliveryIds ?? []) this.seenDeliveries.set(id, t);
        if (s.position !== undefined) {
          this.resumePositions.set(name, s.position);
          this.receivedPositions.set(name, s.position);
        }
      }
    }

    for (const [name, position] of Object.entries(idle.positions)) {
      this.resumePositions.set(name, position); // idle fast path (issue 11): a span's positions
      this.receivedPositions.set(name, position);
    }
    for (const [, binding] of ctx.graph.inputs) {
      // a source passed in wins over the module's own (a replay feeds stored input only)
      const source = this.options.sources?.[binding.name] ?? binding.factory?.();
      if (!source) {
        throw new ConfigError(
          'source',
          `input stream '${binding.name}' has no source: pass one (sluice run --source ...) or build it with ctx.sourceStream()`,
        );
      }
      this.sources.set(binding.name, source);
    }
    for (const s of this.sources.values()) await s.start?.();
    // a source refuses, before any batch, a saved position it cannot carry on from (another file)
    for (const [name, s] of this.sources) {
      const position = this.resumePositions.get(name);
      if (position !== undefined) await s.resume?.(position);
    }
    this.started = true;
    this.log({
      event: 'driver.start',
      store: this.store.describe(),
      invoker: this.invoker.describe(),
      zeroTimeMs: meta.zeroTimeMs,
      resumeAtMs: this.nextBatchTimeMs,
      pending: this.pending.length,
      fingerprint: this.pipeline.fingerprint,
    });
  }

  /** True when every finite source is exhausted and no batch is pending. */
  sourcesExhausted(): boolean {
    if (this.pending.length > 0) return false;
    const all = [...this.sources.values()];
    return all.length > 0 && all.every((s) => s.exhausted?.() === true);
  }

  /**
   * Runs batches until `numBatches` ran, `untilMs` (a batch time) passed, `signal` aborted, or
   * every source is exhausted (`stopWhenExhausted`).
   */
  async run(
    options: {
      numBatches?: number;
      untilMs?: number;
      signal?: AbortSignal;
      stopWhenExhausted?: boolean;
      /** Wall-clock time by which the last batch must have finished (the Lambda's deadline). */
      deadlineMs?: number;
      /** Stop once the stream has been idle (fast path, empty-batch.ts) this long: the scheduler sleeps. */
      stopWhenIdleMs?: number;
    } = {},
  ) {
    await this.start();
    const manifests: BatchManifest[] = [];
    let drainUntilMs: number | undefined;
    while (!this.stopping && !options.signal?.aborted) {
      if (options.numBatches !== undefined && manifests.length >= options.numBatches) break;
      // idle fast path (issue 11): idle long enough, the caller may sleep
      if (options.stopWhenIdleMs !== undefined && this.idlePath.idleForMs >= options.stopWhenIdleMs) break;
      const t = this.nextBatchTimeMs;
      if (options.untilMs !== undefined && t > options.untilMs) break;
      if (options.stopWhenExhausted && this.sourcesExhausted()) {
        // finite sources ended: go on (without waiting) until the windows holding their data emitted
        drainUntilMs ??= this.startDrain(t);
        if (t > drainUntilMs) break;
      }
      if (options.deadlineMs !== undefined) {
        // leave room for one more batch: its interval plus the slowest recent processing time
        const need = Math.max(t, Date.now()) + this.ctx.batchIntervalMs + this.slowestRecentMs;
        if (need > options.deadlineMs) break;
      }
      if (this.options.clock !== 'manual' && drainUntilMs === undefined) {
        // polling sources (SQS) collect during the interval; buffering sources hand over after it
        const polls = [...this.sources.values()].some((s) => s.polls);
        await sleepUntil(polls ? t - this.ctx.batchIntervalMs : t, options.signal);
      }
      if (options.signal?.aborted) break;
      if (
        this.options.clock !== 'manual' &&
        drainUntilMs === undefined &&
        this.pending.length === 0 &&
        this.options.parallelRecovery !== false
      ) {
        // Far behind (a driver took over after a gap): close every batch that is already due,
        // then run them together as a backlog.
        const behind = Math.floor((Date.now() - t) / this.ctx.batchIntervalMs);
        const room = options.numBatches === undefined ? behind : options.numBatches - manifests.length;
        if (behind >= 2)
          await this.retrying(options.signal, () => this.closeBatches(Math.min(behind, room, 64)));
      }
      if (this.pending.length > 1 && this.options.parallelRecovery !== false) {
        const budget =
          options.numBatches === undefined ? this.pending.length : options.numBatches - manifests.length;
        // catch up within capacity: as many batches at once as the (adaptive) invoker limit serves
        const chunk = backlogChunk(this.runner.limiter.limit, this.ctx.defaultPartitions);
        const n = Math.min(budget, this.pending.length, chunk);
        manifests.push(...(await this.retrying(options.signal, () => this.fenced(this.runBacklog(n)))));
        continue;
      }
      const m = await this.retrying(options.signal, () => this.fenced(this.runNextBatch()));
      this.recentProcessing.push(m.processingMs);
      if (this.recentProcessing.length > 10) this.recentProcessing.shift();
      manifests.push(m);
    }
    return manifests;
  }

  /** Runs `step` again after a retryable failure (BatchRetry: bounded, with backoff); else rethrows. */
  private async retrying<R>(signal: AbortSignal | undefined, step: () => Promise<R>): Promise<R> {
    for (;;) {
      try {
        const result = await step();
        this.batchRetry.succeeded();
        return result;
      } catch (err) {
        await this.batchRetry.failed(err, this.nextBatchTimeMs, signal);
        if (signal?.aborted) throw err;
        // a failed batch made the ones after it fail; the retry starts a fresh commit order
        this.previousBatch = Promise.resolve(true);
        // records a source handed out for an input that was never stored are asked for again
        for (const [name, position] of this.receivedPositions) this.resumePositions.set(name, position);
      }
    }
  }

  /** The last batch time of the drain after finite sources ended at `t` (see drain.ts); logs it. */
  private startDrain(t: number): number {
    const untilMs = t - this.ctx.batchIntervalMs + drainSpanMs(this.ctx);
    if (untilMs >= t) {
      const batches = (untilMs - t) / this.ctx.batchIntervalMs + 1;
      this.log({ event: 'source.drain', fromMs: t, untilMs, batches });
    }
    return untilMs;
  }

  async stop(): Promise<void> {
    // idle fast path (issue 11): commit the open idle span while the lease is still ours
    if (this.started && this.idlePath.hasOpenSpan && !this.keeper?.fenced) await this.flushIdle();
    this.stopping = true;
    this.keeper?.stop();
    for (const s of this.sources.values()) await s.stop?.();
    if (!this.keeper?.fenced) await this.lease?.release();
  }

  /** A driver that lost its lease stops waiting for its batch at once (LeaseLostError). */
  private fenced<T>(work: Promise<T>): Promise<T> {
    return this.keeper ? this.keeper.race(work) : work;
  }

  /** Verifies the lease from the store right before a write that matters (see fencing.ts). */
  private async fence(what: string): Promise<void> {
    await this.keeper?.check(what);
  }

  /** The lease this driver holds (undefined without one). */
  get leaseRecord(): LeaseRecord | undefined {
    return this.lease?.record;
  }

  /**
   * Re-runs the first `n` pending batches at once: each stage starts as soon as what it reads
   * exists (a state partition of the previous batch, say), so independent work of different
   * batches proceeds in parallel, as in the paper's parallel recovery.
   */
  async runBacklog(n: number): Promise<BatchManifest[]> {
    await this.checkLease();
    const times = this.pending.slice(0, n);
    this.log({ event: 'recovery.backlog', batches: times });
    // announce what every batch will materialize before any starts, so each can wait for its inputs
    const prepared = new Map(
      times.map((t) => {
        const plan = new BatchPlan(t, this.targetsOf(this.pipeline.generate(t)));
        return [t, { plan, done: this.announceMaterializations(t, plan) }] as const;
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
    await this.checkLease();
    const closed: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = this.nextTimeMs;
      await this.receive(t);
      this.pending.push(t);
      this.origins.closedBehind(t);
      this.nextTimeMs = t + this.ctx.batchIntervalMs;
      closed.push(t);
    }
    return closed;
  }

  /** idle fast path (issue 11): commits the open idle span (one put-if-absent), fenced. */
  private async flushIdle(): Promise<void> {
    await this.fence('an idle span');
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
    return n;
  }

  private async checkLease(): Promise<void> {
    await this.fence('the next batch');
  }

  /** Runs the next batch (a pending one first) and commits it. */
  async runNextBatch(): Promise<BatchManifest> {
    await this.start();
    await this.checkLease();
    const t = this.nextBatchTimeMs;
    const recovered = this.pending[0] === t;
    const manifest = await this.runBatch(t, recovered && this.origins.isRecovered(t));
    if (recovered) this.pending.shift();
    else this.nextTimeMs = t + this.ctx.batchIntervalMs;
    return manifest;
  }

  private async runBatch(
    t: number,
    recovered: boolean,
    prepared?: { plan: BatchPlan; done: Map<string, () => void> },
  ): Promise<BatchManifest> {
    // Batches commit in time order: a batch goes on to its outputs and commit only once the
    // batch before it committed, and fails if that one failed (a backlog runs batches at once).
    const previous = this.previousBatch;
    let settle!: (ok: boolean) => void;
    this.previousBatch = new Promise<boolean>((r) => {
      settle = r;
    });
    try {
      // its own request counter: batches of a backlog (`prepared`) run at once, each counts only its
      // requests; a batch run alone counts on the store's total (no async context: it is costly)
      const inner = () => this.runBatchInner(t, recovered, previous, prepared);
      const manifest = await (prepared ? this.store.scoped(inner) : inner());
      settle(true);
      return manifest;
    } catch (err) {
      settle(false);
      for (const release of prepared?.done.values() ?? []) release();
      throw err;
    }
  }

  private async runBatchInner(
    t: number,
    recovered: boolean,
    previous: Promise<boolean>,
    prepared: { plan: BatchPlan; done: Map<string, () => void> } | undefined,
  ): Promise<BatchManifest> {
    const startedAtMs = Date.now();
    const dueAtMs = this.options.clock === 'manual' ? startedAtMs : t;
    const requestsBefore = this.store.snapshot();
    const phases: Record<string, number> = {};
    const phase = async <R>(name: string, fn: () => Promise<R>): Promise<R> => {
      const s = Date.now();
      try {
        return await fn();
      } finally {
        phases[name] = (phases[name] ?? 0) + Date.now() - s;
      }
    };
    // idle fast path (issue 11): a quiet stream's next batch cannot have a manifest yet (one driver, leased)
    const quietNext =
      this.pending.length === 0 && t > (this.lastCommittedMs ?? -1) && this.idlePath.quietAt(t);
    const existing = quietNext ? undefined : await this.readJson<BatchManifest>(layout.manifest(t));
    if (existing) {
      this.lastCommittedMs = t;
      return existing;
    }

    const recomputedBefore = this.recomputedCount;
    // receive = polling the sources (on SQS: the interval itself); writeInput = blocks + write-ahead entry + ack
    const marks = { polledAt: 0 };
    const receiveStart = Date.now();
    const received = await this.receive(t, marks, true);
    // idle fast path (issue 11): an idle batch joins the open span; otherwise the span commits first
    if (!received) return this.commitIdle(t, previous, { dueAtMs, startedAtMs }, requestsBefore);
    if (this.idlePath.hasOpenSpan) await this.flushIdle();
    // Spark's rule: processing starts when the interval closes; polling before that (SQS) is the
    // receive window, kept apart (receiveWindowMs) and out of processing and scheduling delay
    const processingStartMs =
      this.options.clock === 'manual' ? startedAtMs : processingStart(startedAtMs, Date.now(), t);
    phases.receive = Math.max(
      0,
      (marks.polledAt || receiveStart) - Math.max(receiveStart, processingStartMs),
    );
    phases.writeInput = Date.now() - Math.max(marks.polledAt, receiveStart);
    this.maybeCrash(t, 'afterReceive');
    const gen = this.pipeline.generate(t);
    const plan = prepared?.plan ?? new BatchPlan(t, this.targetsOf(gen));
    const done = prepared?.done ?? this.announceMaterializations(t, plan);
    const taskTotals = {
      total: 0,
      attempts: 0,
      retries: 0,
      speculative: 0,
      throttled: 0,
      concurrency: { min: this.runner.limiter.limit, max: this.runner.limiter.limit },
    };
    const taskMetrics = { get: 0, put: 0, bytesRead: 0, bytesWritten: 0, deadLettered: 0 };
    const stageReports: StageReport[] = [];
    const results = await phase('tasks', () =>
      this.runStages(t, plan, (stage, stageResults, report) => {
        stageReports.push(report);
        taskTotals.total += stage.numTasks;
        taskTotals.attempts += report.attempts;
        taskTotals.retries += report.retries;
        taskTotals.speculative += report.speculative;
        taskTotals.throttled += report.throttled ?? 0;
        if (report.concurrency) {
          taskTotals.concurrency.min = Math.min(taskTotals.concurrency.min, report.concurrency.min);
          taskTotals.concurrency.max = Math.max(taskTotals.concurrency.max, report.concurrency.max);
        }
        if (stage.target?.kind === 'rdd') done.get(stage.target.name)?.();
        for (const r of stageResults) {
          taskMetrics.get += r.metrics.readRequests;
          taskMetrics.put += r.metrics.writeRequests;
          taskMetrics.bytesRead += r.metrics.bytesRead;
          taskMetrics.bytesWritten += r.metrics.bytesWritten;
          taskMetrics.deadLettered += r.metrics.deadLettered;
        }
      }),
    );

    this.maybeCrash(t, 'afterTasks');
    gen.materialized = plan.materializedNames();
    gen.store = this.store;
    gen.idleSpans = this.idlePath.specSpans(t, this.requiredHistoryMs()).idleSpans; // idle fast path (issue 11)
    // output operations run in time order, also when a backlog of batches is re-run in parallel
    if (!(await previous)) {
      throw new BatchFailedError(t, `the batch before it failed; batches commit in time order`);
    }
    if (!this.skipped.has(t)) await phase('outputs', () => this.runOutputs(t, gen, plan));

    const outputs = plan.targets.map((target) => {
      const stage = plan.stages.find((s) => s.target === target)!;
      const lineages = results.get(stage) ?? [];
      return {
        name: target.name,
        kind: target.kind,
        reason: target.reason,
        partitions: stage.numTasks,
        records: lineages.reduce((n, l) => n + l.records, 0),
      };
    });
    // one rule (dead-letters.ts): a record computed by two stages is one dead letter
    const taskDeadLetters = taskMetrics.deadLettered > 0 ? await countTaskDeadLetters(this.store, t) : 0;
    const finishedAtMs = Date.now();
    const requests = this.store.since(requestsBefore);
    const inputRecords = Object.values(received.streams).reduce((n, s) => n + s.records, 0);
    const deadLetters = Object.values(received.streams).reduce((n, s) => n + s.deadLetters, 0);
    const manifest: BatchManifest = {
      batchTimeMs: t,
      fingerprint: this.pipeline.fingerprint,
      status: 'committed',
      dueAtMs,
      startedAtMs: processingStartMs,
      finishedAtMs,
      schedulingDelayMs: Math.max(0, processingStartMs - dueAtMs),
      processingMs: finishedAtMs - processingStartMs,
      receiveWindowMs: processingStartMs - startedAtMs,
      totalDelayMs: Math.max(0, finishedAtMs - dueAtMs),
      recovered,
      ...this.origins.catchUpOf(t),
      input: {
        records: inputRecords,
        deadLetters,
        capped: Object.values(received.streams).some((s) => s.capped),
      },
      phases,
      stages: stageReports.sort((a, b) => a.id - b.id),
      outputs,
      tasks: { ...taskTotals, recomputed: this.recomputedCount - recomputedBefore },
      deadLettered: deadLetters + taskDeadLetters,
      ...deliveryOf(received),
      ...(this.skipped.has(t)
        ? { skipped: { reason: this.skipped.get(t)!.reason, records: this.skipped.get(t)!.records } }
        : {}),
      requests: {
        get: requests.get + taskMetrics.get,
        put: requests.put + taskMetrics.put + 1,
        list: requests.list,
        delete: requests.delete,
        bytesRead: requests.bytesRead + taskMetrics.bytesRead,
        bytesWritten: requests.bytesWritten + taskMetrics.bytesWritten,
      },
    };
    this.maybeCrash(t, 'beforeCommit');
    if (this.faults?.longBatchAt(t, this.options.incarnation ?? 0) && this.keeper) {
      this.faults.counts.longBatches++;
      await this.keeper.stallPastLease();
    }
    await phase('commit', async () => {
      await this.fence(`the manifest of batch ${t}`);
      await this.store.putIfAbsent(layout.manifest(t), encodeJson(manifest));
    });
    this.idlePath.worked(manifest); // idle fast path (issue 11)
    for (const key of [...this.materializing.keys()])
      if (key.startsWith(`rdd/${timeKey(t)}/`)) this.materializing.delete(key);
    this.lastCommittedMs = Math.max(t, this.lastCommittedMs ?? t);
    this.origins.forget(t);
    await this.injectStorageFaults(t, plan);
    this.adjustCap(manifest);
    this.pipeline.forget(t - 4 * this.ctx.batchIntervalMs);
    await this.cleanUp(t);
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
    const full = this.idlePath.add(t, this.store.since(requestsBefore), this.idlePositions);
    if (this.ctx.graph.outputs.some((o) => o.kind === 'foreach')) {
      const gen = this.pipeline.generate(t);
      gen.store = this.store;
      gen.idleSpans = this.idlePath.specSpans(t, this.requiredHistoryMs()).idleSpans;
      await this.runOutputs(t, gen);
    }
    if (full) await this.flushIdle();
    const finishedAtMs = Date.now();
    const requests = this.store.since(requestsBefore);
    const manifest = this.idlePath.manifest(
      t,
      this.pipeline.fingerprint,
      { ...timing, finishedAtMs },
      requests,
    );
    this.lastCommittedMs = Math.max(t, this.lastCommittedMs ?? t);
    this.pipeline.forget(t - 4 * this.ctx.batchIntervalMs);
    await this.cleanUp(t);
    this.options.onBatch?.(manifest);
    return manifest;
  }

  /** idle fast path (issue 11): acknowledges what the sources handed over for an idle batch, keeps their positions. */
  private async idleAcks(
    bindings: readonly { name: string }[],
    polled: readonly { ackToken?: unknown; position?: unknown }[],
  ): Promise<void> {
    const positions: Record<string, unknown> = {};
    for (const [i, binding] of bindings.entries()) {
      const batch = polled[i]!;
      const source = this.sources.get(binding.name)!;
      this.resumePositions.delete(binding.name);
      if (batch.position !== undefined) {
        positions[binding.name] = batch.position;
        this.receivedPositions.set(binding.name, batch.position);
      }
      if (source.ack && batch.ackToken !== undefined) await source.ack(batch.ackToken);
    }
    this.idlePositions = positions;
  }

  /** Receives the interval's records from every source, writes blocks and the write-ahead entry, then acks. */
  private async receive(
    t: number,
    marks: { polledAt: number } = { polledAt: 0 },
    idleOk = false,
  ): Promise<ReceivedEntry | undefined> {
    const prior = await this.readJson<ReceivedEntry>(layout.received(t));
    if (prior) return prior; // re-running a batch whose input is already durable
    const streams: Record<string, ReceivedEntry['streams'][string]> = {};
    const acks: (() => Promise<void>)[] = [];
    const bindings = [...this.ctx.graph.inputs.values()];
    const polled = await Promise.all(
      bindings.map((binding) => {
        const source = this.sources.get(binding.name)!;
        return source.receive({
          batchTimeMs: t,
          intervalMs: this.ctx.batchIntervalMs,
          maxRecords: this.cap ?? this.options.maxRecordsPerBatch,
          closeAtMs: this.options.clock === 'manual' ? Date.now() : Math.max(t, Date.now() + 50),
          seen: (id) => this.seenDeliveries.has(id),
          resumeFrom: this.resumePositions.get(binding.name),
        });
      }),
    );
    // idle fast path (issue 11): an empty batch of a quiet stream writes nothing (empty-batch.ts)
    if (idleOk && this.idlePath.canSkip(t, polled, this.pending.length) && !this.skipped.has(t)) {
      await this.idleAcks(bindings, polled);
      return undefined;
    }
    await Promise.all(
      bindings.map(async (binding, i) => {
        const source = this.sources.get(binding.name)!;
        const batch = polled[i]!;
        this.resumePositions.delete(binding.name);
        marks.polledAt = Math.max(marks.polledAt, Date.now());
        const n = binding.partitions;
        const records = batch.records;
        await this.fence(`the input blocks of batch ${t}`);
        const puts: Promise<void>[] = [];
        for (let p = 0; p < n; p++) {
          const from = Math.floor((p * records.length) / n);
          const to = Math.floor(((p + 1) * records.length) / n);
          puts.push(
            this.store.put(layout.inputBlock(t, binding.name, p), encodeBlock(records.slice(from, to))),
          );
        }
        if (batch.deadLetters.length > 0) {
          puts.push(
            this.store.put(layout.deadLetter(t, binding.name), deadLetterLines(batch.deadLetters, t)),
          );
        }
        await Promise.all(puts);
        const cap = this.cap ?? this.options.maxRecordsPerBatch;
        streams[binding.name] = {
          records: records.length,
          blocks: n,
          deadLetters: batch.deadLetters.length,
          ...(batch.deliveryIds ? { deliveryIds: batch.deliveryIds } : {}),
          ...(batch.position !== undefined ? { position: batch.position } : {}),
          ...(batch.delivery ? { delivery: batch.delivery } : {}),
          capped: cap !== undefined && records.length >= cap,
        };
        if (source.ack && batch.ackToken !== undefined) acks.push(() => source.ack!(batch.ackToken));
      }),
    );
    const entry: ReceivedEntry = { batchTimeMs: t, receivedAtMs: Date.now(), streams };
    await this.fence(`the write-ahead entry of batch ${t}`);
    if (!(await this.store.putIfAbsent(layout.received(t), encodeJson(entry)))) {
      // Another driver closed this batch at the same time (only possible without a valid lease):
      // do not acknowledge anything, the messages come back and are de-duplicated by id.
      throw new BatchFailedError(
        t,
        'another driver wrote the input of this batch concurrently; not acknowledging',
      );
    }
    for (const [name, s] of Object.entries(streams)) {
      for (const id of s.deliveryIds ?? []) this.seenDeliveries.set(id, t);
      if (s.position !== undefined) this.receivedPositions.set(name, s.position);
    }
    await Promise.all(acks.map((ack) => ack()));
    return entry;
  }

  private targetsOf(gen: BatchGeneration): Target[] {
    const t = gen.batchTimeMs;
    const targets: Target[] = [];
    const outputsByStream = new Map<DStream<unknown>, string[]>();
    for (const op of this.ctx.graph.outputs) {
      const list = outputsByStream.get(op.stream) ?? [];
      list.push(op.kind);
      outputsByStream.set(op.stream, list);
    }
    for (const stream of this.pipeline.targetStreams()) {
      const rdd = gen.rddOf(stream, t);
      if (!rdd) continue;
      const kinds = outputsByStream.get(stream) ?? [];
      if (stream.persisted || kinds.includes('foreach')) {
        const reason = stream.persisted
          ? stream.kind.includes('State') || stream.kind === 'mapWithState'
            ? 'state'
            : 'window'
          : 'output';
        targets.push({ rdd, name: stream.storageName, kind: 'rdd', reason });
      }
    }
    for (const op of this.ctx.graph.outputs) {
      if (op.kind !== 'save') continue;
      const rdd = gen.rddOf(op.stream, t);
      if (!rdd) continue;
      const { prefix, suffix, format, schema } = op.save!;
      const ext = suffix ? `.${suffix}` : '';
      targets.push({
        rdd,
        name: prefix,
        kind: 'file',
        format,
        ext,
        reason: 'save',
        ...(schema ? { schema } : {}),
      });
    }
    // a skipped batch keeps only what later batches read (state, window data): no outputs
    if (this.skipped.has(t)) return targets.filter((x) => x.reason === 'state' || x.reason === 'window');
    return targets;
  }

  /**
   * Runs every stage once its parents are done, tasks in parallel up to the invoker's concurrency.
   * With `goal`, runs only what one stage needs and only the given partitions of it (recomputing
   * lost partitions from lineage).
   */
  private async runStages(
    t: number,
    plan: BatchPlan,
    onStage: (stage: Stage, results: TaskResult[], report: StageReport) => void,
    goal?: { stage: Stage; partitions: number[] },
  ): Promise<Map<Stage, LineageRecord[]>> {
    const lineages = new Map<Stage, LineageRecord[]>();
    const shuffleOutputs = new Map<string, LineageRecord[]>();
    const running = new Map<Stage, Promise<void>>();
    const graph = {
      batchIntervalMs: this.ctx.batchIntervalMs,
      zeroTimeMs: this.pipeline.zeroTimeMs,
      defaultPartitions: this.ctx.defaultPartitions,
      fingerprint: this.pipeline.fingerprint,
    };
    const runStage = (stage: Stage): Promise<void> => {
      let p = running.get(stage);
      if (p) return p;
      p = (async () => {
        await Promise.all(stage.parents.map(runStage));
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
            inputs: plan.inputsOf(stage, partition, (id) => shuffleOutputs.get(id) ?? []),
            output,
            commitKey,
            ...(this.skipped.has(t) ? { skipInput: true } : {}),
            ...this.idlePath.specSpans(t, this.requiredHistoryMs()), // idle fast path (issue 11)
          };
        });
        await this.awaitInputsOfOtherBatches(t, specs);
        const startedAtMs = Date.now();
        const outcome = await this.runner.runStage(specs);
        const stageLineages: LineageRecord[] = [];
        outcome.results.forEach((r, i) => {
          stageLineages[partitions[i]!] = r.lineage;
          if (r.nondeterministic) warnNondeterministic((e) => this.log(e), t, stage.id, r);
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
        });
      })();
      running.set(stage, p);
      return p;
    };
    await Promise.all((goal ? [goal.stage] : plan.stages).map(runStage));
    return lineages;
  }

  /** Registers the RDDs this batch will materialize, so backlog batches reading them can wait. */
  private announceMaterializations(t: number, plan: BatchPlan): Map<string, () => void> {
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

  /** Waits until RDDs of earlier batches that these tasks read have been materialized. */
  private async awaitInputsOfOtherBatches(
    t: number,
    specs: readonly Omit<TaskSpec, 'attempt'>[],
  ): Promise<void> {
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

  /**
   * Recomputes a lost or corrupt stored object from its lineage: regenerates the batch that
   * wrote it and re-runs just what that partition needs (its shuffle map stage, then the one
   * partition). What that reads, if lost too, is recomputed the same way, recursively, back to
   * data that exists (input blocks, or a state checkpoint). Input blocks themselves cannot be
   * recomputed. Concurrent requests for the same key share one recomputation.
   */
  private recover(key: string): Promise<boolean> {
    // one recomputation per stored RDD of a batch at a time: it restores every partition of that
    // RDD found missing, so sibling losses share one re-run of the map stage
    const scope = key.startsWith('rdd/') ? key.slice(0, key.lastIndexOf('/') + 1) : key;
    let p = this.recovering.get(scope);
    if (!p) {
      p = this.recompute(key).finally(() => this.recovering.delete(scope));
      this.recovering.set(scope, p);
    }
    return p;
  }

  private async recompute(key: string): Promise<boolean> {
    const rdd = /^rdd\/(\d+)\/([^/]+)\/(\d+)\.blk$/.exec(key);
    const shuffle = /^shuffle\/(\d+)\/([^/]+)\/(\d+)\.blk$/.exec(key);
    const started = Date.now();
    if (rdd) {
      const t = parseTimeKey(rdd[1]!);
      const name = rdd[2]!;
      const partition = Number(rdd[3]);
      const stream = this.pipeline.targetStreams().find((s) => s.storageName === name);
      const gen = this.pipeline.generate(t);
      const target = stream ? gen.rddOf(stream, t) : undefined;
      if (!target) return false;
      const plan = new BatchPlan(t, [{ rdd: target, name, kind: 'rdd', reason: 'recompute' }]);
      const stage = plan.stages.find((s) => s.target?.name === name)!;
      const present = new Set(await this.store.list(`rdd/${rdd[1]}/${name}/`));
      const partitions = Array.from({ length: stage.numTasks }, (_, p) => p).filter(
        (p) => p === partition || !present.has(layout.rddPartition(t, name, p)),
      );
      await this.runStages(t, plan, () => {}, { stage, partitions });
      this.recomputedCount += partitions.length - 1;
    } else if (shuffle) {
      const t = parseTimeKey(shuffle[1]!);
      const plan = new BatchPlan(t, this.targetsOf(this.pipeline.generate(t)));
      const stage = plan.stages.find((s) => s.shuffle?.id === shuffle[2]);
      if (!stage) return false;
      await this.runStages(t, plan, () => {}, { stage, partitions: [Number(shuffle[3])] });
    } else {
      this.log({ event: 'recovery.impossible', key, reason: 'input blocks are the source of truth' });
      return false;
    }
    this.recomputedCount++;
    this.log({ event: 'recovery.recomputed', key, ms: Date.now() - started });
    return true;
  }

  private async runOutputs(t: number, gen: BatchGeneration, plan?: BatchPlan): Promise<void> {
    for (const target of plan?.targets ?? []) {
      if (target.kind === 'file')
        await this.store.put(layout.outputSuccess(target.name, t), new Uint8Array(0));
    }
    let i = 0;
    for (const op of this.ctx.graph.outputs) {
      i++;
      if (op.kind !== 'foreach') continue;
      const rdd = gen.rddOf(op.stream, t);
      if (!rdd) continue;
      for (let tries = 0; ; tries++) {
        try {
          await gen.inScope(`out${i}`, () => op.fn!(rdd, t));
          break;
        } catch (err) {
          // a materialized partition the output reads was lost: recompute it, run the output again
          if (!(err instanceof MissingDataError) || tries >= 3 || !(await this.recover(err.key))) throw err;
        }
      }
    }
  }

  private maybeCrash(t: number, point: CrashPoint): void {
    if (!this.faults) return;
    const at = this.faults.crashPoint(t, this.options.incarnation ?? 0);
    if (at !== point) return;
    this.faults.counts.driverCrashes++;
    this.stopping = true; // a dead driver runs nothing more; its lease is left to expire
    this.keeper?.stop();
    throw new DriverCrashError(t, point);
  }

  /** Fault injection after a commit: delete or corrupt stored partitions later batches will read. */
  private async injectStorageFaults(t: number, plan: BatchPlan): Promise<void> {
    const faults = this.faults;
    if (!faults || !(faults.options.deletePartitions || faults.options.corruptBlocks)) return;
    for (const target of plan.targets) {
      if (target.kind !== 'rdd' || target.reason === 'output') continue;
      for (let p = 0; p < target.rdd.numPartitions; p++) {
        const key = layout.rddPartition(t, target.name, p);
        const action = faults.forStoredPartition(key);
        if (action === 'delete') {
          await this.store.delete(key);
          faults.counts.deletedPartitions++;
        } else if (action === 'corrupt') {
          const bytes = await this.store.get(key);
          if (!bytes || bytes.length === 0) continue;
          const copy = Uint8Array.from(bytes);
          copy[Math.floor(copy.length / 2)]! ^= 0xff;
          await this.store.put(key, copy);
          faults.counts.corruptedBlocks++;
        }
        if (action) this.log({ event: 'fault.storage', action, key });
      }
    }
  }

  /** Backpressure: after a batch that took longer than the interval, cap the next batches. */
  private adjustCap(m: BatchManifest): void {
    if (this.options.backpressure === false || this.options.clock === 'manual') return;
    // the first batch after a start pays for warm-up (module loading, connections): not a signal
    if (this.recentProcessing.length === 0) return;
    const interval = this.ctx.batchIntervalMs;
    // for polling sources the poll is the interval itself: count the work after it
    const work = m.processingMs - (m.phases.receive ?? 0);
    if (work > interval && m.input.records > 0) {
      const sustainable = Math.max(1, Math.floor((m.input.records * interval * 0.9) / work));
      this.cap = Math.min(this.options.maxRecordsPerBatch ?? Infinity, sustainable);
      this.log({ event: 'backpressure', batchTimeMs: m.batchTimeMs, maxRecordsPerBatch: this.cap });
    } else if (this.cap !== undefined && work < interval * 0.7) {
      this.cap = Math.floor(this.cap * 1.25);
      if (this.cap > 1e9) this.cap = undefined;
    }
  }

  /** Drops per-batch data no later batch can read, and input blocks older than the retention. */
  private async cleanUp(t: number): Promise<void> {
    const interval = this.ctx.batchIntervalMs;
    const history = this.requiredHistoryMs();
    // idle fast path (issue 11): an idle batch stored nothing, there is nothing to list
    const idle = (prefix: string) => this.idlePath.spans.contains(parseTimeKey(prefix.split('/')[1]!));
    const drop = async (prefix: string) => {
      if (idle(prefix)) return;
      for (const key of await this.store.list(prefix)) await this.store.delete(key);
    };
    // shuffle data is only read within its batch; its lineage stays as long as the RDDs it fed
    const shuffles = `shuffle/${timeKey(t - interval)}/`;
    for (const key of idle(shuffles) ? [] : await this.store.list(shuffles)) {
      if (!key.endsWith('.lineage.json')) await this.store.delete(key);
    }
    await drop(`shuffle/${timeKey(t - history - interval)}/`);
    // Materialized RDDs fall out of the history, except state at checkpoint times: they stay until
    // the next checkpoint has also fallen out, so recomputing lost state never walks further back.
    const expired = t - history - interval;
    const every = this.options.checkpointEvery ?? 10;
    const isCheckpoint = (time: number) => ((time - this.pipeline.zeroTimeMs) / interval) % every === 0;
    const stateNames = new Set(
      this.ctx.graph.streams.filter((s) => s.persisted && s.fixedShape).map((s) => `${s.storageName}/`),
    );
    for (const key of idle(`rdd/${timeKey(expired)}/`)
      ? []
      : await this.store.list(`rdd/${timeKey(expired)}/`)) {
      const rest = key.slice(`rdd/${timeKey(expired)}/`.length);
      const isState = [...stateNames].some((n) => rest.startsWith(n));
      if (!(isState && isCheckpoint(expired))) await this.store.delete(key);
    }
    if (isCheckpoint(expired)) {
      const previous = expired - every * interval;
      if (previous > this.pipeline.zeroTimeMs) await drop(`rdd/${timeKey(previous)}/`);
    }
    // inputs stay at least as long as recomputing from the oldest kept checkpoint may need them
    const retain = Math.max(this.options.retainInputsMs ?? 3_600_000, history + 2 * every * interval);
    const old = t - retain - interval;
    if (old > this.pipeline.zeroTimeMs) {
      await drop(`inputs/${timeKey(old)}/`);
      await drop(`batches/${timeKey(old)}/`);
    }
    for (const [id, at] of this.seenDeliveries) if (at < t - 10 * 60_000) this.seenDeliveries.delete(id);
  }

  /** How far back a batch may read materialized RDDs: the longest window plus its slide. */
  private requiredHistoryMs(): number {
    let ms = 2 * this.ctx.batchIntervalMs;
    for (const s of this.ctx.graph.streams) {
      const w = s.params.windowMs;
      if (typeof w === 'number') ms = Math.max(ms, w + s.slideMs + this.ctx.batchIntervalMs);
      if (s.persisted) ms = Math.max(ms, 2 * s.slideMs);
    }
    return ms;
  }

  private async readJson<T>(key: string): Promise<T | undefined> {
    const bytes = await this.store.get(key);
    return bytes ? decodeJson<T>(bytes) : undefined;
  }

  private log(event: Record<string, unknown>): void {
    this.options.log?.(event);
  }
}

function checkCompatible(meta: GraphMeta, fingerprint: string, ctx: StreamingContext): void {
  if (meta.batchIntervalMs !== ctx.batchIntervalMs) {
    throw new IncompatibleGraphError(
      meta.fingerprint,
      fingerprint,
      `The store was written with a batch interval of ${meta.batchIntervalMs} ms, this pipeline uses ${ctx.batchIntervalMs} ms.`,
    );
  }
  if (meta.fingerprint === fingerprint) return;
  // The code changed. That is fine as long as every materialized (stateful) stream is still there
  // with the same name, kind and parameters: its state can be read back as it was written.
  const now = ctx.graph.persistedStreams();
  const key = (d: PersistedStreamDescription) => JSON.stringify([d.name, d.kind, d.params, d.partitions]);
  const before = new Set(meta.persisted.map(key));
  const after = new Set(now.map(key));
  const missing = meta.persisted.filter((d) => !after.has(key(d)));
  const added = now.filter((d) => !before.has(key(d)));
  if (missing.length > 0 || added.length > 0) {
    const names = (ds: PersistedStreamDescription[]) => ds.map((d) => `${d.kind} '${d.name}'`).join(', ');
    throw new IncompatibleGraphError(
      meta.fingerprint,
      fingerprint,
      `Stateful streams changed: ${missing.length ? `stored but no longer in the pipeline: ${names(missing)}; ` : ''}${
        added.length ? `new in the pipeline: ${names(added)}; ` : ''
      }give stateful operators a stable { name } so they survive unrelated changes.`,
    );
  }
}

function deadLetterLines(letters: readonly DeadLetter[], t: number): Uint8Array {
  return encodeJsonLines(letters.map((l) => ({ batchTimeMs: t, ...l })));
}

async function sleepUntil(timeMs: number, signal?: AbortSignal): Promise<void> {
  const wait = timeMs - Date.now();
  if (wait <= 0) return;
  await new Promise<void>((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, wait);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
