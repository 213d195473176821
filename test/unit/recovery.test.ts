import { describe, expect, it } from 'vitest';
import {
  InProcessInvoker,
  type Invoker,
  MemoryObjectStore,
  type StreamingContext,
  type TaskSpec,
} from '../../shared/index.ts';
import { observable, runWithFaults } from '../chaos/harness.ts';

/** Running word counts (state), a windowed count (materialized window input) and saved outputs. */
function stateful(ctx: StreamingContext): void {
  const pairs = ctx
    .inputStream<string>()
    .flatMap((l) => l.split(' '))
    .map((w): [string, number] => [w, 1]);
  pairs
    .updateStateByKey<string, number, number>((vs, s) => (s ?? 0) + vs.length, { name: 'totals' })
    .saveAsJsonLines('totals');
  pairs
    .reduceByKeyAndWindow((a, b) => a + b, {
      windowMs: 3000,
      inverse: (a, b) => a - b,
      filter: (kv) => kv[1] > 0,
    })
    .saveAsJsonLines('window');
  pairs.reduceByKey((a, b) => a + b).print(100);
}

const words = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
const input = Array.from({ length: 12 }, (_, t) =>
  Array.from({ length: 20 + t }, (_, i) => `${words[(t * 7 + i) % 7]} ${words[(i * 3) % 7]}`),
);

describe('recovery', () => {
  it('recomputes deleted state and window partitions from lineage, with identical outputs', async () => {
    const reference = await runWithFaults(stateful, { input }, { numBatches: input.length });
    const faulty = await runWithFaults(
      stateful,
      { input },
      { numBatches: input.length, faults: { seed: 7, deletePartitions: 0.4 } },
    );
    expect(faulty.faults.deletedPartitions).toBeGreaterThan(3);
    expect(await observable(faulty)).toEqual(await observable(reference));
    const recomputed = [...faulty.manifests.values()].reduce((n, m) => n + m.tasks.recomputed, 0);
    expect(recomputed).toBeGreaterThan(0);
  });

  it('recomputes corrupt blocks (checksum mismatch) from lineage', async () => {
    const reference = await runWithFaults(stateful, { input }, { numBatches: input.length });
    const faulty = await runWithFaults(
      stateful,
      { input },
      { numBatches: input.length, faults: { seed: 3, corruptBlocks: 0.4 } },
    );
    expect(faulty.faults.corruptedBlocks).toBeGreaterThan(3);
    expect(await observable(faulty)).toEqual(await observable(reference));
  });

  it('walks back through several lost batches of state, recursively', async () => {
    const reference = await runWithFaults(stateful, { input }, { numBatches: input.length });
    // every state partition of every batch is deleted after its commit: each batch must
    // recompute the previous state from the one before, back to what exists
    const faulty = await runWithFaults(
      stateful,
      { input },
      { numBatches: input.length, faults: { seed: 11, deletePartitions: 1 } },
    );
    expect(await observable(faulty)).toEqual(await observable(reference));
    const recomputed = [...faulty.manifests.values()].map((m) => m.tasks.recomputed);
    expect(Math.max(...recomputed)).toBeGreaterThan(1);
  });

  it('retries tasks whose worker died before committing', async () => {
    const reference = await runWithFaults(stateful, { input }, { numBatches: input.length });
    const faulty = await runWithFaults(
      stateful,
      { input },
      { numBatches: input.length, faults: { seed: 5, killWorkers: 0.3, failTasks: 0.2 } },
    );
    expect(faulty.faults.killedWorkers + faulty.faults.failedTasks).toBeGreaterThan(5);
    expect(await observable(faulty)).toEqual(await observable(reference));
    // every failed first attempt was followed by a retry, unless a speculative copy won first
    const retries = [...faulty.manifests.values()].reduce(
      (n, m) => n + m.tasks.retries + m.tasks.speculative,
      0,
    );
    expect(retries).toBeGreaterThanOrEqual(faulty.faults.killedWorkers + faulty.faults.failedTasks);
  });

  it('replaces a driver that died mid-batch: it resumes from the manifests, with identical outputs', async () => {
    const reference = await runWithFaults(stateful, { input }, { numBatches: input.length });
    const faulty = await runWithFaults(
      stateful,
      { input },
      { numBatches: input.length, faults: { seed: 21, crashDriver: 0.35 } },
    );
    expect(faulty.faults.driverCrashes).toBeGreaterThan(1);
    expect(faulty.incarnations).toBe(faulty.faults.driverCrashes + 1);
    expect(faulty.conflicts).toEqual([]);
    expect(await observable(faulty)).toEqual(await observable(reference));
  });

  it('launches a speculative copy of a straggler; the first commit wins', async () => {
    const reference = await runWithFaults(stateful, { input }, { numBatches: 3 });
    const faulty = await runWithFaults(
      stateful,
      { input },
      {
        numBatches: 3,
        faults: { seed: 2, slowTasks: 0.25, slowFactor: 40 },
        speculation: { minRuntimeMs: 5, multiplier: 2, quantile: 0.5 },
      },
    );
    expect(faulty.faults.slowTasks).toBeGreaterThan(0);
    const speculative = [...faulty.manifests.values()].reduce((n, m) => n + m.tasks.speculative, 0);
    expect(speculative).toBeGreaterThan(0);
    expect(await observable(faulty)).toEqual(await observable(reference));
  });

  it('runs a backlog of closed batches in parallel where dependencies allow, with identical outputs', async () => {
    const { BatchScheduler, StreamingContext: Context, arraySource } = await import('../../shared/index.ts');
    const reference = await runWithFaults(stateful, { input }, { numBatches: 6 });
    const store = new MemoryObjectStore();
    const ctx = new Context({ batchIntervalMs: 1000, partitions: 2, printer: () => {} });
    stateful(ctx);
    const started: string[] = [];
    let scheduler: InstanceType<typeof BatchScheduler> | undefined;
    // 12 slots for 2 partitions: the backlog bound (limit / partitions) lets all 6 batches run at once
    const inner = new InProcessInvoker({ pipeline: () => scheduler!.pipeline, store, concurrency: 12 });
    const invoker: Invoker = {
      concurrency: 12,
      invoke: async (spec: TaskSpec, o) => {
        started.push(`start ${spec.batchTimeMs} ${spec.stageId}`);
        const r = await inner.invoke(spec, o);
        started.push(`end ${spec.batchTimeMs} ${spec.stageId}`);
        return r;
      },
      close: async () => {},
      describe: () => 'recording',
    };
    scheduler = new BatchScheduler(ctx, {
      store,
      invoker,
      sources: { input: arraySource(input) },
      clock: 'manual',
      zeroTimeMs: 0,
      lease: false,
      tinyBatch: false, // the invocations are what this test watches
    });
    expect(await scheduler.closeBatches(6)).toEqual([1000, 2000, 3000, 4000, 5000, 6000]);
    const manifests = await scheduler.run({ numBatches: 6 });
    expect(manifests.map((m) => m.batchTimeMs)).toEqual([1000, 2000, 3000, 4000, 5000, 6000]);
    // the map stage of the last batch started before the first batch's tasks had all ended
    const lastStart = started.indexOf('start 6000 0');
    const firstEnds = started.map((e, i) => (e.startsWith('end 1000') ? i : -1)).filter((i) => i >= 0);
    expect(lastStart).toBeLessThan(Math.max(...firstEnds));
    const { savedOutputs } = await import('../chaos/harness.ts');
    expect(await savedOutputs(store)).toEqual(await savedOutputs(reference.store));
  });

  it('cannot recompute a lost input block: the batch fails and says why', async () => {
    const store = new MemoryObjectStore();
    const { BatchScheduler, StreamingContext: Context, arraySource } = await import('../../shared/index.ts');
    const ctx = new Context({ batchIntervalMs: 1000, partitions: 2, printer: () => {} });
    stateful(ctx);
    let scheduler: InstanceType<typeof BatchScheduler> | undefined;
    scheduler = new BatchScheduler(ctx, {
      store,
      invoker: new InProcessInvoker({ pipeline: () => scheduler!.pipeline, store }),
      sources: { input: arraySource(input) },
      clock: 'manual',
      zeroTimeMs: 0,
      lease: false,
      retryBackoffMs: 1,
    });
    await scheduler.closeBatches(1);
    await store.delete('inputs/000000000001000/input/0.blk');
    await expect(scheduler.run({ numBatches: 1 })).rejects.toThrow(
      /input block inputs\/000000000001000\/input\/0\.blk is gone and input cannot be recomputed/,
    );
  });
});

describe('catch-up is not recovery', () => {
  it("a fresh driver's first batches, closed as a backlog behind the clock, are catch-up, not recovered", async () => {
    const { StreamingContext: Context } = await import('../../shared/index.ts');
    const { arraySource, inProcessScheduler } = await import('../../shared/testing.ts');
    const ctx = new Context({ batchIntervalMs: 200, partitions: 2, printer: () => {} });
    stateful(ctx);
    const store = new MemoryObjectStore();
    // a fresh store whose zero time lies 5 intervals back: the driver starts behind, as one whose
    // workers are still warming up when its first batches fall due
    const zero = Math.floor(Date.now() / 200) * 200 - 1000;
    const events: Record<string, unknown>[] = [];
    const scheduler = inProcessScheduler(ctx, {
      store,
      sources: { input: arraySource(input) },
      clock: 'wall',
      zeroTimeMs: zero,
      lease: false,
      log: (e) => events.push(e),
    });
    const manifests = await scheduler.run({ numBatches: 4 });
    await scheduler.stop();
    const backlog = events
      .filter((e) => e.event === 'recovery.backlog')
      .flatMap((e) => e.batches as number[]);
    expect(backlog.length).toBeGreaterThanOrEqual(2);
    for (const m of manifests) {
      expect(m.recovered, `batch ${m.batchTimeMs}`).toBe(false);
      expect(m.catchUp ?? false, `batch ${m.batchTimeMs}`).toBe(backlog.includes(m.batchTimeMs));
    }
  });

  it('a batch re-run after a restart is recovered, not catch-up', async () => {
    const { BatchScheduler, StreamingContext: Context, arraySource } = await import('../../shared/index.ts');
    const store = new MemoryObjectStore();
    const make = () => {
      const ctx = new Context({ batchIntervalMs: 1000, partitions: 2, printer: () => {} });
      stateful(ctx);
      let scheduler: InstanceType<typeof BatchScheduler> | undefined;
      scheduler = new BatchScheduler(ctx, {
        store,
        invoker: new InProcessInvoker({ pipeline: () => scheduler!.pipeline, store }),
        sources: { input: arraySource(input) },
        clock: 'manual',
        zeroTimeMs: 0,
        lease: false,
      });
      return scheduler;
    };
    // the first driver received two batches and died before running them
    expect(await make().closeBatches(2)).toEqual([1000, 2000]);
    const manifests = await make().run({ numBatches: 3 });
    expect(manifests.map((m) => [m.batchTimeMs, m.recovered, m.catchUp ?? false])).toEqual([
      [1000, true, false],
      [2000, true, false],
      [3000, false, false],
    ]);
  });
});
