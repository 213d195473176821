/**
 * The manifest room: the records a batch leaves in the store (the write-ahead entry
 * `batches/<t>/received.json` and the commit record `manifests/<t>.json`), and `BatchTally`, which
 * adds up a batch's stages as they finish and builds its manifest. The manifest format is the
 * contract with `sluice status`, the UI and replay: fields are only ever added.
 *
 * @module
 */
import type { ConcurrencyRange } from '../adaptive-limiter.ts';
import type { RequestCounts } from '../counting-store.ts';
import type { BatchPlan, Stage } from '../planner.ts';
import type { LineageRecord, TaskResult } from '../task.ts';
import { deliveryOf } from './delivery.ts';
import type { SkippedBatch } from './skip.ts';

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
      /** issue 14: input partition p is these blocks, written during the interval (received-blocks.ts). */
      partitionBlocks?: string[][];
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
  /** The stage ran in the driver: a tiny batch (issue 11, driver/tiny-batch.ts). */
  readonly inDriver?: true;
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
  /**
   * The lineage records of the batch's saved output parts (issue 11): committed here, with the
   * batch, so output folders hold data only and a part costs one PUT (lineage-store.ts).
   */
  readonly outputLineage?: readonly LineageRecord[];
  /**
   * A tiny batch run in the driver (issue 11): the lineage records of what it kept in memory
   * instead of the store (its shuffle map outputs, RDDs only its foreachRDD read), and every
   * shuffle map output's (deleted with its data one batch later), so `sluice lineage` still walks
   * from a batch's outputs down to the input blocks.
   */
  readonly memoryLineage?: readonly LineageRecord[];
  /**
   * The checksum of every RDD partition the batch stored, by key: a recomputation from lineage
   * that computes different bytes is the determinism rule broken (lineage-recovery.ts warns).
   */
  readonly checksums?: Readonly<Record<string, string>>;
  /** An idle batch (issue 11): committed in an idle span (idle/), no manifest of its own. */
  readonly idle?: true;
}

/** Where a batch's time went, by phase (receive, writeInput, tasks, outputs, commit). */
export class Phases {
  readonly ms: Record<string, number> = {};
  async time<R>(name: string, fn: () => Promise<R>): Promise<R> {
    const s = Date.now();
    try {
      return await fn();
    } finally {
      this.ms[name] = (this.ms[name] ?? 0) + Date.now() - s;
    }
  }
}

/** Adds up a batch's stages as they finish (`onStage`), then builds its manifest (`build`). */
export class BatchTally {
  private readonly stages: StageReport[] = [];
  private readonly totals: {
    total: number;
    attempts: number;
    retries: number;
    speculative: number;
    throttled: number;
    concurrency: ConcurrencyRange;
  };
  /** Store requests and bytes the tasks made themselves (the driver's own are counted apart). */
  readonly taskMetrics = { get: 0, put: 0, bytesRead: 0, bytesWritten: 0, deadLettered: 0 };

  constructor(limit: number) {
    this.totals = {
      total: 0,
      attempts: 0,
      retries: 0,
      speculative: 0,
      throttled: 0,
      concurrency: { min: limit, max: limit },
    };
  }

  onStage(stage: Stage, results: readonly TaskResult[], report: StageReport): void {
    const t = this.totals;
    this.stages.push(report);
    t.total += stage.numTasks;
    t.attempts += report.attempts;
    t.retries += report.retries;
    t.speculative += report.speculative;
    t.throttled += report.throttled ?? 0;
    if (report.concurrency) {
      t.concurrency = {
        min: Math.min(t.concurrency.min, report.concurrency.min),
        max: Math.max(t.concurrency.max, report.concurrency.max),
      };
    }
    const m = this.taskMetrics;
    for (const r of results) {
      m.get += r.metrics.readRequests;
      m.put += r.metrics.writeRequests;
      m.bytesRead += r.metrics.bytesRead;
      m.bytesWritten += r.metrics.bytesWritten;
      m.deadLettered += r.metrics.deadLettered;
    }
  }

  build(b: {
    t: number;
    fingerprint: string;
    dueAtMs: number;
    startedAtMs: number;
    processingStartMs: number;
    finishedAtMs: number;
    recovered: boolean;
    /** `{ catchUp: true }` for a batch closed to catch up (BatchOrigins.catchUpOf). */
    catchUp: { catchUp?: true };
    received: ReceivedEntry;
    plan: BatchPlan;
    lineages: ReadonlyMap<Stage, readonly LineageRecord[]>;
    phases: Record<string, number>;
    recomputed: number;
    taskDeadLetters: number;
    requests: RequestCounts;
    skipped: SkippedBatch | undefined;
  }): BatchManifest {
    const streams = Object.values(b.received.streams);
    const deadLetters = streams.reduce((n, s) => n + s.deadLetters, 0);
    const outputs = b.plan.targets.map((target) => {
      const stage = b.plan.stages.find((s) => s.target === target)!;
      const lineages = b.lineages.get(stage) ?? [];
      return {
        name: target.name,
        kind: target.kind,
        reason: target.reason,
        partitions: stage.numTasks,
        records: lineages.reduce((n, l) => n + l.records, 0),
      };
    });
    const m = this.taskMetrics;
    const start = b.processingStartMs;
    const outputLineage = b.plan.stages
      .filter((s) => s.target?.kind === 'file')
      .flatMap((s) => (b.lineages.get(s) ?? []).filter((l) => l !== undefined));
    const inDriver = new Set(this.stages.filter((r) => r.inDriver).map((r) => r.id));
    const memoryLineage = b.plan.stages
      // shuffle map outputs live for their own batch only (retention.ts): their lineage stays here,
      // so `sluice lineage` walks an older batch down to its input blocks; and what a tiny batch
      // held in memory
      .filter((s) => s.kind === 'shuffle' || (inDriver.has(s.id) && s.target?.reason === 'output'))
      .flatMap((s) => (b.lineages.get(s) ?? []).filter((l) => l !== undefined && !l.empty));
    const checksums = b.plan.stages
      .filter((s) => s.target?.kind === 'rdd' && !(inDriver.has(s.id) && s.target.reason === 'output'))
      .flatMap((s) => (b.lineages.get(s) ?? []).filter((l) => l !== undefined))
      .map((l) => [l.key, l.checksum] as const);
    return {
      batchTimeMs: b.t,
      fingerprint: b.fingerprint,
      status: 'committed',
      dueAtMs: b.dueAtMs,
      startedAtMs: start,
      finishedAtMs: b.finishedAtMs,
      schedulingDelayMs: Math.max(0, start - b.dueAtMs),
      processingMs: b.finishedAtMs - start,
      receiveWindowMs: start - b.startedAtMs,
      totalDelayMs: Math.max(0, b.finishedAtMs - b.dueAtMs),
      recovered: b.recovered,
      ...b.catchUp,
      input: {
        records: streams.reduce((n, s) => n + s.records, 0),
        deadLetters,
        capped: streams.some((s) => s.capped),
      },
      phases: b.phases,
      stages: this.stages.sort((x, y) => x.id - y.id),
      outputs,
      tasks: { ...this.totals, recomputed: b.recomputed },
      deadLettered: deadLetters + b.taskDeadLetters,
      ...deliveryOf(b.received),
      ...(b.skipped ? { skipped: { reason: b.skipped.reason, records: b.skipped.records } } : {}),
      ...(outputLineage.length > 0 ? { outputLineage } : {}),
      ...(memoryLineage.length > 0 ? { memoryLineage } : {}),
      ...(checksums.length > 0 ? { checksums: Object.fromEntries(checksums) } : {}),
      requests: {
        get: b.requests.get + m.get,
        put: b.requests.put + m.put + 1,
        list: b.requests.list,
        delete: b.requests.delete,
        bytesRead: b.requests.bytesRead + m.bytesRead,
        bytesWritten: b.requests.bytesWritten + m.bytesWritten,
      },
    };
  }
}

/**
 * What an idle batch (issue 11) reports to `run()`, `onBatch` and readers listing batches: it
 * runs no task and stores no manifest of its own (its idle span under idle/ stands for it).
 */
export function idleManifest(
  t: number,
  fingerprint: string,
  timing: { readonly dueAtMs: number; readonly startedAtMs: number; readonly finishedAtMs: number },
  requests: RequestCounts,
): BatchManifest {
  return {
    batchTimeMs: t,
    fingerprint,
    status: 'committed',
    idle: true,
    dueAtMs: timing.dueAtMs,
    startedAtMs: timing.startedAtMs,
    finishedAtMs: timing.finishedAtMs,
    schedulingDelayMs: Math.max(0, timing.startedAtMs - timing.dueAtMs),
    processingMs: timing.finishedAtMs - timing.startedAtMs,
    totalDelayMs: Math.max(0, timing.finishedAtMs - timing.dueAtMs),
    recovered: false,
    input: { records: 0, deadLetters: 0, capped: false },
    phases: {},
    stages: [],
    outputs: [],
    tasks: { total: 0, attempts: 0, retries: 0, speculative: 0, recomputed: 0 },
    deadLettered: 0,
    requests,
  };
}
