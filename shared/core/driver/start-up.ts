/**
 * The driver's start-up and shut-down, as Spark's `JobGenerator.start`/`restart` and
 * `JobScheduler.stop`: takes the lease, finds where to resume (`resume.ts`: graph metadata,
 * committed and pending batches, idle spans, source positions), moves the batch positions there
 * and starts the sources; at the end commits the open idle span while the lease is still ours,
 * stops the sources and gives the lease back.
 *
 * @module
 */
import type { Pipeline, StreamingContext } from '../context.ts';
import type { BatchOrigins } from './batch-origin.ts';
import { DriverFence } from './fencing.ts';
import type { IdleBatches } from './idle-batches.ts';
import type { ResolvedDriverOptions } from './options.ts';
import { resumePoint } from './resume.ts';
import type { SkippedBatch } from './skip.ts';
import type { DriverHandles, DriverRooms } from './wiring.ts';

/** What start-up sets on the batch loop, as soon as it is known. */
export interface StartTarget {
  /** The lease, once taken: what follows writes under it (and stop gives it back). */
  fenced(fence: DriverFence): void;
  resumed(pipeline: Pipeline, skipped: Map<number, SkippedBatch>): void;
  started(): void;
}

/** Loads or creates meta/graph.json, checks the graph, finds where to resume, starts sources. */
export async function startUp(
  ctx: StreamingContext,
  o: ResolvedDriverOptions,
  r: DriverRooms,
  d: DriverHandles,
  origins: BatchOrigins,
  set: StartTarget,
): Promise<void> {
  if (o.lease !== false) {
    set.fenced(await DriverFence.take(r.store, o.lease, (e) => d.log(e)));
  }
  const began = Date.now();
  const at = await resumePoint(ctx, r.store, r.inputs, r.idlePath, o);
  set.resumed(at.pipeline, at.skipped);
  d.at.lastCommittedMs = at.lastCommittedMs;
  d.at.pending = at.pending;
  origins.restarted(d.at.pending);
  d.at.nextTimeMs = at.nextTimeMs;
  // the batch the driver was in when it began: a boundary passing while sources start does not
  // leave that batch empty (its records would all go to the next); catch-up batches of a pause
  // before it stay empty
  const zero = at.pipeline.zeroTimeMs;
  const interval = ctx.batchIntervalMs;
  const openFromMs = Math.max(at.nextTimeMs, zero + (Math.floor((began - zero) / interval) + 1) * interval);
  await r.inputs.startSources(o.sources, zero, openFromMs);
  set.started();
  d.log({
    event: 'driver.start',
    store: r.store.describe(),
    invoker: r.invoker.describe(),
    zeroTimeMs: at.pipeline.zeroTimeMs,
    resumeAtMs: d.at.pending[0] ?? d.at.nextTimeMs,
    pending: d.at.pending.length,
    fingerprint: d.pipeline().fingerprint,
  });
}

/** Stops the driver (`stopped` marks it: it runs nothing more) and gives its lease back. */
export async function shutDown(
  r: DriverRooms,
  d: DriverHandles,
  idle: IdleBatches,
  started: boolean,
  stopped: () => void,
): Promise<void> {
  // idle fast path (issue 11): commit the open idle span while the lease is still ours
  if (started && r.idlePath.hasOpenSpan && !d.fence().keeper?.fenced) await idle.flush();
  // clean-up runs once a block of batch times (retention.ts): the rest now (and so before a sleep)
  if (started && !d.fence().keeper?.fenced) await r.retention.flush(d.pipeline());
  stopped();
  d.fence().stop();
  await r.inputs.stopSources();
  await d.fence().release();
}
