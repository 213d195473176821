/**
 * Batches commit in time order, as Spark's `JobScheduler` completes job sets of a stream one
 * after the other: a batch goes on to its outputs and commit only once the batch before it
 * committed, and fails if that one failed. A backlog runs batches at once; this chain keeps their
 * outputs and manifests in order.
 *
 * @module
 */
export class CommitOrder {
  /** Resolves true once the latest started batch committed, false if it failed. */
  private latest: Promise<boolean> = Promise.resolve(true);

  /**
   * Runs a batch's work, handing it the promise of the batch before it (true: it committed); the
   * next batch to start waits for this one.
   */
  async next<T>(work: (previous: Promise<boolean>) => Promise<T>): Promise<T> {
    const previous = this.latest;
    let settle!: (ok: boolean) => void;
    this.latest = new Promise<boolean>((r) => {
      settle = r;
    });
    try {
      const result = await work(previous);
      settle(true);
      return result;
    } catch (err) {
      settle(false);
      throw err;
    }
  }

  /** A failed batch made the ones after it fail; a retry starts a fresh order. */
  reset(): void {
    this.latest = Promise.resolve(true);
  }
}
