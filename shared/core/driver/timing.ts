/**
 * When a batch's processing starts, by Spark's rule: when its interval closes. A polling source
 * (SQS) is polled during the interval, from its start; that receive window is not processing and
 * not scheduling delay, and the manifest keeps it apart (`receiveWindowMs`).
 *
 * @module
 */

/**
 * The processing start of batch `t` that began receiving at `startedAtMs` and had its input
 * durable at `readyAtMs`: the close of the interval, or when the input was ready if that was
 * earlier (a source done polling early) or later (polling past the close), and never before the
 * batch began (a late batch).
 */
export function processingStart(startedAtMs: number, readyAtMs: number, t: number): number {
  return Math.max(startedAtMs, Math.min(readyAtMs, t));
}

/** Waits until the wall clock reaches `timeMs` (an interval's close), or `signal` aborts. */
export async function sleepUntil(timeMs: number, signal?: AbortSignal): Promise<void> {
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
