import { describe, expect, it } from 'vitest';
import {
  arraySource,
  BatchScheduler,
  decodeBlock,
  IncompatibleGraphError,
  InProcessInvoker,
  type Invoker,
  MemoryObjectStore,
  type ObjectStore,
  SluiceError,
  StreamingContext,
  type TaskSpec,
} from '../../shared/engine.ts';
import { batchDirOf } from '../output-keys.ts';

/** A stateful pipeline: running counts, a windowed count, and a saved output per batch. */
function build(ctx: StreamingContext, options: { mapTag?: string; statePartitions?: number } = {}) {
  const raw = ctx.inputStream<string>();
  // a changed pipeline: one more stateless step in front (state is named, so it survives)
  const words = options.mapTag ? raw.filter((w) => w !== options.mapTag) : raw;
  const pairs = words.map((w) => [w, 1] as [string, number]);
  pairs
    .updateStateByKey<string, number, number>((vs, s) => (s ?? 0) + vs.length, {
      name: 'totals',
      partitions: options.statePartitions,
    })
    .saveAsJsonLines('totals');
  pairs
    .reduceByKeyAndWindow((a, b) => a + b, { windowMs: 3000, inverse: (a, b) => a - b, name: 'win' })
    .saveAsJsonLines('window');
}

const input = [['a', 'b'], ['a'], ['c', 'a'], [], ['b', 'b'], ['a'], ['c']];

async function outputs(store: ObjectStore): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const key of await store.list('outputs/')) {
    if (!key.endsWith('.jsonl')) continue;
    const text = Buffer.from((await store.get(key))!).toString('utf8');
    const dir = batchDirOf(key);
    out[dir] = [
      ...(out[dir] ?? []),
      ...text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
    ].sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1));
  }
  return out;
}

function scheduler(
  store: ObjectStore,
  opts: { invoker?: (s: () => BatchScheduler) => Invoker; tag?: string; statePartitions?: number } = {},
) {
  const ctx = new StreamingContext({ batchIntervalMs: 1000, partitions: 2 });
  build(ctx, { mapTag: opts.tag, statePartitions: opts.statePartitions });
  let s: BatchScheduler | undefined;
  const invoker = opts.invoker?.(() => s!) ?? new InProcessInvoker({ pipeline: () => s!.pipeline, store });
  s = new BatchScheduler(ctx, {
    store,
    invoker,
    sources: { input: arraySource(input) },
    clock: 'manual',
    zeroTimeMs: 0,
    retryBackoffMs: 1,
    // a test of the invoker path: tiny batches would run in the driver, past it (issue 11)
    ...(opts.invoker ? { tinyBatch: false as const } : {}),
  });
  return s;
}

describe('BatchScheduler', () => {
  it('resumes after a restart with the same outputs as an uninterrupted run', async () => {
    const reference = new MemoryObjectStore();
    await scheduler(reference).run({ numBatches: input.length });

    const store = new MemoryObjectStore();
    const first = scheduler(store);
    await first.run({ numBatches: 3 });
    await first.stop();
    const second = scheduler(store);
    await second.start();
    expect(second.nextBatchTimeMs).toBe(4000);
    await second.run({ numBatches: input.length - 3 });
    expect(await outputs(store)).toEqual(await outputs(reference));
    expect(Object.keys(await outputs(store))).toContain('totals-7000');
  });

  it('re-runs a batch whose input was received but not committed, from the stored input', async () => {
    const reference = new MemoryObjectStore();
    await scheduler(reference).run({ numBatches: input.length });

    const store = new MemoryObjectStore();
    // the first driver dies in batch 4: its tasks fail for good after the input was written
    const dying = scheduler(store, {
      invoker: (s) => {
        const inner = new InProcessInvoker({ pipeline: () => s().pipeline, store });
        return {
          concurrency: 2,
          invoke: (spec: TaskSpec, o) => {
            if (spec.batchTimeMs === 4000) throw new SluiceError('driver crashed', { retryable: false });
            return inner.invoke(spec, o);
          },
          close: async () => {},
          describe: () => 'dying',
        };
      },
    });
    await expect(dying.run({ numBatches: input.length })).rejects.toThrow(/Batch 4000 failed/);
    expect(await store.get('batches/000000000004000/received.json')).toBeDefined();
    expect(await store.get('manifests/000000000004000.json')).toBeUndefined();

    const next = scheduler(store);
    await next.start();
    expect(next.nextBatchTimeMs).toBe(4000);
    const manifests = await next.run({ numBatches: input.length - 3 });
    expect(manifests[0]!.recovered).toBe(true);
    expect(await outputs(store)).toEqual(await outputs(reference));
  });

  it('commits a manifest per batch with stages, tasks and request counts', async () => {
    const store = new MemoryObjectStore();
    const manifests = await scheduler(store).run({ numBatches: 2 });
    const m = manifests[1]!;
    expect(m.batchTimeMs).toBe(2000);
    expect(m.input.records).toBe(1);
    expect(m.stages.length).toBeGreaterThanOrEqual(3);
    expect(m.tasks.total).toBe(m.stages.reduce((n, s) => n + s.tasks, 0));
    expect(m.tasks.retries).toBe(0);
    expect(m.requests.put).toBeGreaterThan(m.tasks.total);
    const stored = JSON.parse(Buffer.from((await store.get('manifests/000000000002000.json'))!).toString());
    expect(stored.batchTimeMs).toBe(2000);
    const block = await store.get('inputs/000000000002000/input/1.blk');
    expect(decodeBlock(block!)).toEqual(['a']);
  });

  it('retries a failed task and counts the retry', async () => {
    const store = new MemoryObjectStore();
    let failures = 0;
    const s = scheduler(store, {
      invoker: (sched) => {
        const inner = new InProcessInvoker({ pipeline: () => sched().pipeline, store });
        return {
          concurrency: 2,
          invoke: (spec: TaskSpec, o) => {
            if (spec.batchTimeMs === 1000 && spec.stageId === 0 && spec.attempt === 0) {
              failures++;
              throw new SluiceError('transient', { retryable: true });
            }
            return inner.invoke(spec, o);
          },
          close: async () => {},
          describe: () => 'flaky',
        };
      },
    });
    const [m] = await s.run({ numBatches: 1 });
    expect(failures).toBeGreaterThan(0);
    expect(m!.tasks.retries).toBe(failures);
    const reference = new MemoryObjectStore();
    await scheduler(reference).run({ numBatches: 1 });
    expect(await outputs(store)).toEqual(await outputs(reference));
  });

  it('accepts a changed function body but refuses a changed stateful operator', async () => {
    const store = new MemoryObjectStore();
    await scheduler(store).run({ numBatches: 2 });
    // one driver at a time: a second one started on the store would fence the first
    const original = scheduler(store);
    await original.start();
    await original.stop();
    const changed = scheduler(store, { tag: 'v2' });
    await expect(changed.start()).resolves.toBeUndefined();
    expect(changed.pipeline.fingerprint).not.toBe(original.pipeline.fingerprint);
    await changed.run({ numBatches: 2 });
    const incompatible = scheduler(store, { statePartitions: 5 });
    await expect(incompatible.start()).rejects.toThrow(IncompatibleGraphError);
    await expect(scheduler(store, { statePartitions: 5 }).start()).rejects.toThrow(
      /updateStateByKey 'totals'/,
    );
  });

  it('refuses to start without a source for inputStream, naming the input', async () => {
    const ctx = new StreamingContext({ batchIntervalMs: 1000 });
    ctx.inputStream<string>('clicks').print();
    const store = new MemoryObjectStore();
    let s: BatchScheduler | undefined;
    s = new BatchScheduler(ctx, {
      store,
      invoker: new InProcessInvoker({ pipeline: () => s!.pipeline, store }),
      clock: 'manual',
    });
    await expect(s.start()).rejects.toThrow(/input stream 'clicks' has no source/);
  });

  it('rejects a bad option at construction, naming it', () => {
    const ctx = new StreamingContext({ batchIntervalMs: 1000 });
    ctx.inputStream<string>().print();
    const store = new MemoryObjectStore();
    expect(() => new BatchScheduler(ctx, { store, invoker: {} as Invoker, taskTimeoutMs: -5 })).toThrow(
      /taskTimeoutMs/,
    );
    expect(() => new StreamingContext({ batchIntervalMs: 0 })).toThrow(/batchIntervalMs/);
  });
});
