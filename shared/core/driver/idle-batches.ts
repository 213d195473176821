/**
 * The batch loop's idle fast path (issue 11): commits empty batches of a quiet stream in the open
 * idle span instead of one manifest each (`../idle-path.ts` decides and writes the span), fenced
 * by the driver's lease; fills the batches a sleeping scheduler missed as idle; flushes the open
 * span when data comes back or the driver stops.
 *
 * @module
 */
import { BatchFailedError } from '../../errors.ts';
import type { StreamingContext } from '../context.ts';
import type { CountingObjectStore } from '../counting-store.ts';
import type { BatchManifest } from './manifest.ts';
import type { ResolvedDriverOptions } from './options.ts';
import { runOutputs } from './outputs.ts';
import type { DriverHandles, DriverRooms } from './wiring.ts';

export class IdleBatches {
  constructor(
    private readonly ctx: StreamingContext,
    private readonly options: ResolvedDriverOptions,
    private readonly rooms: DriverRooms,
    private readonly d: DriverHandles,
  ) {}

  /** idle fast path (issue 11): commits the open idle span (one put-if-absent), fenced. */
  async flush(): Promise<void> {
    await this.d.fence().check('an idle span');
    await this.rooms.idlePath.flush();
  }

  /**
   * idle fast path (issue 11): commits every batch due before `nowMs` as idle without polling the
   * sources, when the stream is quiet and nothing is pending (a sleeping scheduler woken by
   * messages: they go to the current batch). Returns how many batches it committed.
   */
  async fillUntil(nowMs: number): Promise<number> {
    const at = this.d.at;
    const idlePath = this.rooms.idlePath;
    let n = 0;
    const none = { get: 0, put: 0, list: 0, delete: 0, bytesRead: 0, bytesWritten: 0 };
    while (at.pending.length === 0 && at.nextTimeMs + this.ctx.batchIntervalMs <= nowMs) {
      const t = at.nextTimeMs;
      if (!idlePath.quietAt(t)) break;
      if (idlePath.add(t, none)) await this.flush();
      at.lastCommittedMs = t;
      at.nextTimeMs = t + this.ctx.batchIntervalMs;
      n++;
    }
    if (n > 0) await this.flush();
    idlePath.woke(); // the span it slept through must not send it back to sleep at once
    return n;
  }

  /** idle fast path (issue 11): commits batch t in the open idle span; foreachRDD and print see an empty RDD. */
  async commit(
    t: number,
    previous: Promise<boolean>,
    timing: { dueAtMs: number; startedAtMs: number },
    requestsBefore: ReturnType<CountingObjectStore['snapshot']>,
  ): Promise<BatchManifest> {
    const { store, idlePath, inputs, retention, lineage } = this.rooms;
    if (!(await previous)) {
      throw new BatchFailedError(t, `the batch before it failed; batches commit in time order`);
    }
    const pipeline = this.d.pipeline();
    await retention.cleanUp(t, pipeline); // before the span counts the batch's requests
    const full = idlePath.add(t, store.since(requestsBefore), inputs.idlePositions);
    if (this.ctx.graph.outputs.some((o) => o.kind === 'foreach')) {
      const gen = pipeline.generate(t);
      gen.store = store;
      gen.idleSpans = idlePath.specSpans(t, retention.historyMs).idleSpans;
      await runOutputs(this.ctx, store, t, gen, undefined, (key) => lineage.recover(key));
    }
    if (full) await this.flush();
    const finishedAtMs = Date.now();
    const manifest = idlePath.manifest(
      t,
      pipeline.fingerprint,
      { ...timing, finishedAtMs },
      store.since(requestsBefore),
    );
    const at = this.d.at;
    at.lastCommittedMs = Math.max(t, at.lastCommittedMs ?? t);
    pipeline.forget(t - 4 * this.ctx.batchIntervalMs);
    inputs.forget(t);
    this.options.onBatch?.(manifest);
    return manifest;
  }
}
