/**
 * Why a batch did not simply run on time, as its manifest tells it:
 *
 * - `recovered`: re-run after a restart. Its write-ahead entry existed when the driver started,
 *   without a manifest: a driver before this one received its input and died (or was fenced)
 *   before committing it.
 * - `catchUp`: closed by this driver as part of a backlog because it was two or more intervals
 *   behind the clock (workers warming up, a slow batch, a gap after a restart). Its input was
 *   received by this driver; nothing is re-run.
 *
 * Each batch is at most one of the two; a batch that is neither ran on time.
 *
 * @module
 */
export class BatchOrigins {
  private readonly restart = new Set<number>();
  private readonly behind = new Set<number>();

  /** The batches pending when the driver started (write-ahead entry, no manifest). */
  restarted(times: Iterable<number>): void {
    for (const t of times) this.restart.add(t);
  }

  /** A batch this driver closed ahead of running it, to catch up with the clock. */
  closedBehind(t: number): void {
    if (!this.restart.has(t)) this.behind.add(t);
  }

  isRecovered(t: number): boolean {
    return this.restart.has(t);
  }

  /** The manifest field for batch `t`: `{ catchUp: true }` when it was closed to catch up. */
  catchUpOf(t: number): { catchUp?: true } {
    return this.behind.has(t) ? { catchUp: true } : {};
  }

  /** Batch `t` committed: nothing more to remember about it. */
  forget(t: number): void {
    this.restart.delete(t);
    this.behind.delete(t);
  }
}
