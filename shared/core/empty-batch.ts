/**
 * When a batch may take the idle fast path (issue 11): no task, no input block, no write-ahead
 * entry, no empty partition, no output file, no manifest of its own; it is committed in an idle
 * span (`idle-span.ts`). The rule, exactly (docs/ARCHITECTURE.md, "The idle fast path"):
 *
 * 1. every source returned no record and no dead letter for the interval, and no redelivered or
 *    duplicate message either (those counts belong in a manifest);
 * 2. no batch is pending (a backlog or a re-run after a restart runs the normal way);
 * 3. no window can still hold data: the last batch with input is at least `reachMs` back, the sum
 *    over windowed streams of window length plus slide (windows of windows add up);
 * 4. every stored state and window RDD of the last batch that did work was empty:
 *    `updateStateByKey` (Spark calls it every batch, for every key it holds) and `mapWithState`
 *    (whose timeouts fall due on the clock) take the fast path only while their state is EMPTY,
 *    and so do incremental windows (`reduceByKeyAndWindow` with `inverse`, which keep keys whose
 *    value went back to zero unless a `filter` drops them). A pipeline that holds state runs every
 *    batch, as Spark does; with nothing held, no update function and no timeout can run;
 * 5. the graph has no `transform`/`transformWith` of user code (it may bring in data of its own,
 *    say a union with a static dataset) — joins and cogroups built on them are fine — and no
 *    `count()` (Spark's emits 0 for an empty batch);
 * 6. the batch is not one to skip (`--skip-batch`). Fault injection keeps the fast path (an idle
 *    batch runs no task to fault, and crash points fire on batches that run).
 *
 * Output operations still run for an idle batch as Spark runs them for an empty one:
 * `foreachRDD` and `print` get an empty RDD on the driver (reading it makes no request); saved
 * outputs write nothing, not even `_SUCCESS`: the idle span record says the batch is done.
 *
 * @module
 */
import type { StreamingContext } from './context.ts';
import type { BatchManifest } from './driver.ts';

/** How far back (ms) data can still reach a batch's output: the sum of window lengths plus slides. */
export function graphReachMs(ctx: StreamingContext): number {
  let reach = 0;
  for (const s of ctx.graph.streams) {
    const w = s.params.windowMs;
    if (typeof w === 'number') reach += w + s.slideMs;
  }
  return reach;
}

/**
 * Operators that produce a record from none: user code over the batch's RDD (`transform`, which
 * may bring in data of its own) and `count` (Spark's count() emits 0 for an empty batch). Also
 * incremental windows (`inverse`: `reduceByKeyAndWindow` with an inverse, `countByValueAndWindow`):
 * their result is a running state carried from slide to slide (stored only on slide batches, and
 * kept with zero counts when the window is shorter than the slide), so they run every batch.
 */
export function hasOpaqueTransform(ctx: StreamingContext): boolean {
  return ctx.graph.streams.some(
    (s) =>
      s.kind === 'transform' ||
      s.kind === 'transformWith' ||
      s.kind === 'count' ||
      (s.params as { inverse?: unknown } | undefined)?.inverse === true,
  );
}

/** What a source handed over for one interval, as far as the decision needs it. */
export interface PolledInput {
  /** The records, or only their number (issue 14: cuts written during the interval). */
  readonly records: { readonly length: number };
  readonly deadLetters: readonly unknown[];
  readonly delivery?: { readonly redelivered: number; readonly duplicates: number };
}

export function isEmptyInput(polled: readonly PolledInput[]): boolean {
  return polled.every(
    (b) =>
      b.records.length === 0 &&
      b.deadLetters.length === 0 &&
      (b.delivery === undefined || b.delivery.redelivered + b.delivery.duplicates === 0),
  );
}

/**
 * The driver's memory of when the stream last did work: the last batch with input, and whether
 * the state and window RDDs the last working batch stored were all empty.
 */
export class QuietTracker {
  readonly reachMs: number;
  readonly enabled: boolean;
  private lastInputMs: number | undefined;
  private storedEmpty: boolean;

  constructor(ctx: StreamingContext, options: { enabled: boolean }) {
    this.reachMs = graphReachMs(ctx);
    this.enabled = options.enabled && !hasOpaqueTransform(ctx);
    // until a batch has shown it, stored state is not known to be empty (unless there is none)
    this.storedEmpty = !ctx.graph.streams.some((s) => s.persisted);
  }

  /**
   * Where the driver resumes: `lastManifestMs` is the last committed batch that did work (its
   * windows may still hold data); `lastIdleMs` the end of the last idle span (everything was
   * quiet then). Whichever is later tells.
   */
  resume(lastManifestMs: number | undefined, lastIdleMs: number | undefined): void {
    // a new store: stored state is empty unless an initial state fills it (known after batch one)
    if (lastManifestMs === undefined && lastIdleMs === undefined) return;
    if (lastIdleMs !== undefined && (lastManifestMs === undefined || lastIdleMs > lastManifestMs)) {
      this.storedEmpty = true;
      this.lastInputMs = undefined;
      return;
    }
    // a manifest is last: conservatively, as if it had input (windows may still hold it)
    this.lastInputMs = lastManifestMs;
  }

  /** A batch ran the normal way and committed: remember whether it had input and stored anything. */
  observe(m: BatchManifest): void {
    if (m.input.records > 0 || m.input.deadLetters > 0) this.lastInputMs = m.batchTimeMs;
    this.storedEmpty = m.outputs
      .filter((o) => o.kind === 'rdd' && (o.reason === 'state' || o.reason === 'window'))
      .every((o) => o.records === 0);
  }

  /** Rules 3 and 4 (and 5, 6 through `enabled`): no operator can produce output at `t` from what is held. */
  quietAt(t: number): boolean {
    if (!this.enabled || !this.storedEmpty) return false;
    return this.lastInputMs === undefined || t - this.lastInputMs > this.reachMs;
  }

  /** The whole rule for batch `t` given what the sources handed over. */
  canSkip(t: number, polled: readonly PolledInput[], pending: number): boolean {
    return pending === 0 && this.quietAt(t) && isEmptyInput(polled);
  }
}
