/**
 * The driver's backlog, as in the paper's parallel recovery: batches closed behind (after a gap)
 * or left pending by a restart run at once, each stage starting as soon as what it reads exists.
 * Closing a batch here receives its input and writes its write-ahead entry without running it.
 *
 * @module
 */
import type { StreamingContext } from '../context.ts';
import { BatchPlan } from '../planner.ts';
import type { BatchOrigins } from './batch-origin.ts';
import type { BatchManifest } from './manifest.ts';
import type { DriverHandles, DriverRooms } from './wiring.ts';

/** A batch's plan made ahead (a backlog announces every batch's materializations first). */
export interface Prepared {
  readonly plan: BatchPlan;
  readonly done: Map<string, () => void>;
}

/**
 * Re-runs the first `n` pending batches at once (`runBatch` runs one, in commit order): each
 * stage starts as soon as what it reads exists (a state partition of the previous batch, say), so
 * independent work of different batches proceeds in parallel, as in the paper's parallel recovery.
 */
export async function runBacklog(
  n: number,
  d: DriverHandles,
  r: DriverRooms,
  origins: BatchOrigins,
  runBatch: (t: number, recovered: boolean, prepared?: Prepared) => Promise<BatchManifest>,
): Promise<BatchManifest[]> {
  await d.fence().check('the next batch');
  const times = d.at.pending.slice(0, n);
  d.log({ event: 'recovery.backlog', batches: times });
  // announce what every batch will materialize before any starts, so each can wait for its inputs
  const prepared = new Map(
    times.map((t) => {
      const plan = new BatchPlan(t, d.targetsOf(d.pipeline().generate(t)));
      return [t, { plan, done: r.stages.announce(t, plan) }] as const;
    }),
  );
  // every batch settles before a failure is reported, so a retry never overlaps a leftover
  const settled = await Promise.allSettled(
    times.map((t) => runBatch(t, origins.isRecovered(t), prepared.get(t))),
  );
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  d.at.pending.splice(0, n);
  return settled.map((r) => (r as PromiseFulfilledResult<BatchManifest>).value);
}

/**
 * Closes the next `n` batches: receives their input and writes their write-ahead entries, without
 * running them. They become pending and run as a backlog (catch-up after a gap, and tests).
 */
export async function closeBatches(
  n: number,
  ctx: StreamingContext,
  d: DriverHandles,
  r: DriverRooms,
  origins: BatchOrigins,
): Promise<number[]> {
  await d.fence().check('the next batch');
  const closed: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = d.at.nextTimeMs;
    await r.inputs.receive(t);
    d.at.pending.push(t);
    origins.closedBehind(t);
    d.at.nextTimeMs = t + ctx.batchIntervalMs;
    closed.push(t);
  }
  return closed;
}
