/**
 * How long a pipeline goes on showing a batch's data after that batch: the drain span. When a
 * finite source (a file, stdin) ends, `run` keeps closing (empty) batches until every window
 * that holds the source's data has emitted, instead of stopping with the data still inside
 * windows that never fire.
 *
 * A window of length W over a stream of interval I holds a batch at time d in the windows at
 * t with d <= t < d + W, so its last emission holding d is at most d + W - I. A mapWithState
 * with a timeout T emits a key's time-out at the first batch more than T after its last record,
 * at most d + T + I. Windows of windows add up. State without a timeout (updateStateByKey)
 * never lets go of its data, so it adds nothing: its latest state is in the last data batch.
 */
import type { StreamingContext } from '../context.ts';
import type { DStream } from '../dstream.ts';

/** The drain span of the pipeline in ms: the longest over its outputs (0 without windows or timeouts). */
export function drainSpanMs(ctx: StreamingContext): number {
  const interval = ctx.batchIntervalMs;
  const memo = new Map<DStream<unknown>, number>();
  const span = (s: DStream<unknown>): number => {
    const known = memo.get(s);
    if (known !== undefined) return known;
    memo.set(s, 0); // cycles do not exist in a DStream graph; this only guards the recursion
    let own = 0;
    const timeoutMs = s.params.timeoutMs;
    if (s.lookBackMs > 0) own = Math.max(0, s.lookBackMs - interval);
    if (typeof timeoutMs === 'number')
      own = Math.max(own, Math.floor(timeoutMs / interval) * interval + interval);
    const value = own + Math.max(0, ...s.parents.map(span));
    memo.set(s, value);
    return value;
  };
  return Math.max(0, ...ctx.graph.outputs.map((o) => span(o.stream)));
}

/** The last batch time of the drain after finite sources ended at batch `t`; logs it. */
export function drainUntilMs(
  ctx: StreamingContext,
  t: number,
  log: (e: Record<string, unknown>) => void,
): number {
  const untilMs = t - ctx.batchIntervalMs + drainSpanMs(ctx);
  if (untilMs >= t) {
    const batches = (untilMs - t) / ctx.batchIntervalMs + 1;
    log({ event: 'source.drain', fromMs: t, untilMs, batches });
  }
  return untilMs;
}
