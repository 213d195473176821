import { describe, expect, it } from 'vitest';
import { decodeBlock } from '../../shared/core/codec.ts';
import {
  arraySource,
  BatchScheduler,
  InProcessInvoker,
  MemoryObjectStore,
  type ObjectStore,
  StreamingContext,
} from '../../shared/index.ts';

const input = [['a', 'bb', 'ccc'], [], ['dddd'], ['e', 'f', 'g', 'h', 'i']];

function scheduler(store: ObjectStore, build: (ctx: StreamingContext) => void) {
  const ctx = new StreamingContext({ batchIntervalMs: 1000, partitions: 2 });
  build(ctx);
  let s: BatchScheduler | undefined;
  s = new BatchScheduler(ctx, {
    store,
    invoker: new InProcessInvoker({ pipeline: () => s!.pipeline, store }),
    sources: { input: arraySource(input) },
    clock: 'manual',
    zeroTimeMs: 0,
    retryBackoffMs: 1,
    lease: false,
  });
  return s;
}

describe('single values finish on the driver (issue 14, item 2)', () => {
  it('count() is one stage of per-partition counts, summed on the driver (0 for an empty batch)', async () => {
    const store = new MemoryObjectStore();
    const seen: number[][] = [];
    const s = scheduler(store, (ctx) =>
      ctx
        .inputStream<string>()
        .count()
        .foreachRDD(async (rdd) => {
          seen.push(await rdd.collect());
        }),
    );
    const manifests = await s.run({ numBatches: input.length });
    expect(seen).toEqual([[3], [0], [1], [5]]);
    for (const m of manifests) {
      // no shuffle stage and no second stage: the partials' stage only
      expect(m.stages).toHaveLength(1);
      expect(m.stages[0]!.kind).toBe('result');
      expect(m.stages[0]!.tasks).toBe(2);
      expect(m.stages[0]!.operators).toEqual(['input(input)', 'count']);
    }
    expect(await store.list('shuffle/')).toEqual([]);
  });

  it('reduce() reduces each partition in its task and combines the partials on the driver', async () => {
    const store = new MemoryObjectStore();
    const seen: string[][] = [];
    const s = scheduler(store, (ctx) =>
      ctx
        .inputStream<string>()
        .reduce((a, b) => (a.length >= b.length ? a : b))
        .foreachRDD(async (rdd) => {
          seen.push(await rdd.collect());
        }),
    );
    const manifests = await s.run({ numBatches: input.length });
    // one element per non-empty batch
    expect(seen).toEqual([['ccc'], [], ['dddd'], ['e']]);
    // the empty batch takes the idle fast path (issue 11: reduce() of nothing is nothing): no stage
    for (const m of manifests)
      expect(m.stages.map((st) => st.kind)).toEqual(m.input.records > 0 ? ['result'] : []);
    expect(manifests.filter((m) => m.stages.length === 1)).toHaveLength(3);
  });

  it('a count read by something else than foreachRDD (a window, a saved output) is computed without a shuffle', async () => {
    const store = new MemoryObjectStore();
    const windows: number[][] = [];
    const s = scheduler(store, (ctx) => {
      const counts = ctx.inputStream<string>().count();
      counts.saveAsTextFiles('counts');
      counts.window(2000).foreachRDD(async (rdd) => {
        windows.push((await rdd.collect()).sort());
      });
    });
    const manifests = await s.run({ numBatches: input.length });
    expect(windows).toEqual([[3], [0, 3], [0, 1], [1, 5]]);
    const saved: string[] = [];
    for (const key of (await store.list('outputs/counts/')).sort()) {
      if (key.includes('part-'))
        saved.push(
          Buffer.from((await store.get(key))!)
            .toString('utf8')
            .trim(),
        );
    }
    expect(saved).toEqual(['3', '0', '1', '5']);
    for (const m of manifests) expect(m.stages.every((st) => st.kind === 'result')).toBe(true);
  });

  it('a lost partial is recomputed from its lineage when the driver reads it', async () => {
    const store = new MemoryObjectStore();
    let lost = 0;
    const done = new Set<number>();
    const seen: number[][] = [];
    const s = scheduler(store, (ctx) =>
      ctx
        .inputStream<string>()
        .count()
        .foreachRDD(async (rdd, t) => {
          // lose one partial of this batch just before the driver reads it (the output runs again
          // once it is recomputed)
          const keys = (await store.list('rdd/')).filter(
            (k) => k.includes('.partials/') && k.endsWith('.blk'),
          );
          const mine = keys.find((k) => k.includes(String(t).padStart(15, '0')));
          if (mine && !done.has(t)) {
            done.add(t);
            await store.delete(mine);
            lost++;
          }
          seen.push(await rdd.collect());
        }),
    );
    await s.run({ numBatches: input.length });
    expect(lost).toBe(input.length);
    // the first read of each batch failed (lost partial), the output ran again after recomputing
    expect(seen).toEqual([[3], [0], [1], [5]]);
    const partial = (await store.list('rdd/')).find((k) => k.includes('.partials/') && k.endsWith('.blk'));
    expect(partial).toBeDefined();
    expect(decodeBlock((await store.get(partial!))!)).toHaveLength(1);
  });
});
