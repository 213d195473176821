/**
 * Input written DURING the interval (issue 14, item 1), as Spark Streaming's receivers do
 * (`BlockGenerator` cuts a block every `spark.streaming.blockInterval`, 200 ms, and
 * `ReceivedBlockHandler` stores it; the batch later only lists the blocks it was allocated).
 *
 * A `BlockGenerator` takes what a continuous source (`Source.continuous`) has every block interval
 * (interval / n, n = max(2, ceil(interval / 200 ms)): Spark's 200 ms at most, a whole number of cuts
 * per interval, each in the middle of its slot: `nextCutAtMs`), splits it into the input's partitions, encodes each part at once
 * (strings as UTF-8 line blocks, `encodeBlock`) and writes it under
 * `inputs/<t>/<stream>/<p>.<seq>.blk`, where `t` is the batch whose interval the cut falls in.
 * Closing batch `t` only *takes* the cuts of intervals up to `t` (no per-record work), and the
 * driver lists their blocks in the write-ahead entry (`received-blocks.ts`).
 *
 * Guarantees, unchanged: a cut's records are acknowledged to the source (`ack`) only once the
 * write-ahead entry listing its blocks is stored (`commit`); a cut taken for an entry that failed
 * to store stays and is taken again by the next try. The entry stores the source position right
 * after its last cut, so after a crash blocks of never sealed intervals are garbage (deleted at the
 * next start, `unsealedBlocks`) and their records are read again from that position.
 *
 * @module
 */
import type { DeadLetter, Source } from '../../ports/source.ts';
import { encodeBlock } from '../codec.ts';
import { layout, timeKey } from '../layout.ts';

/** One take from the source: its blocks (per partition), dead letters, position and ack token. */
export interface Cut {
  /** The batch whose interval this cut falls in (its blocks are keyed by it). */
  readonly batchTimeMs: number;
  /** Keys of the blocks written, per input partition (a partition may have none). */
  readonly blocks: readonly (string | undefined)[];
  readonly records: number;
  readonly deadLetters: readonly DeadLetter[];
  readonly position?: unknown;
  readonly ackTokens: readonly unknown[];
}

/** Taken from the source but not written yet (a failed write): written by the next cut. */
interface Carry {
  readonly records: unknown[];
  readonly deadLetters: DeadLetter[];
  readonly ackTokens: unknown[];
  readonly position?: unknown;
}

/** What closing a batch takes: the cuts of intervals up to its time, in order. */
export interface TakenCuts {
  readonly cuts: readonly Cut[];
  /** Block keys per partition, in cut order: the batch's input partition p is this list. */
  readonly partitionBlocks: string[][];
  readonly records: number;
  readonly deadLetters: DeadLetter[];
  /** The source position after the last cut taken (or the last committed one). */
  readonly position?: unknown;
  readonly ackTokens: unknown[];
}

/** The most records one cut takes (about 50 MB of 100-byte lines). */
export const MAX_CUT_RECORDS = 500_000;

/**
 * A cut before the last of its interval writes blocks only once it holds this many records; a
 * smaller one is carried to the next cut. A slow stream (10 events/s) then writes one block per
 * partition per batch, as it did before blocks were written during the interval, not one per cut:
 * a PUT costs the same for 1 record as for 2,000. The last cut of an interval always writes.
 */
export const MIN_EARLY_CUT_RECORDS = 2_000;

/** Cuts per batch interval: a block interval of Spark's 200 ms at most, at least two cuts. */
export function cutsPerInterval(batchIntervalMs: number): number {
  return Math.max(2, Math.ceil(batchIntervalMs / 200));
}

/** The block interval for a batch interval: the interval split into `cutsPerInterval` slots. */
export function blockIntervalMs(batchIntervalMs: number): number {
  return batchIntervalMs / cutsPerInterval(batchIntervalMs);
}

/**
 * When the next cut after `nowMs` is due: in the MIDDLE of a block slot, never near a batch
 * boundary. A cut is keyed by the batch its time falls in, so cuts timed at the boundaries would
 * land on either side of one as timers run late, and batches would get one cut more or less
 * (half again or half the records at a 100 ms interval). In the middle, a timer may run half a
 * slot late and every batch still gets `cutsPerInterval` cuts of one slot's records each.
 */
export function nextCutAtMs(nowMs: number, zeroTimeMs: number, batchIntervalMs: number): number {
  const every = blockIntervalMs(batchIntervalMs);
  const k = Math.floor((nowMs - zeroTimeMs) / every - 0.5) + 1;
  return zeroTimeMs + (k + 0.5) * every;
}

/** The key of block `seq` of partition `p`: beside the batch's other input blocks. */
export function cutBlockKey(t: number, stream: string, p: number, seq: number): string {
  return `inputs/${timeKey(t)}/${stream}/${p}.${seq}.blk`;
}

const CUT_BLOCK = /^inputs\/(\d+)\/[^/]+\/\d+\.\d+\.blk$/;

/**
 * Keys of cut blocks no write-ahead entry can list: written for intervals after the newest entry
 * (`lastSealedMs`) by a driver that died before sealing them. They are garbage: their records are
 * read again from the position in the newest entry.
 */
export function unsealedBlocks(keys: readonly string[], lastSealedMs: number | undefined): string[] {
  return keys.filter((k) => {
    const m = CUT_BLOCK.exec(k);
    return m !== null && (lastSealedMs === undefined || Number(m[1]) > lastSealedMs);
  });
}

export interface BlockGeneratorOptions {
  readonly stream: string;
  readonly partitions: number;
  readonly source: Source<unknown>;
  readonly put: (key: string, bytes: Uint8Array) => Promise<void>;
  readonly zeroTimeMs: number;
  readonly batchIntervalMs: number;
  /** The position in the newest write-ahead entry (the source carries on after it). */
  readonly resumeFrom?: unknown;
  /**
   * The first batch cuts may go to, when earlier than the interval the generator starts in: the
   * batch the driver was in when it began starting up (a boundary may pass while it starts).
   */
  readonly openFromMs?: number;
  /** Backpressure: the most records one batch may take (read at every cut). */
  readonly maxRecords?: () => number | undefined;
  readonly log?: (event: Record<string, unknown>) => void;
}

/** Cuts a continuous source into blocks every block interval; see the module comment. */
export class BlockGenerator {
  private readonly o: BlockGeneratorOptions;
  private readonly pending: Cut[] = [];
  private chain: Promise<void> = Promise.resolve();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private seq = 0;
  private lastCutAtMs = Date.now();
  private resume: unknown;
  private committedPosition: unknown;
  private carry: Carry | undefined;
  /** The newest batch a `take` sealed cuts for (a cut keyed to it or earlier goes to the next). */
  private takenThroughMs = Number.NEGATIVE_INFINITY;
  /** The newest interval whose last cut was made (what it took is written, nothing carried). */
  private closedThroughMs = Number.NEGATIVE_INFINITY;
  /** The batch whose interval this generator started in: no cut goes to an earlier one. */
  private firstOpenMs: number;
  private stopped = false;

  constructor(options: BlockGeneratorOptions) {
    this.o = options;
    this.resume = options.resumeFrom;
    this.committedPosition = options.resumeFrom;
    // unique across restarts of the same store: a new life never reuses a key of an earlier one
    this.seq = Date.now() * 1000;
    this.firstOpenMs = this.openAt(Date.now());
  }

  /** The first batch a cut may go to, for a generator starting at `now`. */
  private openAt(now: number): number {
    return Math.min(this.openBatchAt(now), this.o.openFromMs ?? Number.POSITIVE_INFINITY);
  }

  /** Starts cutting every block interval, in the middle of each slot (`nextCutAtMs`). */
  start(): void {
    this.lastCutAtMs = Date.now();
    this.firstOpenMs = this.openAt(this.lastCutAtMs);
    const { zeroTimeMs: zero, batchIntervalMs: interval } = this.o;
    const delay = () => Math.max(0, nextCutAtMs(Date.now(), zero, interval) - Date.now());
    // the next cut is scheduled once this one is done: a driver that cannot keep up skips slots
    // and takes bigger (capped) cuts, never a queue of them
    const tick = () => {
      if (this.stopped) return;
      void this.cut().then(() => {
        if (this.stopped) return;
        this.timer = setTimeout(tick, delay());
        this.timer.unref?.();
      });
    };
    this.timer = setTimeout(tick, delay());
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.chain;
  }

  /** Records cut and not yet sealed (a finite source is not done while some wait). */
  get unsealed(): number {
    const carried = (this.carry?.records.length ?? 0) + (this.carry?.deadLetters.length ?? 0);
    return this.pending.reduce((n, c) => n + c.records + c.deadLetters.length, carried);
  }

  /** The batch whose interval `now` falls in: (t - interval, t]. */
  private openBatchAt(now: number): number {
    const { zeroTimeMs: zero, batchIntervalMs: interval } = this.o;
    return zero + (Math.floor((now - zero) / interval) + 1) * interval;
  }

  /** Takes what the source has now and writes it as blocks (serialized with other cuts). */
  cut(closing?: number): Promise<void> {
    this.chain = this.chain.then(() =>
      this.cutNow(closing).catch((err) => {
        // the records stay in memory (`carry`) and are written by the next cut; a batch closing
        // meanwhile takes only what was written (its entry lists written blocks only)
        this.o.log?.({ event: 'receiver.cut.failed', stream: this.o.stream, error: String(err) });
      }),
    );
    return this.chain;
  }

  /** `closing`: a batch closes whose interval had no cut since it began: cut for it now. */
  private async cutNow(closing?: number): Promise<void> {
    const now = Date.now();
    const cap = this.o.maxRecords?.();
    const held = this.pending.reduce((n, c) => n + c.records, 0) + (this.carry?.records.length ?? 0);
    // one cut holds at most MAX_CUT_RECORDS: what a source has beyond that waits for the next cut
    // (a generator's backlog), so a driver that falls behind never builds one huge block
    const room = Math.min(cap === undefined ? MAX_CUT_RECORDS : cap - held, MAX_CUT_RECORDS);
    let t = this.openBatchAt(now);
    let got: Carry = this.carry ?? { records: [], deadLetters: [], ackTokens: [] };
    this.carry = undefined;
    if (room > 0) {
      const batch = await this.o.source.receive({
        batchTimeMs: t,
        intervalMs: this.o.batchIntervalMs,
        sliceMs: Math.max(0, now - this.lastCutAtMs),
        closeAtMs: now,
        maxRecords: room,
        ...(this.resume !== undefined ? { resumeFrom: this.resume } : {}),
      });
      this.resume = undefined;
      this.lastCutAtMs = now;
      got = {
        records: got.records.length === 0 ? batch.records : got.records.concat(batch.records),
        deadLetters: got.deadLetters.concat(batch.deadLetters),
        ackTokens: batch.ackToken !== undefined ? [...got.ackTokens, batch.ackToken] : got.ackTokens,
        position: batch.position !== undefined ? batch.position : got.position,
      };
    }
    const records = got.records;
    // a timer that ran late past the end of an interval that had no last cut (the driver was busy):
    // what this cut took (and any carry) goes to the first interval not closed and not sealed yet,
    // so a busy moment does not leave one batch empty and the next with two intervals' records;
    // a closing batch's own cut goes to it
    const open = Math.max(
      this.closedThroughMs + this.o.batchIntervalMs,
      this.takenThroughMs + this.o.batchIntervalMs,
      this.firstOpenMs,
    );
    const late = open < t;
    if (late) t = open;
    if (closing !== undefined) t = Math.min(t, closing);
    const lastOfInterval =
      late ||
      closing !== undefined ||
      this.stopped ||
      this.openBatchAt(nextCutAtMs(now, this.o.zeroTimeMs, this.o.batchIntervalMs)) !== t;
    if (!lastOfInterval && records.length > 0 && records.length < MIN_EARLY_CUT_RECORDS) {
      // too small to be worth a block of its own: the next cut writes it
      this.carry = got;
      return;
    }
    if (lastOfInterval) this.closedThroughMs = Math.max(this.closedThroughMs, t);
    if (records.length === 0 && got.deadLetters.length === 0 && got.ackTokens.length === 0) {
      if (got.position !== undefined)
        this.pending.push({
          batchTimeMs: t,
          blocks: [],
          records: 0,
          deadLetters: [],
          position: got.position,
          ackTokens: [],
        });
      return;
    }
    const n = this.o.partitions;
    const blocks: (string | undefined)[] = new Array(n).fill(undefined);
    const puts: Promise<void>[] = [];
    const seq = this.seq++;
    for (let p = 0; p < n && records.length > 0; p++) {
      const from = Math.floor((p * records.length) / n);
      const to = Math.floor(((p + 1) * records.length) / n);
      if (to <= from) continue;
      const key = cutBlockKey(t, this.o.stream, p, seq);
      blocks[p] = key;
      puts.push(this.o.put(key, encodeBlock(records.slice(from, to))));
    }
    try {
      await Promise.all(puts);
    } catch (err) {
      this.carry = got;
      throw err;
    }
    this.pending.push({
      batchTimeMs: t,
      blocks,
      records: records.length,
      deadLetters: got.deadLetters,
      ...(got.position !== undefined ? { position: got.position } : {}),
      ackTokens: got.ackTokens,
    });
  }

  /**
   * What closing batch `t` seals: every cut of an interval up to `t` (a cut in flight finishes
   * first). Nothing is dropped until `commit`: if the entry is not stored, the next take has them.
   */
  async take(t: number): Promise<TakenCuts> {
    await this.chain;
    // the driver was busy (a long batch, a loaded machine) and the timer made no cut since this
    // interval began: cut for it now, or its records would all go to the next batch
    // (not for intervals before it started: a restarted driver's catch-up batches stay empty)
    if (!this.stopped && this.closedThroughMs < t && t >= this.firstOpenMs) await this.cut(t);
    this.takenThroughMs = Math.max(this.takenThroughMs, t);
    const cuts = this.pending.filter((c) => c.batchTimeMs <= t);
    const partitionBlocks: string[][] = Array.from({ length: this.o.partitions }, () => []);
    const deadLetters: DeadLetter[] = [];
    const ackTokens: unknown[] = [];
    let records = 0;
    let position = this.committedPosition;
    for (const c of cuts) {
      c.blocks.forEach((key, p) => {
        if (key !== undefined) partitionBlocks[p]!.push(key);
      });
      records += c.records;
      for (const d of c.deadLetters) deadLetters.push(d);
      for (const a of c.ackTokens) ackTokens.push(a);
      if (c.position !== undefined) position = c.position;
    }
    return { cuts, partitionBlocks, records, deadLetters, position, ackTokens };
  }

  /** The write-ahead entry listing `taken` is stored: drop its cuts (they are sealed). */
  commit(taken: TakenCuts): void {
    const sealed = new Set(taken.cuts);
    for (let i = this.pending.length - 1; i >= 0; i--)
      if (sealed.has(this.pending[i]!)) this.pending.splice(i, 1);
    if (taken.position !== undefined) this.committedPosition = taken.position;
  }
}

/** The logical key of input partition p of batch t (what tasks are told to read). */
export function partitionKey(t: number, stream: string, p: number): string {
  return layout.inputBlock(t, stream, p);
}
