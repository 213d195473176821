/**
 * issue 14, item 1: input written DURING the interval by block generators (Spark's receivers);
 * closing a batch only lists the blocks in its write-ahead entry. Same guarantees: every record
 * exactly once across a driver that dies with unsealed blocks, acknowledged only once the entry
 * listing it is stored.
 */

import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeBlock, decodeJson, encodeBlock } from '../../shared/core/codec.ts';
import type { ReceivedEntry } from '../../shared/core/driver.ts';
import {
  BlockGenerator,
  blockIntervalMs,
  cutsPerInterval,
  MIN_EARLY_CUT_RECORDS,
  nextCutAtMs,
} from '../../shared/core/receiver/block-generator.ts';
import {
  BatchScheduler,
  GeneratorSource,
  InProcessInvoker,
  MemoryObjectStore,
  type ObjectStore,
  type Source,
  StreamingContext,
} from '../../shared/index.ts';

const INTERVAL = 200;

async function savedLines(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for (const key of await store.list('outputs/seen/')) {
    if (!key.includes('/part-')) continue;
    const text = Buffer.from((await store.get(key))!).toString('utf8');
    for (const line of text.split('\n')) if (line) out.push(line);
  }
  return out;
}

async function entries(store: ObjectStore): Promise<ReceivedEntry[]> {
  const keys = (await store.list('batches/')).filter((k) => k.endsWith('received.json')).sort();
  return Promise.all(keys.map(async (k) => decodeJson<ReceivedEntry>((await store.get(k))!)));
}

function driver(store: ObjectStore, source: Source<unknown>) {
  const ctx = new StreamingContext({ batchIntervalMs: INTERVAL, partitions: 2 });
  ctx.inputStream<string>().saveAsTextFiles('seen');
  let s: BatchScheduler | undefined;
  s = new BatchScheduler(ctx, {
    store,
    invoker: new InProcessInvoker({ pipeline: () => s!.pipeline, store }),
    sources: { input: source },
    clock: 'wall',
    backpressure: false,
    parallelRecovery: false,
    lease: false,
    retryBackoffMs: 1,
    batchRetry: { attempts: 5, backoffMs: 5 },
  });
  return s;
}

const generator = () => new GeneratorSource<string>({ ratePerSec: 20_000, generate: (seq) => `r${seq}` });

describe('input written during the interval (block generators)', () => {
  it('writes blocks during the interval, lists them per partition in the entry, and tasks read the lists', async () => {
    const store = new MemoryObjectStore();
    const s = driver(store, generator());
    await s.run({ numBatches: 6 });
    await s.stop();
    const all = await entries(store);
    // a 200 ms interval has cuts every 100 ms: a partition of a full batch is a list of blocks
    expect(all.some((e) => (e.streams.input!.partitionBlocks?.[0]?.length ?? 0) >= 2)).toBe(true);
    for (const e of all) {
      for (const blocks of e.streams.input!.partitionBlocks ?? [])
        for (const key of blocks)
          expect(key.startsWith(`inputs/${String(e.batchTimeMs).padStart(15, '0')}/`)).toBe(true);
    }
    const records = all.reduce((n, e) => n + e.streams.input!.records, 0);
    expect(records).toBeGreaterThan(0);
    // every record taken is in exactly one batch, in order: r0 .. r<position-1>
    const lines = await savedLines(store);
    const last = all.at(-1)!.streams.input!.position as number;
    expect(lines.length).toBe(records);
    expect(new Set(lines).size).toBe(lines.length);
    expect(new Set(lines)).toEqual(new Set(Array.from({ length: last }, (_, i) => `r${i}`)));
  });

  it('a driver that dies with unsealed blocks: they are deleted at restart and their records read again from the entry position, each once', async () => {
    const store = new MemoryObjectStore();
    const first = driver(store, generator());
    await first.run({ numBatches: 3 });
    // let cuts of the next interval be written, then stop without sealing them (as a crash would)
    await new Promise((r) => setTimeout(r, INTERVAL * 0.8));
    const sealedBefore = new Set(
      (await entries(store)).flatMap((e) => (e.streams.input!.partitionBlocks ?? []).flat()),
    );
    await first.stop();
    const orphans = (await store.list('inputs/')).filter((k) => !sealedBefore.has(k));
    expect(orphans.length).toBeGreaterThan(0);

    const second = driver(store, generator());
    await second.run({ numBatches: 3 });
    await second.stop();
    const keys = new Set(await store.list('inputs/'));
    const sealed = new Set(
      (await entries(store)).flatMap((e) => (e.streams.input!.partitionBlocks ?? []).flat()),
    );
    // the orphans are gone (garbage), and nothing listed is missing
    for (const k of orphans) expect(keys.has(k)).toBe(false);
    for (const k of sealed) expect(keys.has(k)).toBe(true);
    const all = await entries(store);
    const last = all.at(-1)!.streams.input!.position as number;
    const lines = await savedLines(store);
    expect(lines.length).toBe(all.reduce((n, e) => n + e.streams.input!.records, 0));
    expect(new Set(lines).size).toBe(lines.length);
    expect(new Set(lines)).toEqual(new Set(Array.from({ length: last }, (_, i) => `r${i}`)));
  });

  it('acknowledges a cut only once the entry listing its blocks is stored; a failed entry keeps the cuts for the retry', async () => {
    const inner = new MemoryObjectStore();
    let failEntries = 1;
    const events: string[] = [];
    const store: ObjectStore = Object.assign(Object.create(inner) as ObjectStore, {
      putIfAbsent: async (key: string, bytes: Uint8Array) => {
        if (key.endsWith('received.json')) {
          if (failEntries-- > 0) throw Object.assign(new Error('store unavailable'), { retryable: true });
          events.push(`entry ${JSON.stringify(decodeJson<ReceivedEntry>(bytes).streams.input?.records)}`);
        }
        return inner.putIfAbsent(key, bytes);
      },
    });
    let next = 0;
    const source: Source<string> = {
      continuous: true,
      async receive() {
        const records = [`m${next++}`, `m${next++}`];
        return { records, deadLetters: [], ackToken: records };
      },
      async ack(token) {
        events.push(`ack ${(token as string[]).join(',')}`);
      },
      describe: () => 'messages',
    };
    const s = driver(store, source);
    await s.run({ numBatches: 3 });
    await s.stop();
    // every ack comes after an entry, and every acked message is in the output exactly once
    expect(events[0]).toMatch(/^entry /);
    const acked = events.filter((e) => e.startsWith('ack ')).flatMap((e) => e.slice(4).split(','));
    const lines = await savedLines(inner);
    expect(acked.length).toBeGreaterThan(0);
    expect([...lines].sort()).toEqual([...acked].sort());
    expect(new Set(lines).size).toBe(lines.length);
  });

  it('a batch whose cuts hold no record takes the idle fast path: no block, no entry, no manifest; its position is kept in the idle span', async () => {
    const store = new MemoryObjectStore();
    // a continuous source that has records only when the test gives it some; its position is
    // the number of records handed out
    const continuousQueue = (buffer: string[], resumed: unknown[]): Source<string> => {
      let handedOut = 0;
      return {
        continuous: true,
        async receive(request) {
          if (request.resumeFrom !== undefined) {
            resumed.push(request.resumeFrom);
            handedOut = request.resumeFrom as number;
          }
          const records = buffer.splice(0, request.maxRecords ?? buffer.length);
          handedOut += records.length;
          return { records, deadLetters: [], position: handedOut };
        },
        describe: () => 'queue',
      };
    };
    const buffer = ['a', 'b', 'c'];
    const first = driver(store, continuousQueue(buffer, []));
    const quiet = await first.run({ numBatches: 8 });
    buffer.push('d', 'e'); // data again after the idle batches
    const busy = await first.run({ numBatches: 3 });
    buffer.push('f'); // never taken: the driver stops idle, 'f' is handed out to no batch
    await first.stop();
    const manifests = [...quiet, ...busy];
    const idle = manifests.filter((m) => (m as { idle?: boolean }).idle === true);
    const worked = manifests.filter((m) => (m as { idle?: boolean }).idle !== true);
    expect(idle.length).toBeGreaterThanOrEqual(5);
    expect(worked.reduce((n, m) => n + m.input.records, 0)).toBe(5);
    for (const m of worked) expect(m.input.records).toBeGreaterThan(0);
    // idle batches wrote nothing of their own: no block, no write-ahead entry, no manifest
    const keys = await store.list('');
    for (const m of idle) {
      const tk = String(m.batchTimeMs).padStart(15, '0');
      expect(keys.filter((k) => k.includes(tk) && !k.startsWith('idle/'))).toEqual([]);
    }
    expect(keys.some((k) => k.startsWith('idle/'))).toBe(true);
    // no empty block object anywhere: every input block holds records and an entry lists it
    const listed = new Set(
      (await entries(store)).flatMap((e) => (e.streams.input!.partitionBlocks ?? []).flat()),
    );
    const blocks = keys.filter((k) => k.startsWith('inputs/'));
    expect(blocks.length).toBeGreaterThan(0);
    for (const k of blocks) {
      expect(listed.has(k)).toBe(true);
      expect(decodeBlock((await store.get(k))!).length).toBeGreaterThan(0);
    }
    expect((await savedLines(store)).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);

    // a restart carries on from the position the last idle span kept (after 'e', before 'f')
    const resumed: unknown[] = [];
    const second = driver(store, continuousQueue(['f'], resumed));
    await second.run({ numBatches: 2 });
    await second.stop();
    expect(resumed).toEqual([5]);
  });

  it('cuts fall in the middle of block slots: every batch gets the same number of cuts, also with timers up to half a slot late', () => {
    const zero = 1_000_000;
    for (const interval of [100, 200, 300, 500, 1000, 1500, 2000, 60_000]) {
      const every = blockIntervalMs(interval);
      expect(every).toBeLessThanOrEqual(200);
      const n = cutsPerInterval(interval);
      expect(n).toBeGreaterThanOrEqual(2);
      // the batch a cut at time x is keyed by: (t - interval, t]
      const batchOf = (x: number) => zero + (Math.floor((x - zero) / interval) + 1) * interval;
      const perBatch = new Map<number, number>();
      let now = zero - 3; // a driver starting just before the zero time
      for (let i = 0; i < 10 * n; i++) {
        const at = nextCutAtMs(now, zero, interval);
        expect(at).toBeGreaterThan(now);
        // a timer late by up to half a slot still keys the cut to the same batch
        const late = at + every / 2 - 0.001;
        expect(batchOf(late)).toBe(batchOf(at));
        perBatch.set(batchOf(at), (perBatch.get(batchOf(at)) ?? 0) + 1);
        now = late;
      }
      expect(new Set(perBatch.values())).toEqual(new Set([n]));
    }
  });
});

describe('block generator cuts (BlockGenerator, clock set by the test)', () => {
  const interval = 1000;
  const zero = 1_000_000;
  // a source that has whatever the test pushed since the last take
  function pushSource() {
    let queue: string[] = [];
    let position = 0;
    const source: Source<unknown> = {
      continuous: true,
      async receive(r) {
        const n = Math.min(queue.length, r.maxRecords ?? queue.length);
        const records = queue.slice(0, n);
        queue = queue.slice(n);
        position += n;
        return { records, deadLetters: [], position };
      },
      describe: () => 'push',
    };
    return { source, push: (...lines: string[]) => queue.push(...lines) };
  }
  function generator(source: Source<unknown>, startAtMs = zero + 1, openFromMs?: number) {
    vi.setSystemTime(startAtMs); // started in the first interval unless told
    const puts: string[] = [];
    const g = new BlockGenerator({
      stream: 'input',
      partitions: 2,
      source,
      put: async (key) => {
        puts.push(key);
      },
      zeroTimeMs: zero,
      batchIntervalMs: interval,
      ...(openFromMs !== undefined ? { openFromMs } : {}),
    });
    return { g, puts };
  }
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a slow stream writes one block per partition per batch: early cuts under MIN_EARLY_CUT_RECORDS carry to the last', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { source, push } = pushSource();
    const { g, puts } = generator(source);
    const t = zero + interval;
    for (const slot of [0, 1, 2, 3, 4]) {
      vi.setSystemTime(zero + (slot + 0.5) * (interval / 5));
      push(`a${slot}`, `b${slot}`);
      await g.cut();
      // only the last cut of the interval writes (4 of 5 carried)
      expect(puts.length).toBe(slot < 4 ? 0 : 2);
    }
    const taken = await g.take(t);
    expect(taken.records).toBe(10);
    expect(taken.partitionBlocks.map((b) => b.length)).toEqual([1, 1]);
    expect(MIN_EARLY_CUT_RECORDS).toBeGreaterThan(10);
  });

  it('a batch closing after an interval with no last cut (a busy driver) cuts for itself, and a late timer cut goes to the interval it was meant for: no empty batch, records in order', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { source, push } = pushSource();
    const { g } = generator(source);
    const t1 = zero + interval;
    const t2 = t1 + interval;
    const t3 = t2 + interval;
    // interval 1: one early cut (carried), then the driver is busy past the interval's end
    vi.setSystemTime(zero + 100);
    push('r1', 'r2');
    await g.cut();
    vi.setSystemTime(t1 + 30);
    push('r3');
    const first = await g.take(t1);
    expect(first.records).toBe(3); // the closing cut took the carry and what came since
    g.commit(first);
    // interval 2 passes with no cut at all; the timer fires late, inside interval 3
    push('r4', 'r5');
    vi.setSystemTime(t2 + 60);
    await g.cut();
    vi.setSystemTime(t2 + 80);
    push('r6');
    const second = await g.take(t2);
    expect(second.records).toBe(2); // the late cut went to interval 2, not 3
    g.commit(second);
    vi.setSystemTime(t3 - 10);
    await g.cut();
    const third = await g.take(t3);
    expect(third.records).toBe(1);
  });

  it('a boundary that passes while the driver starts: the first batch (openFromMs) still gets the records read at start, not the next', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t1 = zero + interval;
    for (const [openFromMs, expected] of [
      [t1, 2],
      [undefined, 0], // without it: an earlier batch (a restart's catch-up) stays empty
    ] as const) {
      const { source, push } = pushSource();
      // the driver began in interval 1; its sources started just after the boundary
      const { g } = generator(source, t1 + 5, openFromMs);
      push('r1', 'r2');
      vi.setSystemTime(t1 + 10);
      const first = await g.take(t1);
      expect(first.records).toBe(expected);
      g.commit(first);
      vi.setSystemTime(t1 + interval - 10);
      const second = await g.take(t1 + interval);
      expect(first.records + second.records).toBe(2);
    }
  });
});

describe('lines blocks (encodeBlock)', () => {
  it('strings round-trip whatever newlines they hold: a lines block only when none does', () => {
    const piece = fc.constantFrom('', 'a', 'b c', '\n', '\r\n', '\r', 'é', '😀', '\u2028');
    const record = fc.array(piece, { maxLength: 4 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 30 }), (records) => {
        const block = encodeBlock(records);
        expect(decodeBlock(block)).toEqual(records);
        const lines = records.every((r) => !r.includes('\n'));
        expect(block[0] === 2).toBe(lines); // format byte 2: UTF-8 lines
      }),
      { numRuns: 500 },
    );
  });
});
