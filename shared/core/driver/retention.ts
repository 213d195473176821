/**
 * Retention and clean-up, as Spark's `DStream.clearMetadata` driven by each stream's
 * `rememberDuration`: after batch t commits, what no later batch can read is deleted. How far
 * back a batch may read is asked of the streams (`DStream.rememberMs`: a window's duration, a
 * state stream's previous RDD), never worked out here from operator kinds. Shuffle data lives
 * for its own batch; materialized RDDs fall out of the history except state at checkpoint times
 * (kept until the next checkpoint has fallen out too, so recomputing lost state never walks
 * further back); input blocks and write-ahead entries stay `retainInputsMs` and at least as long
 * as recomputation from the oldest kept checkpoint may need them.
 *
 * @module
 */
import type { ObjectStore } from '../../ports/object-store.ts';
import type { Pipeline, StreamingContext } from '../context.ts';
import { parseTimeKey, timeKey } from '../layout.ts';

export class Retention {
  private historyValue: number | undefined;

  constructor(
    private readonly ctx: StreamingContext,
    private readonly store: ObjectStore,
    private readonly o: { readonly checkpointEvery: number; readonly retainInputsMs: number },
    /** idle fast path (issue 11): batch t is in an idle span, it stored nothing to list. */
    private readonly isIdle: (t: number) => boolean = () => false,
  ) {}

  /** How far back a batch may read materialized RDDs: the longest remember duration of any stream. */
  get historyMs(): number {
    // the graph is frozen once the driver started: its streams' needs do not change
    this.historyValue ??= Math.max(
      2 * this.ctx.batchIntervalMs,
      ...this.ctx.graph.streams.map((s) => s.rememberMs),
    );
    return this.historyValue;
  }

  /** How long input blocks stay: the retention, and never less than recovery may need. */
  get inputRetentionMs(): number {
    return Math.max(
      this.o.retainInputsMs,
      this.historyMs + 2 * this.o.checkpointEvery * this.ctx.batchIntervalMs,
    );
  }

  /**
   * How much batch time one clean-up LIST covers: the smallest power of ten of milliseconds of at
   * least 10 s and one interval (10 s at a 1 s interval: ten batches). Time keys are zero-padded
   * milliseconds, so `rdd/<the key's first 11 digits>` lists a whole 10 s block at once.
   */
  get blockMs(): number {
    let block = 10_000;
    while (block < this.ctx.batchIntervalMs) block *= 10;
    return block;
  }

  /** Per sweep: every batch time up to this one was cleaned (undefined: not yet in this driver). */
  private readonly doneThrough = new Map<string, number>();
  private lastT: number | undefined;
  private lastBlock: number | undefined;
  /** Batches with data this driver ran that stored nothing under `shuffle/` or `rdd/`. */
  private readonly nothingStored = new Set<number>();

  /**
   * Drops per-batch data no later batch than t can read, and input blocks older than the
   * retention: not every batch, but once a whole block of batch times (`blockMs`, 10 s at a 1 s
   * interval) has fallen behind what t may read, with one LIST per prefix for the block (issue 11:
   * it listed 2 to 5 prefixes every batch). Objects stay up to one block longer; what retention
   * keeps is never deleted earlier. `flush` cleans the rest at stop (and so before a sleep).
   */
  async cleanUp(t: number, pipeline: Pipeline, storedNothing = false): Promise<void> {
    this.lastT = Math.max(t, this.lastT ?? t);
    // a tiny batch kept its shuffle and RDDs in memory: its times need no LIST of shuffle/ or rdd/
    if (storedNothing) this.nothingStored.add(t);
    // once a block: when the shuffle data of the batch before t starts a new block (the other
    // prefixes, further behind, clean their whole blocks then too, at most a block later)
    const block = Math.floor((t - this.ctx.batchIntervalMs) / this.blockMs);
    if (block === this.lastBlock) return;
    this.lastBlock = block;
    await this.sweepAll(t, pipeline, false);
  }

  /** Cleans everything the last batch's clean-up may drop, partial blocks too (at stop). */
  async flush(pipeline: Pipeline): Promise<void> {
    if (this.lastT !== undefined) await this.sweepAll(this.lastT, pipeline, true);
  }

  private async sweepAll(t: number, pipeline: Pipeline, exact: boolean): Promise<void> {
    const interval = this.ctx.batchIntervalMs;
    const expired = t - this.historyMs - interval;
    const every = this.o.checkpointEvery;
    const zero = pipeline.zeroTimeMs;
    const isCheckpoint = (time: number) => ((time - zero) / interval) % every === 0;
    const stateNames = [
      ...new Set(
        this.ctx.graph.streams.filter((s) => s.persisted && s.fixedShape).map((s) => `${s.storageName}/`),
      ),
    ];
    const sweep = (
      name: string,
      family: string,
      bound: number,
      drop: (time: number, rest: string) => boolean,
    ) => this.sweep(name, family, bound, exact, zero, drop);
    // shuffle data is only read within its batch (its lineage in its trailer goes with it; a
    // `.lineage.json` of a store written before issue 11 stays as long as the RDDs it fed)
    await sweep('shuffle', 'shuffle', t - interval, (_, rest) => !rest.endsWith('.lineage.json'));
    await sweep('shuffle-history', 'shuffle', expired, () => true);
    // materialized RDDs fall out of the history, except state at checkpoint times, which stays
    // until the next checkpoint has fallen out too
    await sweep(
      'rdd',
      'rdd',
      expired,
      (time, rest) => !(isCheckpoint(time) && stateNames.some((n) => rest.startsWith(n))),
    );
    await sweep('rdd-checkpoint', 'rdd', expired - every * interval, (time) => time > zero);
    // what every shuffle/rdd sweep is past is not asked about again
    const past = Math.min(
      ...['shuffle', 'shuffle-history', 'rdd', 'rdd-checkpoint'].map(
        (n) => this.doneThrough.get(n) ?? -Infinity,
      ),
    );
    for (const s of this.nothingStored) if (s <= past) this.nothingStored.delete(s);
    const old = t - this.inputRetentionMs - interval;
    if (old > zero) {
      await sweep('inputs', 'inputs', old, () => true);
      await sweep('batches', 'batches', old, () => true);
    }
  }

  /**
   * Deletes the keys `family/<time>/<rest>` with time <= bound that `drop` names, one LIST per
   * block of `blockMs` (only whole blocks up to the bound unless `exact`); blocks whose batches
   * were all idle (they stored nothing) are not listed.
   */
  private async sweep(
    name: string,
    family: string,
    bound: number,
    exact: boolean,
    zero: number,
    drop: (time: number, rest: string) => boolean,
  ): Promise<void> {
    const block = this.blockMs;
    const interval = this.ctx.batchIntervalMs;
    // a driver that just started looks one block back (what its predecessor left in a partial block)
    let from = (this.doneThrough.get(name) ?? bound - block) + 1;
    while (from <= bound) {
      const start = Math.floor(from / block) * block;
      const end = start + block - 1;
      if (end > bound && !exact) return;
      const last = Math.min(end, bound);
      const empty = family === 'shuffle' || family === 'rdd' ? this.nothingStored : undefined;
      if (!this.allEmpty(Math.max(from, zero + interval), last, zero, empty)) {
        const prefix = `${family}/${timeKey(start).slice(0, 16 - String(block).length)}`;
        for (const key of await this.store.list(prefix)) {
          const [, timeText, ...rest] = key.split('/');
          const time = parseTimeKey(timeText!);
          if (time <= bound && drop(time, rest.join('/'))) await this.store.delete(key);
        }
      }
      this.doneThrough.set(name, last);
      from = last + 1;
    }
  }

  /** Every batch time in [from, to] was idle (the fast path: it stored nothing), or is in `empty`. */
  private allEmpty(from: number, to: number, zero: number, empty: ReadonlySet<number> | undefined): boolean {
    const interval = this.ctx.batchIntervalMs;
    for (let s = zero + Math.ceil((from - zero) / interval) * interval; s <= to; s += interval) {
      if (!this.isIdle(s) && !empty?.has(s)) return false;
    }
    return true;
  }
}
