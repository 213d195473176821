import { describe, expect, it } from 'vitest';
import { CountingObjectStore } from '../../shared/core/counting-store.ts';
import { parseOutputKey } from '../../shared/core/layout.ts';
import {
  arraySource,
  type BatchManifest,
  BatchScheduler,
  IDLE_CHUNK,
  InProcessInvoker,
  type InvokeOptions,
  type Invoker,
  listIdleSpans,
  MemoryObjectStore,
  type ObjectStore,
  type Source,
  StreamingContext,
  type TaskSpec,
} from '../../shared/index.ts';

/** Counts task invocations. */
class CountingInvoker implements Invoker {
  invocations = 0;
  constructor(readonly inner: Invoker) {}
  get concurrency() {
    return this.inner.concurrency;
  }
  invoke(spec: TaskSpec, options: InvokeOptions) {
    this.invocations++;
    return this.inner.invoke(spec, options);
  }
  close() {
    return this.inner.close();
  }
  describe() {
    return 'counting';
  }
}

/** A queue-like source (SQS): the batches given, then nothing, and no position. */
function queueSource(batches: readonly (readonly string[])[]): Source<string> {
  let next = 0;
  return {
    async receive() {
      return { records: [...(batches[next++] ?? [])], deadLetters: [] };
    },
    describe: () => 'queue',
  };
}

type Build = (ctx: StreamingContext) => void;

const wordCount: Build = (ctx) => {
  const counts = ctx
    .inputStream<string>()
    .flatMap((l) => l.split(' ').filter(Boolean))
    .map((w): [string, number] => [w, 1])
    .reduceByKey((a, b) => a + b);
  counts.print();
  counts.saveAsJsonLines('wordcount');
};

function driver(
  build: Build,
  store: ObjectStore,
  source: Source<unknown>,
  options: { idleFastPath?: boolean; tinyBatch?: false; collect?: (t: number, xs: unknown[]) => void } = {},
) {
  const ctx = new StreamingContext({ batchIntervalMs: 1000, partitions: 2, printer: () => {} });
  build(ctx);
  let s: BatchScheduler | undefined;
  const invoker = new CountingInvoker(new InProcessInvoker({ pipeline: () => s!.pipeline, store }));
  s = new BatchScheduler(ctx, {
    store,
    invoker,
    sources: { input: source },
    clock: 'manual',
    zeroTimeMs: 0,
    lease: false,
    idleFastPath: options.idleFastPath,
    tinyBatch: options.tinyBatch,
  });
  return { scheduler: s, invoker };
}

/** Runs `n` batches of `build` over `batches` and returns what every foreachRDD collected, by batch. */
async function outputsOf(
  build: (ctx: StreamingContext, out: Map<number, unknown[]>) => void,
  batches: readonly (readonly string[])[],
  n: number,
  idleFastPath: boolean,
) {
  const out = new Map<number, unknown[]>();
  const store = new MemoryObjectStore();
  const { scheduler } = driver((ctx) => build(ctx, out), store, queueSource(batches), { idleFastPath });
  const manifests = await scheduler.run({ numBatches: n });
  await scheduler.stop();
  const sorted = [...out.entries()].sort((a, b) => a[0] - b[0]).map(([t, xs]) => [t, sortAll(xs)]);
  return { out: sorted, manifests, store };
}

function sortAll(xs: unknown[]): unknown[] {
  return [...xs].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}

describe('idle fast path (issue 11)', () => {
  it('600 empty batches: no task, at most one store write per 60 batches, committed as idle spans', async () => {
    const memory = new MemoryObjectStore();
    const store = new CountingObjectStore(memory);
    const { scheduler, invoker } = driver(wordCount, store, queueSource([]));
    await scheduler.start();
    const before = store.snapshot();
    const manifests = await scheduler.run({ numBatches: 600 });
    await scheduler.stop();
    const used = store.since(before);
    expect(manifests).toHaveLength(600);
    expect(manifests.every((m) => m.idle === true)).toBe(true);
    expect(invoker.invocations).toBe(0);
    expect(used.put).toBeLessThanOrEqual(600 / 60);
    expect(used.delete).toBe(0);
    // and next to no reads: the first batches list what cleaning up before time zero would drop
    expect(used.get).toBeLessThanOrEqual(600); // the write-ahead entry check, one per batch
    expect(used.list).toBeLessThanOrEqual(8);
    // nothing of the empty batches: no input block, no output directory, no _SUCCESS, no manifest
    const keys = await memory.list('');
    expect(keys.filter((k) => !k.startsWith('idle/') && k !== 'meta/graph.json')).toEqual([]);
    const spans = await listIdleSpans(memory);
    expect(spans.reduce((n, s) => n + (s.toMs - s.fromMs) / 1000 + 1, 0)).toBe(600);
    expect(spans[0]).toEqual({ fromMs: 1000, toMs: IDLE_CHUNK * 1000 });
    expect(spans.at(-1)!.toMs).toBe(600_000);
  });

  it('an empty batch without the fast path costs what it did (the figure the fast path removes)', async () => {
    const store = new CountingObjectStore(new MemoryObjectStore());
    // the figure before issue 11: tiny batches (run in the driver) off too
    const { scheduler, invoker } = driver(wordCount, store, queueSource([]), {
      idleFastPath: false,
      tinyBatch: false,
    });
    await scheduler.start();
    const [m] = (await scheduler.run({ numBatches: 1 })) as BatchManifest[];
    await scheduler.stop();
    expect(m!.idle).toBeUndefined();
    expect(invoker.invocations).toBeGreaterThan(0);
    // 2 input blocks, the write-ahead entry, 2 RDD partitions (lineage inside), 2 output parts,
    // _SUCCESS, the manifest: empty shuffle map outputs are not written (17 before issue 11 item 3)
    expect(m!.requests.put).toBe(9);
  });

  it('a batch with data after an idle span commits the span first, then runs as before', async () => {
    const memory = new MemoryObjectStore();
    const batches = [['a b'], [], [], [], ['b c']];
    const { scheduler } = driver(wordCount, memory, queueSource(batches));
    const manifests = await scheduler.run({ numBatches: 6 });
    await scheduler.stop();
    expect(manifests.map((m) => m.idle === true)).toEqual([false, true, true, true, false, true]);
    expect(await listIdleSpans(memory)).toEqual([
      { fromMs: 2000, toMs: 4000 },
      { fromMs: 6000, toMs: 6000 },
    ]);
    const manifestKeys = await memory.list('manifests/');
    expect(manifestKeys).toEqual(['manifests/000000000001000.json', 'manifests/000000000005000.json']);
    // outputs/<name>/dt=.../hr=.../batch=<t>/...: only the two batches with data wrote a folder
    const outputs = (await memory.list('outputs/')).map((k) => parseOutputKey(k)?.batchTimeMs);
    expect(new Set(outputs)).toEqual(new Set([1000, 5000]));
  });

  it('foreachRDD and print still run for an idle batch, with an empty RDD and no store request', async () => {
    const seen: [number, unknown[]][] = [];
    const store = new CountingObjectStore(new MemoryObjectStore());
    const { scheduler } = driver(
      (ctx) =>
        ctx
          .inputStream<string>()
          .map((w): [string, number] => [w, 1])
          .reduceByKey((a, b) => a + b)
          .foreachRDD(async (rdd, t) => {
            seen.push([t, await rdd.collect()]);
          }),
      store,
      queueSource([['x']]),
    );
    await scheduler.run({ numBatches: 4 }); // the data batch, then idle ones that clean up after it
    const before = store.snapshot();
    const ms = await scheduler.run({ numBatches: 3 });
    expect(ms.every((m) => m.idle)).toBe(true);
    expect(store.since(before)).toMatchObject({ get: 3, put: 0, list: 0, delete: 0 }); // a write-ahead check each
    await scheduler.stop();
    expect(seen).toEqual([
      [1000, [['x', 1]]],
      [2000, []],
      [3000, []],
      [4000, []],
      [5000, []],
      [6000, []],
      [7000, []],
    ]);
  });

  const windowed = (ctx: StreamingContext, out: Map<number, unknown[]>) =>
    ctx
      .inputStream<string>()
      .map((w): [string, number] => [w, 1])
      .reduceByKeyAndWindow((a, b) => a + b, { windowMs: 4000 })
      .foreachRDD(async (rdd, t) => {
        out.set(t, await rdd.collect());
      });

  it('a window reaching back over an idle span reads it as empty: same results as without the fast path', async () => {
    const batches = [['a'], ['a', 'b'], [], [], [], [], [], [], [], [], [], [], ['b'], [], ['c']];
    const fast = await outputsOf(windowed, batches, 20, true);
    const slow = await outputsOf(windowed, batches, 20, false);
    expect(fast.out).toEqual(slow.out);
    // after the last input (2000) the window may hold data for its reach (4 s window + 1 s slide):
    // 3000..7000 run normally, 8000..12000 are idle, and again after 13000 and 15000
    expect(fast.manifests.filter((m) => m.idle).map((m) => m.batchTimeMs)).toEqual([
      8000, 9000, 10000, 11000, 12000,
    ]);
    expect(slow.manifests.some((m) => m.idle)).toBe(false);
  });

  const incremental = (ctx: StreamingContext, out: Map<number, unknown[]>) =>
    ctx
      .inputStream<string>()
      .map((w): [string, number] => [w, 1])
      .reduceByKeyAndWindow((a, b) => a + b, { windowMs: 3000, inverse: (a, b) => a - b, name: 'win' })
      .foreachRDD(async (rdd, t) => {
        out.set(t, await rdd.collect());
      });

  it('an incremental window keeps zero-valued keys (as Spark): never idle while it holds them, same results', async () => {
    const batches = [['a'], [], [], [], [], [], [], [], ['a']];
    const fast = await outputsOf(incremental, batches, 12, true);
    const slow = await outputsOf(incremental, batches, 12, false);
    expect(fast.out).toEqual(slow.out);
    expect(fast.manifests.some((m) => m.idle)).toBe(false);
  });

  const totals = (ctx: StreamingContext, out: Map<number, unknown[]>) =>
    ctx
      .inputStream<string>()
      .map((w): [string, number] => [w, 1])
      .updateStateByKey<string, number, number>(
        // a key is dropped once it saw two batches without new values: state empties again
        (vs, s) => {
          const [n, quiet] = (s as unknown as [number, number] | undefined) ?? [0, 0];
          if (vs.length === 0 && quiet >= 1) return undefined;
          return [n + vs.length, vs.length === 0 ? quiet + 1 : 0] as unknown as number;
        },
        { name: 'totals' },
      )
      .foreachRDD(async (rdd, t) => {
        out.set(t, await rdd.collect());
      });

  it('updateStateByKey runs every batch while its state holds keys, idles once it is empty, same results', async () => {
    const batches = [['a'], [], [], [], [], [], [], ['b'], [], [], [], []];
    const fast = await outputsOf(totals, batches, 14, true);
    const slow = await outputsOf(totals, batches, 14, false);
    expect(fast.out).toEqual(slow.out);
    const idle = fast.manifests.filter((m) => m.idle).map((m) => m.batchTimeMs);
    // a held at 1000..3000 (dropped at 3000: empty state stored), then idle until b at 8000
    expect(idle).toEqual([4000, 5000, 6000, 7000, 11000, 12000, 13000, 14000]);
  });

  it('a restart resumes after the last idle span, which counts as committed', async () => {
    const memory = new MemoryObjectStore();
    const first = driver(wordCount, memory, queueSource([['a']]));
    await first.scheduler.run({ numBatches: 70 });
    await first.scheduler.stop(); // flushes the open span
    expect((await listIdleSpans(memory)).at(-1)).toEqual({ fromMs: 62_000, toMs: 70_000 });
    const second = driver(wordCount, memory, queueSource([['z']]));
    await second.scheduler.start();
    expect(second.scheduler.lastCommittedBatchMs).toBe(70_000);
    expect(second.scheduler.nextBatchTimeMs).toBe(71_000);
    const [m] = await second.scheduler.run({ numBatches: 1 });
    await second.scheduler.stop();
    expect(m!.batchTimeMs).toBe(71_000);
    expect(m!.input.records).toBe(1);
  });

  it('a source position advanced by an idle batch is kept in its span and resumed from', async () => {
    const memory = new MemoryObjectStore();
    const batches = [['a'], [], [], ['b'], ['c']];
    const first = driver(wordCount, memory, arraySource(batches));
    await first.scheduler.run({ numBatches: 3 });
    await first.scheduler.stop();
    const second = driver(wordCount, memory, arraySource(batches));
    const [m] = await second.scheduler.run({ numBatches: 1 });
    await second.scheduler.stop();
    expect(m!.batchTimeMs).toBe(4000);
    expect(m!.input.records).toBe(1);
    const block = await memory.list('inputs/000000000004000/');
    expect(block.length).toBe(2);
  });

  it('fillIdleUntil commits the batches a sleeping scheduler missed as one span, without polling', async () => {
    const memory = new MemoryObjectStore();
    let polls = 0;
    const source: Source<string> = {
      async receive() {
        polls++;
        return { records: [], deadLetters: [] };
      },
      describe: () => 'counting',
    };
    const { scheduler } = driver(wordCount, memory, source);
    await scheduler.run({ numBatches: 1 });
    const pollsBefore = polls;
    const n = await scheduler.fillIdleUntil(100_500);
    expect(n).toBe(98);
    expect(polls).toBe(pollsBefore);
    expect(scheduler.nextBatchTimeMs).toBe(100_000);
    await scheduler.stop();
    const spans = await listIdleSpans(memory);
    expect(spans.at(-1)!.toMs).toBe(99_000);
  });

  it('a scheduler woken after a long sleep runs the batch that holds the messages before it may sleep again', async () => {
    const memory = new MemoryObjectStore();
    const { scheduler } = driver(wordCount, memory, queueSource([['a'], ['b c']]));
    await scheduler.run({ numBatches: 1 });
    // asleep far longer than idleAfter (2 s here), then woken by messages
    expect(await scheduler.fillIdleUntil(100_500)).toBe(98);
    expect(scheduler.idleForMs).toBe(0);
    const ran = await scheduler.run({ numBatches: 5, stopWhenIdleMs: 2_000 });
    expect(ran[0]?.input.records).toBe(1);
    await scheduler.stop();
  });
});
