/**
 * The rate controller: backpressure and catch-up, as Spark's `RateController` (fed each batch's
 * completion, it sets the receivers' rate). After a batch whose work outlasted the interval the
 * next batches take at most as many records as the interval can process; the cap grows back once
 * batches are fast again. For catch-up it tells how many due batches to close at once after a gap
 * and how many pending ones to run together, and how long the slowest recent batch took (the
 * Lambda's deadline check).
 *
 * @module
 */
import { backlogChunk } from './batch-retry.ts';
import type { BatchManifest } from './manifest.ts';

export class RateController {
  private cap: number | undefined;
  private readonly recentProcessing: number[] = [];

  constructor(
    private readonly o: {
      readonly intervalMs: number;
      readonly maxRecordsPerBatch: number | undefined;
      /** Adaptive (false with `backpressure: false` or the manual clock): only the fixed maximum. */
      readonly adaptive: boolean;
      readonly log: (event: Record<string, unknown>) => void;
    },
  ) {}

  /** The most records the next batch may take from a source (undefined: no limit). */
  get maxRecords(): number | undefined {
    return this.cap ?? this.o.maxRecordsPerBatch;
  }

  /** The slowest processing time among the last ten batches. */
  get slowestRecentMs(): number {
    return Math.max(0, ...this.recentProcessing);
  }

  /** A batch committed: adjust the cap from how long its work took. */
  onBatchCompleted(m: BatchManifest): void {
    this.adjustCap(m);
  }

  /** Remember a batch's processing time (the run loop's batches, not a backlog's). */
  recordProcessing(ms: number): void {
    this.recentProcessing.push(ms);
    if (this.recentProcessing.length > 10) this.recentProcessing.shift();
  }

  /** How many batches that are already due to close at once after a gap (0: not behind). */
  dueBacklog(nextBatchMs: number, nowMs: number, room: number): number {
    const behind = Math.floor((nowMs - nextBatchMs) / this.o.intervalMs);
    return behind >= 2 ? Math.min(behind, room, 64) : 0;
  }

  /** How many pending batches to run together: as many as the (adaptive) invoker limit serves. */
  catchUpChunk(limit: number, partitions: number): number {
    return backlogChunk(limit, partitions);
  }

  private adjustCap(m: BatchManifest): void {
    if (!this.o.adaptive) return;
    // the first batch after a start pays for warm-up (module loading, connections): not a signal
    if (this.recentProcessing.length === 0) return;
    const interval = this.o.intervalMs;
    // for polling sources the poll is the interval itself: count the work after it
    const work = m.processingMs - (m.phases.receive ?? 0);
    if (work > interval && m.input.records > 0) {
      const sustainable = Math.max(1, Math.floor((m.input.records * interval * 0.9) / work));
      this.cap = Math.min(this.o.maxRecordsPerBatch ?? Infinity, sustainable);
      this.o.log({ event: 'backpressure', batchTimeMs: m.batchTimeMs, maxRecordsPerBatch: this.cap });
    } else if (this.cap !== undefined && work < interval * 0.7) {
      this.cap = Math.floor(this.cap * 1.25);
      if (this.cap > 1e9) this.cap = undefined;
    }
  }
}
