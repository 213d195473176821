/**
 * The driver's side of input written during the interval (issue 14, item 1): the block
 * generators of its continuous sources, and which blocks make each input partition of a batch.
 *
 * A batch's input partition p is a LIST of blocks (one per cut of its interval), recorded in the
 * write-ahead entry (`partitionBlocks`). Tasks keep reading the partition's logical key
 * (`inputs/<t>/<stream>/<p>.blk`); the driver adds the list to each such input of a task spec
 * (`expand`), and the task reads the listed blocks in order (task-context.ts). Batches written
 * before (or without a block generator: the manual clock, polling sources, HTTP) have no list and
 * read the one block at the logical key, as before.
 *
 * The input tracker (driver/input-tracker.ts) owns it: it starts and stops the generators with the
 * sources, takes the cuts at batch close, and seals them around the entry's put-if-absent; the
 * stage runner loads a batch's lists and expands each task's inputs (also for lineage recovery).
 * A batch whose cuts hold no record takes the idle fast path (issue 11) like any empty batch:
 * such cuts wrote no block, and `sealedIdle` drops them without any entry.
 *
 * @module
 */
import type { ObjectStore } from '../../ports/object-store.ts';
import type { Source } from '../../ports/source.ts';
import { decodeJson } from '../codec.ts';
import { layout } from '../layout.ts';
import type { InputRef } from '../task.ts';
import { BlockGenerator, type TakenCuts, unsealedBlocks } from './block-generator.ts';

/** What a write-ahead entry records per stream (the part this module reads). */
interface EntryStreams {
  readonly streams: Record<string, { readonly partitionBlocks?: readonly (readonly string[])[] }>;
}

const KEEP_BATCHES = 256;

export class ReceivedBlocks {
  constructor(private readonly store: ObjectStore) {}

  private readonly generators = new Map<string, BlockGenerator>();
  /** Logical partition key -> its blocks, for recent batches. */
  readonly lists = new Map<string, readonly string[]>();
  private readonly loaded: number[] = [];
  private readonly loadedSet = new Set<number>();
  private readonly taken = new Map<number, Map<string, TakenCuts>>();

  /**
   * Starts a block generator for every continuous source (wall clock only), after deleting blocks
   * of intervals a dead driver never sealed (after `lastSealedMs`, the newest entry).
   */
  async start(options: {
    inputs: readonly { readonly name: string; readonly partitions: number }[];
    sources: ReadonlyMap<string, Source<unknown>>;
    zeroTimeMs: number;
    batchIntervalMs: number;
    lastSealedMs: number | undefined;
    resumeFrom: (stream: string) => unknown;
    /** The first batch cuts may go to (see `BlockGeneratorOptions.openFromMs`). */
    openFromMs?: number;
    maxRecords: () => number | undefined;
    log?: (event: Record<string, unknown>) => void;
  }): Promise<void> {
    const continuous = options.inputs.filter((b) => options.sources.get(b.name)?.continuous === true);
    if (continuous.length === 0) return;
    const store = this.store;
    const garbage = unsealedBlocks(await store.list('inputs/'), options.lastSealedMs);
    for (const key of garbage) await store.delete(key);
    if (garbage.length > 0) options.log?.({ event: 'receiver.garbage', deleted: garbage.length });
    for (const b of continuous) {
      const g = new BlockGenerator({
        stream: b.name,
        partitions: b.partitions,
        source: options.sources.get(b.name)!,
        put: (key, bytes) => store.put(key, bytes),
        zeroTimeMs: options.zeroTimeMs,
        batchIntervalMs: options.batchIntervalMs,
        resumeFrom: options.resumeFrom(b.name),
        ...(options.openFromMs !== undefined ? { openFromMs: options.openFromMs } : {}),
        maxRecords: options.maxRecords,
        log: options.log,
      });
      this.generators.set(b.name, g);
      g.start();
    }
  }

  /** True when `stream`'s input is written during the interval. */
  has(stream: string): boolean {
    return this.generators.has(stream);
  }

  /** Records cut and not sealed yet, over every stream. */
  get unsealed(): number {
    let n = 0;
    for (const g of this.generators.values()) n += g.unsealed;
    return n;
  }

  /** Closing batch `t`: the cuts of `stream` to list in its entry (no per-record work). */
  async take(t: number, stream: string): Promise<TakenCuts> {
    const taken = await this.generators.get(stream)!.take(t);
    let byStream = this.taken.get(t);
    if (!byStream) this.taken.set(t, (byStream = new Map()));
    byStream.set(stream, taken);
    return taken;
  }

  /** Batch `t`'s entry is stored: its cuts are sealed; remember its partitions' block lists. */
  sealed(t: number, entry: EntryStreams): void {
    for (const [stream, taken] of this.taken.get(t) ?? []) this.generators.get(stream)?.commit(taken);
    this.taken.delete(t);
    this.remember(t, entry);
  }

  /**
   * Batch `t` took the idle fast path (issue 11): its cuts held no record, so they wrote no block;
   * they are sealed without an entry (the idle span keeps the position `take` returned).
   */
  sealedIdle(t: number): void {
    for (const [stream, taken] of this.taken.get(t) ?? []) this.generators.get(stream)?.commit(taken);
    this.taken.delete(t);
  }

  /** Batch `t`'s entry was not stored: its cuts stay for the next try. */
  notSealed(t: number): void {
    this.taken.delete(t);
  }

  /** Reads batch `t`'s entry (once) for its block lists: a re-run or a recomputation of `t`. */
  async load(t: number): Promise<void> {
    if (this.loadedSet.has(t)) return;
    const bytes = await this.store.get(layout.received(t));
    if (bytes) this.remember(t, decodeJson<EntryStreams>(bytes));
  }

  /** Batch `t`'s entry, already read by the driver (a re-run): its lists, without another GET. */
  remember(t: number, entry: EntryStreams): void {
    if (!this.loadedSet.has(t)) {
      this.loadedSet.add(t);
      this.loaded.push(t);
    }
    for (const [stream, s] of Object.entries(entry.streams ?? {})) {
      s.partitionBlocks?.forEach((blocks, p) => {
        this.lists.set(layout.inputBlock(t, stream, p), blocks);
      });
    }
    while (this.loaded.length > KEEP_BATCHES) {
      const old = this.loaded.shift()!;
      this.loadedSet.delete(old);
      const prefix = `inputs/${layout.inputBlock(old, '', 0).split('/')[1]}/`;
      for (const key of this.lists.keys()) if (key.startsWith(prefix)) this.lists.delete(key);
    }
  }

  /** Adds the block list to each input partition a task reads (tasks read the blocks in order). */
  expand(inputs: InputRef[]): InputRef[] {
    if (this.lists.size === 0) return inputs;
    return inputs.map((input) => {
      if (input.kind !== 'block') return input;
      const blocks = this.lists.get(input.key);
      return blocks ? { ...input, blocks } : input;
    });
  }

  async stop(): Promise<void> {
    for (const g of this.generators.values()) await g.stop();
  }
}
