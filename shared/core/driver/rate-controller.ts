/**
 * The rate controller: backpressure and catch-up, as Spark's `RateController` (fed each batch's
 * completion, it sets the receivers' rate). After a batch whose work outlasted the interval the
 * next batches take at most as many records as the interval can process; the cap grows back once
 * batches are fast again. The work is fitted as a fixed cost per batch plus a cost per record (from
 * two recent batches of different sizes): when the fixed cost alone fills the interval, a lower cap
 * cannot help and is not set. For catch-up it tells how many due batches to close at once after a gap
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
  /** Records and work (processing after the poll) of recent batches with input. */
  private readonly samples: { records: number; work: number }[] = [];

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
    const records = m.input.records;
    const other = this.samples.findLast(
      (x) => Math.max(x.records, records) >= 2 * Math.min(x.records, records),
    );
    if (records > 0) {
      this.samples.push({ records, work });
      if (this.samples.length > 10) this.samples.shift();
    }
    if (work > interval && records > 0) {
      // work = fixed + perRecord * records, fitted on a recent batch of a quite different size;
      // without one, all of it is taken as per record (the linear estimate)
      let sustainable = Math.floor((records * interval * 0.9) / work);
      if (other) {
        const perRecord = (other.work - work) / (other.records - records);
        const fixed = work - perRecord * records;
        if (!(perRecord > 0) || fixed >= interval * 0.9) {
          // fewer records do not make the batch faster (per-batch cost: requests, invocations,
          // a loaded machine): a lower cap would only leave records waiting in the source
          this.o.log({
            event: 'backpressure.fixed-cost',
            batchTimeMs: m.batchTimeMs,
            fixedMs: Math.round(fixed),
          });
          return;
        }
        sustainable = Math.max(sustainable, Math.floor((interval * 0.9 - Math.max(0, fixed)) / perRecord));
      }
      this.cap = Math.min(this.o.maxRecordsPerBatch ?? Infinity, Math.max(1, sustainable));
      this.o.log({ event: 'backpressure', batchTimeMs: m.batchTimeMs, maxRecordsPerBatch: this.cap });
    } else if (this.cap !== undefined && work < interval * 0.7) {
      this.cap = Math.floor(this.cap * 1.25);
      if (this.cap > 1e9) this.cap = undefined;
    }
  }
}
