/**
 * The input tracker, as Spark's `ReceiverTracker`: it owns the sources, closes a batch's interval
 * into input blocks (`inputs/<t>/<stream>/<p>.blk`) and dead letters, writes the write-ahead entry
 * (`batches/<t>/received.json`, put-if-absent) and only then acknowledges the sources. It keeps
 * the delivery ids of recent batches (an SQS message delivered again is skipped) and each
 * source's position, so a restarted driver resumes every source after what it already gave.
 *
 * Continuous sources (issue 14, `Source.continuous`: the generator, files, stdin, HTTP) on the wall
 * clock are read DURING the interval by block generators (`../receiver/`), as Spark's receivers:
 * closing a batch then only takes their cuts and lists the blocks in the write-ahead entry
 * (`partitionBlocks`), with no per-record work. A batch whose cuts hold no record still takes the
 * idle fast path (issue 11) and writes nothing.
 *
 * @module
 */
import { BatchFailedError, ConfigError } from '../../errors.ts';
import type { ObjectStore } from '../../ports/object-store.ts';
import type { DeadLetter, ReceivedBatch, Source } from '../../ports/source.ts';
import { decodeJson, encodeBlock, encodeJson, encodeJsonLines } from '../codec.ts';
import type { StreamingContext } from '../context.ts';
import type { PolledInput } from '../empty-batch.ts';
import { layout } from '../layout.ts';
import type { TakenCuts } from '../receiver/block-generator.ts';
import { ReceivedBlocks } from '../receiver/received-blocks.ts';
import type { ReceivedEntry } from './manifest.ts';

/** How long delivery ids are remembered for de-duplication. */
const DELIVERY_MEMORY_MS = 10 * 60_000;

export class InputTracker {
  private readonly sources = new Map<string, Source<unknown>>();
  private readonly seenDeliveries = new Map<string, number>();
  /** Source positions from the last received batch, handed to each source on its first receive. */
  private readonly resumePositions = new Map<string, unknown>();
  /** Source positions in the latest write-ahead entry: a retried batch rewinds its sources to them. */
  private readonly receivedPositions = new Map<string, unknown>();
  private idlePositionsValue: Record<string, unknown> = {};
  /** The newest write-ahead entry found at start (blocks cut after it were never sealed). */
  private lastReceivedMs: number | undefined;
  /** issue 14: input written during the interval (block generators) and batches' block lists. */
  readonly blocks: ReceivedBlocks;

  constructor(
    private readonly ctx: StreamingContext,
    private readonly store: ObjectStore,
    private readonly o: {
      readonly manualClock: boolean;
      /** The most records a batch may take (the rate controller's cap). */
      readonly maxRecords: () => number | undefined;
      /** Checks the lease before a write that matters (fencing). */
      readonly fence: (what: string) => Promise<void>;
      readonly log?: (event: Record<string, unknown>) => void;
    },
  ) {
    this.blocks = new ReceivedBlocks(store);
  }

  /** The write-ahead entry of batch t, if it was written. */
  async entry(t: number): Promise<ReceivedEntry | undefined> {
    const bytes = await this.store.get(layout.received(t));
    return bytes ? decodeJson<ReceivedEntry>(bytes) : undefined;
  }

  /** Input records of a received batch (0 if it has no write-ahead entry). */
  async recordsOf(t: number): Promise<number> {
    return Object.values((await this.entry(t))?.streams ?? {}).reduce((n, s) => n + s.records, 0);
  }

  /**
   * Reads the write-ahead entries of the batches received in the ten minutes before `lastMs`:
   * their delivery ids (redelivered messages are not counted twice) and where each source was.
   */
  async resume(received: readonly number[], lastMs: number): Promise<void> {
    if (received.length > 0) this.lastReceivedMs = Math.max(...received);
    for (const t of received.filter((t) => t > lastMs - DELIVERY_MEMORY_MS)) {
      const entry = await this.entry(t);
      for (const [name, s] of Object.entries(entry?.streams ?? {})) {
        for (const id of s.deliveryIds ?? []) this.seenDeliveries.set(id, t);
        if (s.position !== undefined) {
          this.resumePositions.set(name, s.position);
          this.receivedPositions.set(name, s.position);
        }
      }
    }
  }

  /**
   * idle fast path (issue 11): the source positions the last committed idle span saved, later
   * than any write-ahead entry: each source carries on from there.
   */
  resumeAt(positions: Readonly<Record<string, unknown>>): void {
    for (const [name, position] of Object.entries(positions)) {
      this.resumePositions.set(name, position);
      this.receivedPositions.set(name, position);
    }
  }

  /** idle fast path (issue 11): the source positions of the last idle batch received. */
  get idlePositions(): Record<string, unknown> {
    return this.idlePositionsValue;
  }

  /**
   * Binds a source to every input stream (`given` wins over the module's own) and starts them; on
   * the wall clock, starts a block generator for each continuous one (issue 14), cutting the
   * intervals that start at `zeroTimeMs`.
   */
  async startSources(
    given: Readonly<Record<string, Source<unknown>>> | undefined,
    zeroTimeMs = 0,
    openFromMs?: number,
  ): Promise<void> {
    for (const [, binding] of this.ctx.graph.inputs) {
      // a source passed in wins over the module's own (a replay feeds stored input only)
      const source = given?.[binding.name] ?? binding.factory?.();
      if (!source) {
        throw new ConfigError(
          'source',
          `input stream '${binding.name}' has no source: pass one (sluice run --source ...) or build it with ctx.sourceStream()`,
        );
      }
      this.sources.set(binding.name, source);
    }
    for (const s of this.sources.values()) await s.start?.();
    // a source refuses, before any batch, a saved position it cannot carry on from (another file)
    for (const [name, s] of this.sources) {
      const position = this.resumePositions.get(name);
      if (position !== undefined) await s.resume?.(position);
    }
    // issue 14: continuous sources are read during the interval (wall clock only)
    if (!this.o.manualClock)
      await this.blocks.start({
        inputs: [...this.ctx.graph.inputs.values()],
        sources: this.sources,
        zeroTimeMs,
        batchIntervalMs: this.ctx.batchIntervalMs,
        lastSealedMs: this.lastReceivedMs,
        resumeFrom: (name) => this.resumePositions.get(name),
        ...(openFromMs !== undefined ? { openFromMs } : {}),
        maxRecords: this.o.maxRecords,
        log: this.o.log,
      });
  }

  async stopSources(): Promise<void> {
    await this.blocks.stop(); // issue 14: the cut in flight finishes first
    for (const s of this.sources.values()) await s.stop?.();
  }

  /** True when there are sources, every one is finite and exhausted, and no cut waits for a batch. */
  get exhausted(): boolean {
    if (this.blocks.unsealed > 0) return false;
    const all = [...this.sources.values()];
    return all.length > 0 && all.every((s) => s.exhausted?.() === true);
  }

  /** True when a source polls during the interval (SQS) rather than buffering until it closes. */
  get polls(): boolean {
    return [...this.sources.values()].some((s) => s.polls);
  }

  /** A batch failed before its input was stored: sources hand out those records again. */
  rewind(): void {
    for (const [name, position] of this.receivedPositions) this.resumePositions.set(name, position);
  }

  /** Forgets delivery ids older than the de-duplication memory. */
  forget(t: number): void {
    for (const [id, at] of this.seenDeliveries)
      if (at < t - DELIVERY_MEMORY_MS) this.seenDeliveries.delete(id);
  }

  /**
   * Receives the interval's records from every source, writes blocks and the write-ahead entry,
   * then acks. A batch whose entry exists already (a re-run) returns it and receives nothing.
   * `marks.polledAt` is when the last source finished polling.
   */
  async receive(t: number, marks: { polledAt: number } = { polledAt: 0 }): Promise<ReceivedEntry> {
    return (await this.receiveOrIdle(t, marks, () => false))!;
  }

  /**
   * As `receive`, but when `idle` says the polled input makes an idle batch (issue 11, the fast
   * path of empty-batch.ts), writes nothing, acknowledges what the sources handed over, keeps
   * their positions (`idlePositions`) and returns undefined.
   */
  async receiveOrIdle(
    t: number,
    marks: { polledAt: number },
    idle: (polled: readonly PolledInput[]) => boolean,
  ): Promise<ReceivedEntry | undefined> {
    const prior = await this.entry(t);
    if (prior) {
      this.blocks.remember(t, prior); // issue 14: its block lists, without another GET
      return prior; // re-running a batch whose input is already durable
    }
    const streams: Record<string, ReceivedEntry['streams'][string]> = {};
    const acks: (() => Promise<void>)[] = [];
    const bindings = [...this.ctx.graph.inputs.values()];
    const cap = this.o.maxRecords();
    // issue 14: a stream written during the interval hands over its cuts (already blocks)
    const taken = await Promise.all(
      bindings.map((b) => (this.blocks.has(b.name) ? this.blocks.take(t, b.name) : undefined)),
    );
    const polled: (ReceivedBatch<unknown> | PolledInput)[] = await Promise.all(
      bindings.map((binding, i) =>
        taken[i]
          ? polledCuts(taken[i])
          : this.sources.get(binding.name)!.receive({
              batchTimeMs: t,
              intervalMs: this.ctx.batchIntervalMs,
              maxRecords: cap,
              closeAtMs: this.o.manualClock ? Date.now() : Math.max(t, Date.now() + 50),
              seen: (id) => this.seenDeliveries.has(id),
              resumeFrom: this.resumePositions.get(binding.name),
            }),
      ),
    );
    // idle fast path (issue 11): an empty batch of a quiet stream writes nothing (empty-batch.ts)
    if (idle(polled)) {
      await this.idleAcks(bindings, polled, taken);
      this.blocks.sealedIdle(t); // issue 14: cuts without a record wrote no block
      return undefined;
    }
    await Promise.all(
      bindings.map(async (binding, i) => {
        const source = this.sources.get(binding.name)!;
        const cuts = taken[i];
        if (cuts) {
          streams[binding.name] = await this.listCuts(t, binding, cuts, cap, marks);
          if (source.ack) for (const token of cuts.ackTokens) acks.push(() => source.ack!(token));
          return;
        }
        const batch = polled[i] as ReceivedBatch<unknown>;
        this.resumePositions.delete(binding.name);
        marks.polledAt = Math.max(marks.polledAt, Date.now());
        const n = binding.partitions;
        const records = batch.records;
        await this.o.fence(`the input blocks of batch ${t}`);
        const puts: Promise<void>[] = [];
        for (let p = 0; p < n; p++) {
          const from = Math.floor((p * records.length) / n);
          const to = Math.floor(((p + 1) * records.length) / n);
          puts.push(
            this.store.put(layout.inputBlock(t, binding.name, p), encodeBlock(records.slice(from, to))),
          );
        }
        if (batch.deadLetters.length > 0) {
          puts.push(
            this.store.put(layout.deadLetter(t, binding.name), deadLetterLines(batch.deadLetters, t)),
          );
        }
        await Promise.all(puts);
        streams[binding.name] = {
          records: records.length,
          blocks: n,
          deadLetters: batch.deadLetters.length,
          ...(batch.deliveryIds ? { deliveryIds: batch.deliveryIds } : {}),
          ...(batch.position !== undefined ? { position: batch.position } : {}),
          ...(batch.delivery ? { delivery: batch.delivery } : {}),
          capped: cap !== undefined && records.length >= cap,
        };
        if (source.ack && batch.ackToken !== undefined) acks.push(() => source.ack!(batch.ackToken));
      }),
    );
    const entry: ReceivedEntry = { batchTimeMs: t, receivedAtMs: Date.now(), streams };
    await this.o.fence(`the write-ahead entry of batch ${t}`).catch((err) => {
      this.blocks.notSealed(t); // issue 14: the cuts stay for the next try
      throw err;
    });
    const stored = await this.store.putIfAbsent(layout.received(t), encodeJson(entry)).catch((err) => {
      this.blocks.notSealed(t);
      throw err;
    });
    if (!stored) {
      this.blocks.notSealed(t);
      // Another driver closed this batch at the same time (only possible without a valid lease):
      // do not acknowledge anything, the messages come back and are de-duplicated by id.
      throw new BatchFailedError(
        t,
        'another driver wrote the input of this batch concurrently; not acknowledging',
      );
    }
    this.blocks.sealed(t, entry); // issue 14: its cuts are sealed, its block lists known
    for (const [name, s] of Object.entries(streams)) {
      for (const id of s.deliveryIds ?? []) this.seenDeliveries.set(id, t);
      if (s.position !== undefined) this.receivedPositions.set(name, s.position);
    }
    await Promise.all(acks.map((ack) => ack()));
    return entry;
  }

  /** idle fast path (issue 11): acknowledges what the sources handed over for an idle batch, keeps their positions. */
  private async idleAcks(
    bindings: readonly { name: string }[],
    polled: readonly (ReceivedBatch<unknown> | PolledInput)[],
    taken: readonly (TakenCuts | undefined)[],
  ): Promise<void> {
    const positions: Record<string, unknown> = {};
    for (const [i, binding] of bindings.entries()) {
      const cuts = taken[i];
      const batch = cuts
        ? { position: cuts.position, ackTokens: cuts.ackTokens }
        : {
            position: (polled[i] as ReceivedBatch<unknown>).position,
            ackTokens: [(polled[i] as ReceivedBatch<unknown>).ackToken].filter((x) => x !== undefined),
          };
      const source = this.sources.get(binding.name)!;
      this.resumePositions.delete(binding.name);
      if (batch.position !== undefined) {
        positions[binding.name] = batch.position;
        this.receivedPositions.set(binding.name, batch.position);
      }
      if (source.ack) for (const token of batch.ackTokens) await source.ack(token);
    }
    this.idlePositionsValue = positions;
  }

  /**
   * issue 14: closing batch t over cuts written during the interval only lists their blocks (and
   * writes the dead letters they held): the entry's record for the stream.
   */
  private async listCuts(
    t: number,
    binding: { readonly name: string; readonly partitions: number },
    cuts: TakenCuts,
    cap: number | undefined,
    marks: { polledAt: number },
  ): Promise<ReceivedEntry['streams'][string]> {
    this.resumePositions.delete(binding.name);
    marks.polledAt = Math.max(marks.polledAt, Date.now());
    if (cuts.deadLetters.length > 0) {
      await this.o.fence(`the input blocks of batch ${t}`);
      await this.store.put(layout.deadLetter(t, binding.name), deadLetterLines(cuts.deadLetters, t));
    }
    return {
      records: cuts.records,
      blocks: binding.partitions, // input partitions, as for other streams (each a list here)
      deadLetters: cuts.deadLetters.length,
      ...(cuts.position !== undefined ? { position: cuts.position } : {}),
      capped: cap !== undefined && cuts.records >= cap,
      partitionBlocks: cuts.partitionBlocks,
    };
  }
}

/** issue 14: what the idle decision sees of a stream's cuts (their records are already blocks). */
function polledCuts(cuts: TakenCuts): PolledInput {
  return { records: { length: cuts.records }, deadLetters: cuts.deadLetters };
}

function deadLetterLines(letters: readonly DeadLetter[], t: number): Uint8Array {
  return encodeJsonLines(letters.map((l) => ({ batchTimeMs: t, ...l })));
}
