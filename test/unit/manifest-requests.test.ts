/**
 * A batch's manifest counts every store request the batch made (issue 11, item 4): the driver's,
 * its tasks', and the clean-up after it (the LISTs and DELETEs of retention), which ran after the
 * manifest was written and went uncounted before. The clean-up runs once a block of batch times
 * (10 s at 1 s), in the batch that counts it.
 */
import { describe, expect, it } from 'vitest';
import { CountingObjectStore } from '../../shared/core/counting-store.ts';
import {
  type BatchManifest,
  BatchScheduler,
  InProcessInvoker,
  MemoryObjectStore,
  type Source,
  StreamingContext,
} from '../../shared/index.ts';

function queueSource(batches: readonly (readonly string[])[]): Source<string> {
  let next = 0;
  return {
    async receive() {
      return { records: [...(batches[next++] ?? [])], deadLetters: [] };
    },
    describe: () => 'queue',
  };
}

const INPUT = Array.from({ length: 12 }, (_, i) => (i === 7 ? [] : [`a b${i % 3}`, `c a`]));

describe('manifest request counts (issue 11)', () => {
  it("a batch's manifest counts its clean-up LISTs and DELETEs: the manifests add up to the store's counters", async () => {
    const memory = new MemoryObjectStore();
    // the driver's store, counted from outside: every request the driver makes goes through it
    const outer = new CountingObjectStore(memory);
    const ctx = new StreamingContext({ batchIntervalMs: 1000, partitions: 2, printer: () => {} });
    ctx
      .inputStream<string>()
      .flatMap((l) => l.split(' '))
      .map((w): [string, number] => [w, 1])
      .reduceByKey((a, b) => a + b)
      .saveAsJsonLines('counts');
    let s: BatchScheduler | undefined;
    // tasks count their own requests (task metrics): they use the store directly
    const invoker = new InProcessInvoker({ pipeline: () => s!.pipeline, store: memory });
    s = new BatchScheduler(ctx, {
      store: outer,
      invoker,
      sources: { input: queueSource(INPUT) },
      clock: 'manual',
      zeroTimeMs: 0,
      lease: false,
      idleFastPath: false,
      // stages through the invoker, so shuffles and RDDs are stored and cleaned up later
      tinyBatch: false,
    });
    await s.start();
    const before = outer.snapshot();
    const manifests: BatchManifest[] = await s.run({ numBatches: INPUT.length });
    const driver = outer.since(before);
    await s.stop();
    const sum = (f: 'list' | 'delete') => manifests.reduce((n, m) => n + m.requests[f], 0);
    // clean-up deletes the shuffle and RDDs of earlier batches, after listing them
    expect(driver.delete).toBeGreaterThan(0);
    expect(sum('list')).toBe(driver.list);
    expect(sum('delete')).toBe(driver.delete);
    // the clean-up runs once a 10 s block of batch times fell behind (retention.ts): the batch it
    // ran in shows its LISTs and DELETEs, the others none
    const cleaning = manifests.filter((m) => m.requests.list > 0);
    expect(cleaning.length).toBeGreaterThan(0);
    expect(cleaning.length).toBeLessThan(manifests.length / 2);
    expect(cleaning.reduce((n, m) => n + m.requests.delete, 0)).toBe(driver.delete);
  });
});
