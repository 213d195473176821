/**
 * Where a driver starts, as Spark's `JobGenerator.restart` from a checkpoint: the graph metadata
 * (meta/graph.json, written for a new store, checked for an existing one), the last committed
 * batch, the batches received and never committed (re-run first, from their stored input),
 * batches to skip on request, and the delivery ids and source positions of recent batches. The
 * committed idle spans (issue 11, `idle/`) are committed batches too: the last one may be later
 * than any manifest, and its source positions later than any write-ahead entry.
 *
 * @module
 */
import type { ObjectStore } from '../../ports/object-store.ts';
import { catalog } from '../catalog.ts';
import { Pipeline, type StreamingContext } from '../context.ts';
import type { IdlePath } from '../idle-path.ts';
import { loadGraphMeta } from './graph-meta.ts';
import type { InputTracker } from './input-tracker.ts';
import { prepareSkips, type SkippedBatch } from './skip.ts';

export interface ResumePoint {
  readonly pipeline: Pipeline;
  readonly lastCommittedMs: number | undefined;
  /** Received, never committed: re-run first, oldest first. */
  readonly pending: number[];
  readonly skipped: Map<number, SkippedBatch>;
  /** The first batch to close after the pending ones. */
  readonly nextTimeMs: number;
}

export async function resumePoint(
  ctx: StreamingContext,
  store: ObjectStore,
  inputs: InputTracker,
  idlePath: IdlePath,
  o: {
    readonly zeroTimeMs?: number;
    readonly clock: 'wall' | 'manual';
    readonly skipBatches?: readonly number[];
  },
): Promise<ResumePoint> {
  if (!ctx.graph.isFrozen) ctx.graph.freeze();
  const interval = ctx.batchIntervalMs;
  const fingerprint = new Pipeline(ctx, 0).fingerprint;
  const newZero = () =>
    o.zeroTimeMs ?? (o.clock === 'manual' ? 0 : Math.floor(Date.now() / interval) * interval);
  const meta = await loadGraphMeta(store, ctx, fingerprint, newZero);
  const stored = await catalog.snapshot(store);
  let lastCommittedMs = stored.committed.at(-1);
  // every batch whose input is stored but that never committed (also one before the last commit:
  // a backlog batch that failed while later ones went on) is re-run first
  const pending = [...stored.pending];
  const skipped = await prepareSkips(
    store,
    o.skipBatches ?? [],
    { pending, committed: new Set(stored.committed), keys: [...stored.batchKeys] },
    (t) => inputs.recordsOf(t),
  );
  // idle fast path (issue 11): committed idle spans are committed batches
  const idle = await idlePath.load(
    lastCommittedMs,
    stored.received.length ? Math.max(...stored.received) : undefined,
  );
  if (idle.lastMs !== undefined) lastCommittedMs = Math.max(lastCommittedMs ?? idle.lastMs, idle.lastMs);
  const last = Math.max(lastCommittedMs ?? meta.zeroTimeMs, ...pending);
  // redelivered messages are not counted twice; each source carries on after what it gave
  await inputs.resume(stored.received, last);
  inputs.resumeAt(idle.positions); // idle fast path (issue 11): a span's positions
  return {
    pipeline: new Pipeline(ctx, meta.zeroTimeMs),
    lastCommittedMs,
    pending,
    skipped,
    nextTimeMs: last + interval,
  };
}
