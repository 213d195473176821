/**
 * When a batch's processing starts, by Spark's rule: when its interval closes. A polling source
 * (SQS) is polled during the interval, from its start; that receive window is not processing and
 * not scheduling delay, and the manifest keeps it apart (`receiveWindowMs`).
 */

/**
 * The processing start of batch `t` that began receiving at `startedAtMs` and finished polling at
 * `polledAtMs` (0: no source polled): the close of the interval, or later when polling ended
 * before it or the batch began after it (a late batch).
 */
export function processingStart(startedAtMs: number, polledAtMs: number, t: number): number {
  return Math.max(startedAtMs, Math.min(polledAtMs || startedAtMs, t));
}
