/**
 * Issue 11, item 3: fewer requests for a batch with data. WordCount at 2 partitions wrote 17
 * objects per batch (data, then a lineage record, per task); now a stored partition carries its
 * lineage in its own object (one put-if-absent), an output part's lineage is committed in the
 * manifest, an all-empty shuffle map output is not written, and a tiny batch runs in the driver
 * with its shuffle in memory. The store's own request counters (CountingObjectStore) decide.
 */
import { describe, expect, it } from 'vitest';
import { profileOf } from '../../cli/cost.ts';
import { decodeBlock, encodeBlock, encodeJson, frameWithLineage } from '../../shared/core/codec.ts';
import { CountingObjectStore } from '../../shared/core/counting-store.ts';
import { layout } from '../../shared/core/layout.ts';
import { commitWithLineage, readLineage } from '../../shared/core/lineage-store.ts';
import {
  arraySource,
  type BatchManifest,
  BatchScheduler,
  ConfigError,
  InProcessInvoker,
  type InvokeOptions,
  type Invoker,
  type LineageRecord,
  MemoryObjectStore,
  type ObjectStore,
  StreamingContext,
  type TaskSpec,
} from '../../shared/index.ts';

const lines = [['to be or not to be', 'that is the question'], ['to sleep perchance to dream'], ['ay there']];

function wordCount(ctx: StreamingContext): void {
  const counts = ctx
    .inputStream<string>()
    .flatMap((l) => l.split(' ').filter(Boolean))
    .map((w): [string, number] => [w, 1])
    .reduceByKey((a, b) => a + b);
  counts.print();
  counts.saveAsJsonLines('wordcount');
}

function driver(store: ObjectStore, tinyBatch?: false | { maxRecords?: number; maxBytes?: number }) {
  const ctx = new StreamingContext({ batchIntervalMs: 1000, partitions: 2, printer: () => {} });
  wordCount(ctx);
  let s: BatchScheduler | undefined;
  const inner = new InProcessInvoker({ pipeline: () => s!.pipeline, store });
  const invoked: number[] = [];
  const invoker: Invoker = {
    concurrency: 4,
    invoke: (spec: TaskSpec, o: InvokeOptions) => {
      invoked.push(spec.batchTimeMs);
      return inner.invoke(spec, o);
    },
    close: async () => {},
    describe: () => 'counting',
  };
  s = new BatchScheduler(ctx, {
    store,
    invoker,
    sources: { input: arraySource(lines) },
    clock: 'manual',
    zeroTimeMs: 0,
    lease: false,
    ...(tinyBatch !== undefined ? { tinyBatch } : {}),
  });
  return { scheduler: s, invoked };
}

/** Runs the batches one by one; per batch, the PUTs and GETs the store itself counted. */
async function perBatch(store: CountingObjectStore, s: BatchScheduler, n: number) {
  const out: { manifest: BatchManifest; put: number; get: number }[] = [];
  await s.start(); // meta/graph.json and the resume point are not a batch's requests
  for (let i = 0; i < n; i++) {
    const before = store.snapshot();
    const manifest = await s.runNextBatch();
    const d = store.since(before);
    out.push({ manifest, put: d.put, get: d.get });
  }
  return out;
}

describe('requests per batch with data (issue 11, item 3)', () => {
  it('WordCount at 2 partitions writes at most 8 objects per batch with data, and the manifest counts them', async () => {
    const store = new CountingObjectStore(new MemoryObjectStore());
    const { scheduler, invoked } = driver(store);
    const batches = await perBatch(store, scheduler, 3);
    await scheduler.stop();
    for (const b of batches) {
      expect(b.manifest.input.records).toBeGreaterThan(0);
      // 2 input blocks, the write-ahead entry, 2 output parts, _SUCCESS, the manifest
      expect(b.put).toBeLessThanOrEqual(8);
      expect(b.manifest.requests.put).toBe(b.put);
      expect(b.manifest.stages.every((st) => st.inDriver)).toBe(true);
    }
    expect(invoked).toEqual([]); // a tiny batch invokes no worker or Lambda
    // the cost model prices no partition invocation or duration for it (the scheduler ran it)
    for (const b of batches)
      expect(profileOf(b.manifest)).toMatchObject({ invocations: 0, taskMs: 0, put: b.put });
  });

  it('a tiny batch keeps its outputs and lineage: equal outputs, output lineage down to the input blocks', async () => {
    const tinyStore = new MemoryObjectStore();
    const tiny = driver(tinyStore);
    await tiny.scheduler.run({ numBatches: 3 });
    const workerStore = new MemoryObjectStore();
    const workers = driver(workerStore, false);
    await workers.scheduler.run({ numBatches: 3 });
    expect(workers.invoked.length).toBeGreaterThan(0);
    const outputs = async (store: ObjectStore) => {
      const keys = (await store.list('outputs/')).filter((k) => !k.endsWith('_SUCCESS'));
      return Promise.all(keys.map(async (k) => [k, Buffer.from((await store.get(k))!).toString()]));
    };
    expect(await outputs(tinyStore)).toEqual(await outputs(workerStore));
    // the part's lineage (manifest) -> the reduced RDD (in memory: manifest) -> shuffle -> input blocks
    const part = layout.output('wordcount', 1000, 0, '.jsonl');
    const record = (await readLineage(tinyStore, part))!;
    expect(record.key).toBe(part);
    const rdd = (await readLineage(tinyStore, record.parents[0]!.key))!;
    expect(rdd.operator).toBe('reduceByKey');
    const shuffle = (await readLineage(tinyStore, rdd.parents.find((p) => !p.idle)!.key))!;
    expect(shuffle.parents.map((p) => p.key)).toContain(layout.inputBlock(1000, 'input', 0));
  });

  it('without tiny batches: one object per task (lineage inside), no lineage records beside them', async () => {
    const store = new CountingObjectStore(new MemoryObjectStore());
    const { scheduler, invoked } = driver(store, false);
    const batches = await perBatch(store, scheduler, 2);
    await scheduler.stop();
    expect(invoked.length).toBe(12);
    // 17 before: 2 inputs, write-ahead entry, 2 shuffle + 2 lineage, 2 RDD + 2 lineage, 2 parts + 2 lineage, _SUCCESS, manifest
    // batch 2 has one line: its first input block is empty, so is that map task's output (not written)
    expect(batches.map((b) => b.put)).toEqual([11, 10]);
    expect(batches.map((b) => b.manifest.requests.put)).toEqual([11, 10]);
    const keys = await store.inner.list('');
    expect(keys.filter((k) => k.endsWith('.lineage.json'))).toEqual([]);
    const key = layout.rddPartition(2000, batches[1]!.manifest.outputs[0]!.name, 1);
    const record = await readLineage(store, key);
    expect(record).toMatchObject({ key, partition: 1, batchTimeMs: 2000 });
    expect(decodeBlock((await store.get(key)) as Uint8Array).length).toBe(record!.records);
  });

  it('a batch over the tinyBatch limits runs on the invoker', async () => {
    const store = new MemoryObjectStore();
    const { scheduler, invoked } = driver(store, { maxRecords: 1 });
    const manifests = await scheduler.run({ numBatches: 3 });
    // batch 1 has 2 records (invoked), batches 2 and 3 have 1 (in the driver)
    expect([...new Set(invoked)]).toEqual([1000]);
    expect(manifests.map((m) => m.stages.every((st) => st.inDriver === true))).toEqual([false, true, true]);
  });

  it('refuses a bad tinyBatch option at construction, naming it', () => {
    const ctx = new StreamingContext({ batchIntervalMs: 1000, partitions: 2 });
    wordCount(ctx);
    const make = (tinyBatch: unknown) => () =>
      new BatchScheduler(ctx, {
        store: new MemoryObjectStore(),
        invoker: { concurrency: 1 } as Invoker,
        tinyBatch: tinyBatch as false,
      });
    expect(make({ maxRecords: -1 })).toThrow(ConfigError);
    expect(make({ maxRecords: -1 })).toThrow(/tinyBatch\.maxRecords/);
    expect(make({ maxRows: 5 })).toThrow(/tinyBatch\.maxRows/);
    expect(make(true)).toThrow(/tinyBatch/);
  });
});

describe('lineage in the stored object (issue 11, item 3)', () => {
  const lineageOf = (key: string, data: Uint8Array, attempt: number): LineageRecord => ({
    rddId: 'ds1',
    batchTimeMs: 1000,
    partition: 0,
    operator: 'reduceByKey',
    operators: ['reduceByKey'],
    stageId: 1,
    parents: [],
    records: 2,
    bytes: data.length,
    checksum: Buffer.from(data.subarray(data.length - 4)).toString('hex'),
    attempt,
    durationMs: 1,
    fingerprint: 'f',
    key,
    committedAtMs: 1,
  });

  it('the first finisher wins; a damaged object or one written before is replaced, data unchanged', async () => {
    const store = new MemoryObjectStore();
    const key = layout.rddPartition(1000, 'ds1', 0);
    const data = encodeBlock([
      ['a', 1],
      ['b', 2],
    ]);
    const first = await commitWithLineage(store, 'rdd', data, lineageOf(key, data, 0));
    expect(first).toMatchObject({ committed: true, writes: 1 });
    const second = await commitWithLineage(store, 'rdd', data, lineageOf(key, data, 1));
    expect(second.committed).toBe(false);
    expect(second.winner.attempt).toBe(0);

    // one byte of the data flipped: the next attempt replaces the object
    const stored = Buffer.from((await store.get(key))!);
    stored[3] = stored[3]! ^ 0xff;
    await store.put(key, stored);
    expect(() => decodeBlock(stored)).toThrow(/checksum/);
    const repair = await commitWithLineage(store, 'rdd', data, lineageOf(key, data, 2));
    expect(repair).toMatchObject({ committed: true, writes: 2 });
    expect(decodeBlock((await store.get(key))!)).toEqual([
      ['a', 1],
      ['b', 2],
    ]);

    // the trailer damaged: the object reads as corrupt (lineage recovery recomputes it)
    const framed = Buffer.from(frameWithLineage(data, lineageOf(key, data, 0)));
    framed[data.length + 5] = framed[data.length + 5]! ^ 0x01;
    expect(() => decodeBlock(framed)).toThrow(/lineage trailer checksum/);
  });

  it('reads the lineage of a store written before: a plain block with its record beside it', async () => {
    const store = new MemoryObjectStore();
    const key = layout.rddPartition(1000, 'ds1', 0);
    const data = encodeBlock(['x', 'y']);
    await store.put(key, data);
    await store.put(`${key}.lineage.json`, encodeJson(lineageOf(key, data, 3)));
    expect(decodeBlock((await store.get(key))!)).toEqual(['x', 'y']);
    expect((await readLineage(store, key))!.attempt).toBe(3);
    const part = layout.output('wordcount', 1000, 0, '.jsonl');
    await store.put(layout.lineageOf(part), encodeJson({ ...lineageOf(part, data, 4) }));
    expect((await readLineage(store, part))!.attempt).toBe(4);
    // replaced by a new attempt, the object carries its own lineage
    expect((await commitWithLineage(store, 'rdd', data, lineageOf(key, data, 5))).committed).toBe(true);
    expect((await readLineage(store, key))!.attempt).toBe(5);
  });
});
