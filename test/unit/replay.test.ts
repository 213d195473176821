/**
 * Batch and streaming in one system (issue 15): replay of retained input into a new store, the
 * original never written; a stream's stored state queried by name; the saved outputs of one
 * pipeline as the input of another.
 */
import { describe, expect, it } from 'vitest';
import { runBatch } from '../../shared/batch.ts';
import { decodeBlock } from '../../shared/core/codec.ts';
import { layout } from '../../shared/core/layout.ts';
import { NotStoredError, queryState, readStoreOutputs, storeOutputsSource } from '../../shared/core/query.ts';
import {
  arraySource,
  type DStream,
  inProcessScheduler,
  MemoryObjectStore,
  type ObjectStore,
  type StreamingContext,
} from '../../shared/index.ts';
import { ReadOnlyObjectStore, ReadOnlyStoreError } from '../../shared/local/overlay-store.ts';
import { describeRemoved, replay } from '../../shared/replay.ts';
import { type RefStream, refRun } from '../reference/evaluator.ts';
import { sortCanonical, unordered } from '../reference/keys.ts';

type Build = (lines: DStream<string>, ctx: StreamingContext) => DStream<[string, number]>;

/** Running totals per word; the "bug": words are not lower-cased. */
const buggy: Build = (lines) =>
  lines
    .flatMap((l) => l.split(' ').filter((w) => w.length > 0))
    .map((w): [string, number] => [w, 1])
    .updateStateByKey<string, number, number>((vs, s) => (s ?? 0) + vs.reduce((a, b) => a + b, 0), {
      name: 'totals',
    });

const fixed: Build = (lines) =>
  lines
    .flatMap((l) => l.split(' ').filter((w) => w.length > 0))
    .map((w): [string, number] => [w.toLowerCase(), 1])
    .updateStateByKey<string, number, number>((vs, s) => (s ?? 0) + vs.reduce((a, b) => a + b, 0), {
      name: 'totals',
    });

function pipelineOf(build: Build) {
  return (ctx: StreamingContext) => {
    const totals = build(ctx.inputStream<string>(), ctx);
    totals.saveAsJsonLines('totals');
    totals
      .map(([w, n]): [string, number] => [w, n])
      .filter(([, n]) => n > 0)
      .saveAsTextFiles('lines');
  };
}

const INPUT: string[][] = Array.from({ length: 12 }, (_, i) => [
  `The cat ${i % 3 === 0 ? 'THE' : 'dog'}`,
  `a the Cat b${i % 4}`,
  i % 2 === 0 ? 'x y the' : '',
]);

/** Runs the original pipeline over INPUT with the real driver (manual clock, zero time 0). */
async function runOriginal(
  build: Build,
  options: { retainInputsMs?: number; checkpointEvery?: number } = {},
): Promise<MemoryObjectStore> {
  const store = new MemoryObjectStore();
  const { StreamingContext: Ctx } = await import('../../shared/index.ts');
  const ctx = new Ctx({ batchIntervalMs: 1000, partitions: 2 });
  pipelineOf(build)(ctx);
  const scheduler = inProcessScheduler(ctx, { store, sources: { input: arraySource(INPUT) }, ...options });
  await scheduler.run({ numBatches: INPUT.length });
  await scheduler.stop();
  return store;
}

async function snapshot(store: ObjectStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of await store.list('')) {
    if (key.startsWith('lease/')) continue;
    out.set(key, Buffer.from((await store.get(key))!).toString('base64'));
  }
  return out;
}

async function outputsOf(store: ObjectStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of await store.list('outputs/')) {
    // lineage records carry commit times; the data and _SUCCESS markers must be equal
    if (!key.endsWith('.lineage.json')) out.set(key, Buffer.from((await store.get(key))!).toString());
  }
  return out;
}

/** The engine's saved totals per batch, from the store, unordered within a batch. */
async function savedTotals(store: ObjectStore): Promise<[number, unknown[]][]> {
  return (await readStoreOutputs(store, 'totals')).map((b) => [b.batchTimeMs, sortCanonical(b.records)]);
}

function reference(build: Build, input: string[][]): [number, unknown[]][] {
  const out = refRun(input, build as unknown as (s: RefStream<string>) => RefStream<[string, number]>);
  return unordered(out).map((records, i) => [(i + 1) * 1000, records]);
}

describe('replay', () => {
  it('replaying the same module gives outputs equal to the original run, and never writes the original', async () => {
    const original = await runOriginal(buggy);
    const before = await snapshot(original);
    const into = new MemoryObjectStore();
    const result = await replay({ original, into, pipeline: pipelineOf(buggy) });
    expect(result.manifests.map((m) => m.batchTimeMs)).toEqual(INPUT.map((_, i) => (i + 1) * 1000));
    expect(result.plan.removed).toEqual([]);
    const replayed = await outputsOf(into);
    expect(replayed.size).toBeGreaterThan(0);
    expect(replayed).toEqual(await outputsOf(original));
    // the original is byte for byte what it was
    expect(await snapshot(original)).toEqual(before);
    // the new store has its own graph meta with the original's zero time and interval
    expect(result.meta.zeroTimeMs).toBe(0);
    expect(result.meta.batchIntervalMs).toBe(1000);
    // and its own manifests and lineage, all committed once
    expect((await into.list('manifests/')).length).toBe(INPUT.length);
  });

  it('a changed module replayed over the same input equals the reference evaluator', async () => {
    const original = await runOriginal(buggy);
    const into = new MemoryObjectStore();
    const result = await replay({ original, into, pipeline: pipelineOf(fixed) });
    expect(result.meta.fingerprint).toBe(
      (await replay({ original, into: new MemoryObjectStore(), pipeline: pipelineOf(fixed) })).meta
        .fingerprint,
    );
    expect(await savedTotals(into)).toEqual(reference(fixed, INPUT));
    // and the original, run by the buggy module, differs (the fix changed something)
    expect(await savedTotals(original)).toEqual(reference(buggy, INPUT));
    expect(await savedTotals(original)).not.toEqual(await savedTotals(into));
  });

  it('a time range replays only its batches; state starts empty at the first of them', async () => {
    const original = await runOriginal(buggy);
    const into = new MemoryObjectStore();
    const result = await replay({ original, into, pipeline: pipelineOf(fixed), fromMs: 5000, toMs: 9000 });
    expect(result.manifests.map((m) => m.batchTimeMs)).toEqual([5000, 6000, 7000, 8000, 9000]);
    expect(result.meta.zeroTimeMs).toBe(4000);
    const ref = reference(fixed, INPUT.slice(4, 9)).map(([t, r]) => [t + 4000, r]);
    expect(await savedTotals(into)).toEqual(ref);
  });

  it('input removed by retention is reported by range, and the rest is replayed', async () => {
    // a real run whose retention removed the oldest input blocks and write-ahead entries
    const original = await runOriginal(buggy, { retainInputsMs: 1, checkpointEvery: 1 });
    const retained = (await original.list('batches/')).length;
    expect(retained).toBeGreaterThan(0);
    expect(retained).toBeLessThan(INPUT.length);
    const into = new MemoryObjectStore();
    const result = await replay({ original, into, pipeline: pipelineOf(fixed) });
    const firstKept = result.plan.times[0]!;
    expect(result.plan.removed).toEqual([
      { fromMs: 1000, toMs: firstKept - 1000, batches: firstKept / 1000 - 1 },
    ]);
    const lines = describeRemoved(result.plan);
    expect(lines[0]).toContain(
      `inputs for ${new Date(1000).toISOString()}–${new Date(firstKept - 1000).toISOString()}`,
    );
    expect(lines[0]).toContain('removed by retention');
    const ref = reference(fixed, INPUT.slice(firstKept / 1000 - 1)).map(([t, r]) => [
      t + firstKept - 1000,
      r,
    ]);
    expect(await savedTotals(into)).toEqual(ref);
  });

  it('a replay that stops half-way resumes in the same new store and commits each batch once', async () => {
    const original = await runOriginal(buggy);
    const into = new MemoryObjectStore();
    await replay({ original, into, pipeline: pipelineOf(fixed), toMs: 5000 });
    const second = await replay({ original, into, pipeline: pipelineOf(fixed), fromMs: 1000 });
    // the first five were already committed in the new store: only the rest ran
    expect(second.manifests.map((m) => m.batchTimeMs)).toEqual(INPUT.slice(5).map((_, i) => (i + 6) * 1000));
    expect(await savedTotals(into)).toEqual(reference(fixed, INPUT));
  });

  it('refuses bad targets and inputs with messages naming what to do', async () => {
    const original = await runOriginal(buggy);
    await expect(replay({ original, into: original, pipeline: pipelineOf(fixed) })).rejects.toThrow(
      /must not be the original store/,
    );
    await expect(
      replay({
        original,
        into: new MemoryObjectStore(),
        pipeline: (ctx) => {
          ctx.inputStream<string>('clicks').print();
        },
      }),
    ).rejects.toThrow(/input stream 'clicks' .* has no stored input .*it holds: input/);
    await expect(
      replay({
        original: new MemoryObjectStore(),
        into: new MemoryObjectStore(),
        pipeline: pipelineOf(fixed),
      }),
    ).rejects.toThrow(/not a Sluice store/);
    await expect(
      replay({ original, into: new MemoryObjectStore(), pipeline: pipelineOf(fixed), fromMs: 50_000 }),
    ).rejects.toThrow(/nothing to replay/);
  });

  it('the original is wrapped read-only: a write throws', async () => {
    const ro = new ReadOnlyObjectStore(new MemoryObjectStore());
    await expect(ro.put('x', new Uint8Array(1))).rejects.toBeInstanceOf(ReadOnlyStoreError);
    await expect(ro.putIfAbsent('x', new Uint8Array(1))).rejects.toBeInstanceOf(ReadOnlyStoreError);
    await expect(ro.delete('x')).rejects.toBeInstanceOf(ReadOnlyStoreError);
  });
});

describe('queryState', () => {
  it("reads a stream's state by name at the last batch and at an earlier one, as an RDD to transform", async () => {
    const store = await runOriginal(fixed);
    const ref = reference(fixed, INPUT);
    const last = await queryState<[string, number]>(store, 'totals');
    expect(last.batchTimeMs).toBe(INPUT.length * 1000);
    expect(sortCanonical(await last.collect())).toEqual(ref[ref.length - 1]![1]);
    const at = await queryState<[string, number]>(store, 'totals', { atMs: 11_000 });
    expect(sortCanonical(await at.collect())).toEqual(ref[10]![1]);
    const top = await last.rdd
      .filter(([w]) => w === 'the')
      .map(([, n]) => n)
      .collect();
    expect(top).toEqual([(ref[ref.length - 1]![1] as [string, number][]).find(([w]) => w === 'the')![1]]);
  });

  it('names what is stored when the stream or the batch is not', async () => {
    const store = await runOriginal(fixed);
    await expect(queryState(store, 'totalz')).rejects.toThrow(
      /no stream named 'totalz'.*stored streams: totals/,
    );
    await expect(queryState(store, 'totals', { atMs: 1000 })).rejects.toThrow(
      /'totals' was not stored at batch 1000; it is stored at/,
    );
    await expect(queryState(store, 'totals', { atMs: 99_000 })).rejects.toBeInstanceOf(NotStoredError);
  });
});

describe('outputs of one pipeline as the input of another', () => {
  it('reads saved outputs by name and time range', async () => {
    const store = await runOriginal(fixed);
    const batches = await readStoreOutputs(store, 'totals', { fromMs: 3000, toMs: 4000 });
    const ref = reference(fixed, INPUT);
    expect(batches.map((b) => [b.batchTimeMs, sortCanonical(b.records)])).toEqual([ref[2], ref[3]]);
    const text = await readStoreOutputs(store, 'lines', { fromMs: 1000, toMs: 1000 });
    expect(text[0]!.records.every((r) => typeof r === 'string')).toBe(true);
    await expect(readStoreOutputs(store, 'nope')).rejects.toThrow(
      /no saved output named 'nope'; it holds: lines, totals/,
    );
  });

  it("feeds another pipeline's stream, one output batch per batch", async () => {
    const upstream = await runOriginal(fixed);
    const { StreamingContext: Ctx } = await import('../../shared/index.ts');
    const ctx = new Ctx({ batchIntervalMs: 1000, partitions: 2 });
    const seen: [string, number][][] = [];
    ctx
      .sourceStream<[string, number]>('totals', () =>
        storeOutputsSource<[string, number]>(upstream, 'totals', { fromMs: 10_000 }),
      )
      .filter(([w]) => w === 'cat')
      .foreachRDD(async (rdd) => {
        seen.push(await rdd.collect());
      });
    const store = new MemoryObjectStore();
    const scheduler = inProcessScheduler(ctx, { store });
    await scheduler.run({ stopWhenExhausted: true, numBatches: 10 });
    await scheduler.stop();
    const ref = reference(fixed, INPUT);
    const cat = (i: number) => (ref[i]![1] as [string, number][]).filter(([w]) => w === 'cat');
    expect(seen).toEqual([cat(9), cat(10), cat(11)]);
    // input blocks of the downstream run hold exactly what it was given
    const blocks = await store.list(layout.inputBlock(1000, 'totals', 0).replace(/0\.blk$/, ''));
    expect(blocks.length).toBe(2);
    expect(decodeBlock((await store.get(blocks[0]!))!).length).toBeGreaterThan(0);
  });
});

describe('runBatch: the same pipeline over a bounded dataset', () => {
  it('cuts records into batches by a time field and equals the reference evaluator over those batches', async () => {
    const events = INPUT.flatMap((lines, i) =>
      lines.map((line, j) => ({ line, ts: new Date(60_000 + i * 1000 + j * 10).toISOString() })),
    );
    const build = (ctx: StreamingContext) => {
      const totals = fixed(
        ctx.inputStream<{ line: string }>().map((e) => e.line),
        ctx,
      );
      totals.saveAsJsonLines('totals');
    };
    const result = await runBatch(build, [...events, { line: 'no time' }], { timeField: 'ts' });
    expect(result.batchTimes).toEqual(INPUT.map((_, i) => 61_000 + i * 1000));
    expect(result.untimed).toBe(1);
    expect(result.manifests[0]!.input.deadLetters).toBe(1);
    const ref = reference(fixed, INPUT).map(([t, r]) => [t + 60_000, r]);
    expect(await savedTotals(result.store)).toEqual(ref);
  });

  it('runs everything as one batch without a time field, and refuses a store that holds a run', async () => {
    const result = await runBatch(
      (ctx) => fixed(ctx.inputStream<string>(), ctx).saveAsJsonLines('totals'),
      INPUT.flat(),
    );
    expect(result.batchTimes).toEqual([1000]);
    expect(await savedTotals(result.store)).toEqual(reference(fixed, [INPUT.flat()]));
    await expect(
      runBatch((ctx) => fixed(ctx.inputStream<string>(), ctx).saveAsJsonLines('totals'), ['a'], {
        store: result.store,
      }),
    ).rejects.toThrow(/already holds committed batches/);
    await expect(
      runBatch((ctx) => fixed(ctx.inputStream<string>(), ctx).print(), [{ x: 1 }], { timeField: 'ts' }),
    ).rejects.toThrow(/no record has a numeric or ISO time in field 'ts'/);
  });
});
