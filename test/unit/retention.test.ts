/**
 * Retention's clean-up runs once a block of batch times (issue 11: 10 s at a 1 s interval), not
 * every batch: one LIST per prefix per block instead of 2 to 5 every batch. What it keeps stays;
 * the rest goes at most a block late, and all of it at stop. A driver that stops (or crashes)
 * mid-block and one that takes over produce the results of a single run.
 */
import { describe, expect, it } from 'vitest';
import { CountingObjectStore } from '../../shared/core/counting-store.ts';
import { parseTimeKey } from '../../shared/core/layout.ts';
import {
  BatchScheduler,
  InProcessInvoker,
  MemoryObjectStore,
  type Source,
  StreamingContext,
} from '../../shared/index.ts';

const BATCHES = 40;
const INPUT = Array.from({ length: BATCHES + 5 }, (_, i) => [`a b${i % 3}`, `c a${i % 2}`]);

/** Hands out INPUT[from], INPUT[from + 1], ...: a restarted driver starts where the last stopped. */
function queueSource(from: number): Source<string> {
  let next = from;
  return {
    async receive() {
      return { records: [...(INPUT[next++] ?? [])], deadLetters: [] };
    },
    describe: () => 'queue',
  };
}

/** A stateful word count (state checkpointed every 5 batches) through the invoker: stores shuffles and RDDs. */
function driver(
  store: CountingObjectStore,
  memory: MemoryObjectStore,
  from: number,
  seen: Map<number, unknown>,
  options: { tiny?: boolean; stateless?: boolean } = {},
) {
  const ctx = new StreamingContext({ batchIntervalMs: 1000, partitions: 2, printer: () => {} });
  const pairs = ctx
    .inputStream<string>()
    .flatMap((l) => l.split(' '))
    .map((w): [string, number] => [w, 1]);
  (options.stateless
    ? pairs.reduceByKey((a, b) => a + b)
    : pairs.updateStateByKey((values: number[], s: number | undefined) => (s ?? 0) + values.length)
  ).foreachRDD(async (rdd, t) => {
    seen.set(t, (await rdd.collect()).sort());
  });
  let s: BatchScheduler | undefined;
  const invoker = new InProcessInvoker({ pipeline: () => s!.pipeline, store: memory });
  s = new BatchScheduler(ctx, {
    store,
    invoker,
    sources: { input: queueSource(from) },
    clock: 'manual',
    zeroTimeMs: 0,
    lease: false,
    idleFastPath: false,
    tinyBatch: options.tiny ? undefined : false,
    checkpointEvery: 5,
  });
  return s;
}

const timeOf = (key: string) => parseTimeKey(key.split('/')[1]!);

describe('clean-up once a block of batch times (issue 11)', () => {
  it('lists each prefix once per 10 s block, keeps the disk bounded, and cleans the rest at stop', async () => {
    const memory = new MemoryObjectStore();
    const store = new CountingObjectStore(memory);
    const s = driver(store, memory, 0, new Map());
    await s.start();
    const before = store.snapshot();
    const manifests = await s.run({ numBatches: BATCHES });
    const counted = store.since(before);
    // 4 prefixes (shuffle data, shuffle history, RDDs, old checkpoints) once a 10 s block: under
    // half a LIST a batch (every batch listed 2 to 5 prefixes before)
    expect(counted.list).toBeGreaterThan(0);
    expect(counted.list).toBeLessThanOrEqual((BATCHES / 10 + 1) * 4);
    // in one batch a block (and the first)
    expect(manifests.filter((m) => m.requests.list > 0).length).toBeLessThanOrEqual(BATCHES / 10 + 1);
    // bounded: shuffle data at most a block and a batch behind the last batch
    const last = manifests.at(-1)!.batchTimeMs;
    for (const key of await memory.list('shuffle/')) expect(timeOf(key)).toBeGreaterThan(last - 12_000);
    // at stop the rest goes: no shuffle data but the last batch's, no RDD the next batch cannot read
    // except state at a checkpoint time not yet superseded by a later expired checkpoint
    await s.stop();
    for (const key of await memory.list('shuffle/')) expect(timeOf(key)).toBe(last);
    const rdds = await memory.list('rdd/');
    expect(rdds.length).toBeGreaterThan(0);
    const history = 2000; // the longest remember duration: the state's previous RDD, two intervals
    for (const key of rdds) {
      const t = timeOf(key);
      if (t <= last - history - 1000) expect((t / 1000) % 5, key).toBe(0); // a kept checkpoint
      expect(t, key).toBeGreaterThan(last - history - 1000 - 5 * 1000);
    }
  });

  it('a driver that stops or dies mid-block and the one after it give the results of one run', async () => {
    const single = new Map<number, unknown>();
    {
      const memory = new MemoryObjectStore();
      const s = driver(new CountingObjectStore(memory), memory, 0, single);
      await s.run({ numBatches: BATCHES });
      await s.stop();
    }
    for (const stops of [true, false]) {
      const memory = new MemoryObjectStore();
      const seen = new Map<number, unknown>();
      const first = driver(new CountingObjectStore(memory), memory, 0, seen);
      const ran = await first.run({ numBatches: 23 });
      if (stops) await first.stop(); // else it died: no clean-up at stop
      const second = driver(new CountingObjectStore(memory), memory, ran.length, seen);
      await second.run({ numBatches: BATCHES - 23 });
      await second.stop();
      expect(seen, stops ? 'stopped' : 'died').toEqual(single);
      // the second driver cleaned what the first left in its last block
      const last = BATCHES * 1000;
      for (const key of await memory.list('shuffle/')) expect(timeOf(key)).toBe(last);
    }
  });

  it('does not list what tiny batches kept in memory: a stateless word count lists nothing', async () => {
    for (const stateless of [true, false]) {
      const memory = new MemoryObjectStore();
      const store = new CountingObjectStore(memory);
      const s = driver(store, memory, 0, new Map(), { tiny: true, stateless });
      await s.start();
      const before = store.snapshot();
      const manifests = await s.run({ numBatches: BATCHES });
      expect(manifests.every((m) => m.stages.every((st) => st.inDriver))).toBe(true);
      if (stateless) {
        // its shuffle and RDDs never reached the store: no LIST at all
        expect(store.since(before).list).toBe(0);
        expect(await memory.list('shuffle/')).toEqual([]);
      } else {
        // the state is stored: its old RDDs are listed and deleted once a block
        expect(store.since(before).list).toBeGreaterThan(0);
        expect(store.since(before).delete).toBeGreaterThan(0);
      }
      await s.stop();
    }
  });
});
