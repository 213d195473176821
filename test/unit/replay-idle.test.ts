/**
 * Replay across an idle span (issue 11): the empty batches an idle span committed compactly
 * (idle/<from>-<to>.json, no write-ahead entry, no input block) are committed empty batches to a
 * replay too, not a gap: the range is replayed whole, and windows reaching back over the span
 * read it as empty, as the original did.
 */
import { describe, expect, it } from 'vitest';
import { catalog } from '../../shared/core/catalog.ts';
import { parseOutputKey } from '../../shared/core/layout.ts';
import {
  type DStream,
  inProcessScheduler,
  listIdleSpans,
  MemoryObjectStore,
  type ObjectStore,
  type Source,
  StreamingContext,
} from '../../shared/index.ts';
import { replay } from '../../shared/replay.ts';

/** A queue-like source (SQS): the batches given, then nothing. */
function queueSource(batches: readonly (readonly string[])[]): Source<string> {
  let next = 0;
  return {
    async receive() {
      return { records: [...(batches[next++] ?? [])], deadLetters: [] };
    },
    describe: () => 'queue',
  };
}

/** Word counts over a 4 s window sliding every second, saved per batch. */
function windowed(ctx: StreamingContext): void {
  (ctx.inputStream<string>() as DStream<string>)
    .map((w): [string, number] => [w, 1])
    .reduceByKeyAndWindow((a, b) => a + b, { windowMs: 4000 })
    .saveAsJsonLines('counts');
}

// data, then 12 quiet batches (an idle span once the window has emptied), then data again: the
// batch at 16000 has a window (13000..16000) that reaches back over the end of the span
const INPUT = [['a'], ['a', 'b'], [], [], [], [], [], [], [], [], [], [], [], [], ['b'], ['c', 'a'], []];

async function runOriginal(): Promise<MemoryObjectStore> {
  const store = new MemoryObjectStore();
  const ctx = new StreamingContext({ batchIntervalMs: 1000, partitions: 2 });
  windowed(ctx);
  const scheduler = inProcessScheduler(ctx, { store, sources: { input: queueSource(INPUT) }, lease: false });
  await scheduler.run({ numBatches: INPUT.length });
  await scheduler.stop();
  return store;
}

/** Saved records by batch time, for batches that saved any. */
async function saved(store: ObjectStore): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const key of await store.list('outputs/counts/')) {
    const o = parseOutputKey(key);
    if (!o || o.partition === undefined || key.endsWith('.lineage.json')) continue;
    const lines = Buffer.from((await store.get(key))!)
      .toString()
      .split('\n')
      .filter(Boolean);
    const t = o.batchTimeMs;
    if (lines.length === 0) continue; // an empty part (a batch run in full) saved no record
    out.set(t, [...(out.get(t) ?? []), ...lines].sort());
  }
  return out;
}

describe('replay across an idle span (issue 11)', () => {
  it('replays the whole range: the span is empty committed batches, not a gap', async () => {
    const original = await runOriginal();
    const spans = await listIdleSpans(original);
    expect(spans.length).toBeGreaterThan(0); // the original did commit an idle span
    const into = new MemoryObjectStore();
    const result = await replay({ original, into, pipeline: windowed });
    expect(result.plan.skippedForAlignment).toEqual([]);
    expect(result.plan.times[0]).toBe(1000);
    expect(await catalog.committed(into)).toEqual(INPUT.map((_, i) => (i + 1) * 1000));
    const replayed = await saved(into);
    // the window at 15000 and 16000 reaches back over the span's last batches: read as empty
    expect(replayed.get(15000)).toEqual(['["b",1]']);
    expect(replayed.get(16000)).toEqual(['["a",1]', '["b",1]', '["c",1]']);
    expect(replayed).toEqual(await saved(original));
  });

  it('a stateful pipeline replayed over the span carries its state across it', async () => {
    const original = await runOriginal();
    const into = new MemoryObjectStore();
    const totals = (ctx: StreamingContext) => {
      (ctx.inputStream<string>() as DStream<string>)
        .map((w): [string, number] => [w, 1])
        .updateStateByKey<string, number, number>((vs, s) => (s ?? 0) + vs.reduce((a, b) => a + b, 0), {
          name: 'totals',
        })
        .saveAsJsonLines('counts');
    };
    const result = await replay({ original, into, pipeline: totals });
    expect(result.plan.skippedForAlignment).toEqual([]);
    const replayed = await saved(into);
    // the totals after the span still hold the words of the batches before it
    expect(replayed.get(16000)).toEqual(['["a",3]', '["b",2]', '["c",1]']);
    // updateStateByKey runs every batch while its state holds keys: no idle batch in the replay
    expect(result.manifests.filter((m) => m.idle)).toEqual([]);
    expect(replayed.get(10000)).toEqual(['["a",2]', '["b",1]']);
  });
});
