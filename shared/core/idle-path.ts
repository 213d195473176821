/**
 * The driver's side of the idle fast path (issue 11), kept out of the driver so it can move with
 * it: what the driver knows of idle spans, the decision (`empty-batch.ts`), the open span
 * (`idle-span.ts`), and the record an idle batch reports instead of a stored manifest.
 *
 * @module
 */
import type { ObjectStore } from '../ports/object-store.ts';
import type { StreamingContext } from './context.ts';
import type { CountingObjectStore, RequestCounts } from './counting-store.ts';
import { type BatchManifest, idleManifest } from './driver/manifest.ts';
import { type PolledInput, QuietTracker } from './empty-batch.ts';
import { IdleSpans, IdleSpanWriter, listIdleSpans, readIdleSpan } from './idle-span.ts';

export class IdlePath {
  readonly spans = new IdleSpans();
  readonly quiet: QuietTracker;
  private readonly writer: IdleSpanWriter;
  private readonly store: ObjectStore;
  private readonly intervalMs: number;

  constructor(
    ctx: StreamingContext,
    store: CountingObjectStore,
    options: { enabled: boolean; fingerprint: () => string },
  ) {
    this.store = store;
    this.intervalMs = ctx.batchIntervalMs;
    this.quiet = new QuietTracker(ctx, { enabled: options.enabled });
    this.writer = new IdleSpanWriter({
      store,
      spans: this.spans,
      intervalMs: ctx.batchIntervalMs,
      fingerprint: options.fingerprint,
    });
  }

  /**
   * At start: the committed spans (one LIST). Returns the last batch they commit and, when that
   * is later than `lastReceivedMs`, the source positions the last span saved (one GET).
   */
  async load(
    lastManifestMs: number | undefined,
    lastReceivedMs: number | undefined,
  ): Promise<{ lastMs: number | undefined; positions: Record<string, unknown> }> {
    const spans = await listIdleSpans(this.store);
    for (const s of spans) this.spans.add(s, this.intervalMs);
    const lastMs = this.spans.lastMs;
    this.quiet.resume(lastManifestMs, lastMs);
    let positions: Record<string, unknown> = {};
    const last = spans[spans.length - 1];
    if (last && lastMs !== undefined && (lastReceivedMs === undefined || lastMs > lastReceivedMs)) {
      positions = (await readIdleSpan(this.store, last))?.positions ?? {};
    }
    return { lastMs, positions };
  }

  /** The decision for batch `t` (empty-batch.ts). */
  canSkip(t: number, polled: readonly PolledInput[], pending: number): boolean {
    return this.quiet.canSkip(t, polled, pending);
  }

  /** True when no operator can produce output at `t` from what is held (input aside). */
  quietAt(t: number): boolean {
    return this.quiet.quietAt(t);
  }

  /** Batch `t` is idle: added to the open span (readers see it at once). True: flush now. */
  add(t: number, requests: RequestCounts, positions?: Record<string, unknown>): boolean {
    return this.writer.add(t, requests, positions);
  }

  /** Commits the open span (one put-if-absent), if any. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  get hasOpenSpan(): boolean {
    return this.writer.pending;
  }

  /** A batch ran the normal way and committed. */
  worked(m: BatchManifest): void {
    this.writer.busy();
    this.quiet.observe(m);
  }

  /** How long (ms) the stream has been idle, batch after batch. */
  /** A sleeping scheduler woke (for messages or a nudge): the quiet time it slept through does not count. */
  woke(): void {
    this.writer.busy();
  }

  get idleForMs(): number {
    return this.writer.idleStreak * this.intervalMs;
  }

  /** The spans a task of batch `t` may read back over (`historyMs`), for its spec. */
  specSpans(t: number, historyMs: number): { idleSpans?: [number, number][] } {
    const spans = this.spans.overlapping(t - historyMs - this.intervalMs, t);
    return spans.length > 0 ? { idleSpans: spans } : {};
  }

  /** What an idle batch reports to `run()` and `onBatch` (it stores no manifest of its own). */
  manifest(
    t: number,
    fingerprint: string,
    timing: { dueAtMs: number; startedAtMs: number; finishedAtMs: number },
    requests: RequestCounts,
  ): BatchManifest {
    return idleManifest(t, fingerprint, timing, requests);
  }
}

/** A batch read from an idle span as a manifest (for readers listing batches: status, the UI). */
export function idleManifestOf(t: number, fingerprint: string): BatchManifest {
  const none = { get: 0, put: 0, list: 0, delete: 0, bytesRead: 0, bytesWritten: 0 };
  return idleManifest(t, fingerprint, { dueAtMs: t, startedAtMs: t, finishedAtMs: t }, none);
}
