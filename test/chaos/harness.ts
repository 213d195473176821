/**
 * Runs a pipeline on the embedded runner under a fault schedule, the way an operator would live
 * through it: when the driver dies, a new driver takes over the same store and carries on.
 */

import {
  DriverCrashError,
  emptyFaultCounts,
  type FaultCounts,
  type FaultOptions,
} from '../../shared/core/faults.ts';
import { idleManifestOf } from '../../shared/core/idle-path.ts';
import { idleBatchTimes, listIdleSpans } from '../../shared/core/idle-span.ts';
import { LeaseHeldError, LeaseLostError } from '../../shared/core/lease.ts';
import {
  arraySource,
  type BatchManifest,
  StreamingContext as Context,
  inProcessScheduler,
  isTransientFailure,
  MemoryObjectStore,
  type StreamingContext,
} from '../../shared/engine.ts';
import { batchDirOf } from '../output-keys.ts';

export interface ChaosRun {
  readonly store: MemoryObjectStore;
  readonly manifests: Map<number, BatchManifest>;
  /** print() output per batch time (a re-run batch prints again; the text must be the same). */
  readonly printed: Map<string, string>;
  readonly faults: FaultCounts;
  readonly incarnations: number;
  readonly conflicts: string[];
}

export async function runWithFaults(
  build: (ctx: StreamingContext) => void,
  inputs: Record<string, readonly (readonly unknown[])[]>,
  options: {
    faults?: FaultOptions;
    numBatches: number;
    partitions?: number;
    store?: MemoryObjectStore;
    speculation?: { minRuntimeMs?: number; multiplier?: number; quantile?: number; enabled?: boolean };
  },
): Promise<ChaosRun> {
  const store = options.store ?? new MemoryObjectStore();
  const manifests = new Map<number, BatchManifest>();
  const printed = new Map<string, string>();
  const conflicts: string[] = [];
  const faults = emptyFaultCounts();
  let incarnation = 0;
  for (;;) {
    const printsPerBatch = new Map<number, number>();
    const ctx = new Context({
      batchIntervalMs: 1000,
      partitions: options.partitions ?? 2,
      printer: (text) => {
        // one pipeline may print several streams per batch: key by time and order within it
        const t = Number(/Time: (\d+) ms/.exec(text)?.[1]);
        const n = printsPerBatch.get(t) ?? 0;
        printsPerBatch.set(t, n + 1);
        const time = `${String(t).padStart(8, '0')}#${n}`;
        const before = printed.get(time);
        if (before !== undefined && before !== text)
          conflicts.push(`batch ${time} printed differently when re-run`);
        printed.set(time, text);
      },
    });
    build(ctx);
    const sources = Object.fromEntries(
      Object.entries(inputs).map(([name, batches]) => [name, arraySource(batches)]),
    );
    const scheduler = inProcessScheduler(ctx, {
      store,
      concurrency: 4,
      sources,
      faults: options.faults,
      incarnation,
      speculation: options.speculation ?? { minRuntimeMs: 5 },
      lease: { owner: 'chaos-driver' },
      // a batch that failed transiently (a store time-out) is run again at once
      batchRetry: { attempts: 5, backoffMs: 2 },
      // a batch run again prints again: count its prints afresh
      log: (e) => {
        if (e.event === 'batch.retry') printsPerBatch.clear();
      },
    });
    try {
      await scheduler.start();
      const left = options.numBatches - manifests.size;
      if (left <= 0) break;
      for (const m of await scheduler.run({ numBatches: left })) manifests.set(m.batchTimeMs, m);
      addCounts(faults, scheduler.faults?.counts);
      break;
    } catch (err) {
      addCounts(faults, scheduler.faults?.counts);
      // a driver crash, or a transient failure while starting (slowStore time-out): an operator
      // restarts the driver, which takes over the same store
      if (!(err instanceof DriverCrashError) && !isTransientFailure(err)) throw err;
      // the driver died; what it committed is in the store
      for (const key of await store.list('manifests/')) {
        const m = JSON.parse(Buffer.from((await store.get(key))!).toString()) as BatchManifest;
        manifests.set(m.batchTimeMs, m);
      }
      await addIdle(store, manifests);
      incarnation++;
      if (incarnation > 100) throw new Error('the driver crashed more than 100 times');
    }
  }
  return { store, manifests, printed, faults, incarnations: incarnation + 1, conflicts };
}

/** Idle batches (issue 11) are committed in idle spans: they count as committed (empty) batches. */
async function addIdle(store: MemoryObjectStore, manifests: Map<number, BatchManifest>): Promise<void> {
  const meta = await store.get('meta/graph.json');
  if (!meta) return;
  const { batchIntervalMs, fingerprint } = JSON.parse(Buffer.from(meta).toString()) as {
    batchIntervalMs: number;
    fingerprint: string;
  };
  for (const t of idleBatchTimes(await listIdleSpans(store), batchIntervalMs)) {
    if (!manifests.has(t)) manifests.set(t, idleManifestOf(t, fingerprint));
  }
}

function addCounts(into: FaultCounts, from: FaultCounts | undefined): void {
  if (!from) return;
  for (const k of Object.keys(into) as (keyof FaultCounts)[]) into[k] += from[k];
}

/** Every saved output, by directory, as sorted JSON lines. */
export async function savedOutputs(store: MemoryObjectStore): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const key of await store.list('outputs/')) {
    if (key.endsWith('_SUCCESS') || key.endsWith('.lineage.json')) continue;
    const dir = batchDirOf(key);
    const lines = Buffer.from((await store.get(key))!)
      .toString()
      .split('\n')
      .filter(Boolean);
    out[dir] = [...(out[dir] ?? []), ...lines].sort();
  }
  return out;
}

/** Every batch's committed output as a user sees it: saved files, printed text, batch times. */
export async function observable(run: ChaosRun) {
  return {
    saved: await savedOutputs(run.store),
    printed: Object.fromEntries([...run.printed.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
    batches: [...run.manifests.keys()].sort((a, b) => a - b),
    records: [...run.manifests.values()].reduce((n, m) => n + m.input.records, 0),
  };
}

/** What happened to the drivers of runRacingDrivers. */
export interface RaceRun extends ChaosRun {
  /** Drivers that lost their lease to another one and stopped (LeaseLostError). */
  readonly fenced: number;
  /** Starts refused because another driver held the lease (LeaseHeldError). */
  readonly refused: number;
}

/**
 * Several operators, each restarting its own driver on one store whenever it dies, is fenced or
 * finds the lease taken, until `numBatches` batches are committed: drivers race for the lease,
 * and with `longBatch` a driver stalls past its lease while another one takes over. Each driver
 * reads the same input with its own source, resuming from the positions in the store.
 */
export async function runRacingDrivers(
  build: (ctx: StreamingContext) => void,
  inputs: Record<string, readonly (readonly unknown[])[]>,
  options: {
    drivers: number;
    faults?: FaultOptions;
    numBatches: number;
    leaseMs: number;
    store?: MemoryObjectStore;
  },
): Promise<RaceRun> {
  const store = options.store ?? new MemoryObjectStore();
  const printed = new Map<string, string>();
  const conflicts: string[] = [];
  const faults = emptyFaultCounts();
  let incarnations = 0;
  let fenced = 0;
  let refused = 0;
  // idle batches (issue 11) are committed in idle spans, without manifests of their own
  const committed = async () => {
    const times = new Set((await store.list('manifests/')).map((k) => k));
    const meta = await store.get('meta/graph.json');
    const interval = meta
      ? (JSON.parse(Buffer.from(meta).toString()) as { batchIntervalMs: number }).batchIntervalMs
      : 0;
    const idle = interval ? idleBatchTimes(await listIdleSpans(store), interval).length : 0;
    return times.size + idle;
  };
  const operator = async (id: number) => {
    for (let life = 0; (await committed()) < options.numBatches; life++) {
      if (life > 400) throw new Error(`driver ${id} restarted more than 400 times`);
      const printsPerBatch = new Map<number, number>();
      const ctx = new Context({
        batchIntervalMs: 1000,
        partitions: 2,
        printer: (text) => {
          const t = Number(/Time: (\d+) ms/.exec(text)?.[1]);
          const n = printsPerBatch.get(t) ?? 0;
          printsPerBatch.set(t, n + 1);
          const time = `${String(t).padStart(8, '0')}#${n}`;
          const before = printed.get(time);
          if (before !== undefined && before !== text)
            conflicts.push(`batch ${time} printed differently by another driver`);
          printed.set(time, text);
        },
      });
      build(ctx);
      const sources = Object.fromEntries(
        Object.entries(inputs).map(([name, batches]) => [name, arraySource(batches)]),
      );
      const scheduler = inProcessScheduler(ctx, {
        store,
        concurrency: 2,
        sources,
        faults: options.faults,
        // each life its own schedule of long batches and crashes
        incarnation: id * 1000 + life,
        speculation: { minRuntimeMs: 5 },
        lease: { owner: `driver-${id}`, durationMs: options.leaseMs, skewMs: 0 },
      });
      try {
        await scheduler.start();
        incarnations++;
        await scheduler.run({ numBatches: options.numBatches - (await committed()) });
        await scheduler.stop();
      } catch (err) {
        await scheduler.stop().catch(() => {});
        if (err instanceof LeaseHeldError) {
          refused++;
          await new Promise((r) => setTimeout(r, options.leaseMs / 4));
        } else if (err instanceof LeaseLostError) fenced++;
        else if (!(err instanceof DriverCrashError)) throw err;
      } finally {
        addCounts(faults, scheduler.faults?.counts);
      }
    }
  };
  await Promise.all(Array.from({ length: options.drivers }, (_, i) => operator(i)));
  const manifests = new Map<number, BatchManifest>();
  for (const key of await store.list('manifests/')) {
    const m = JSON.parse(Buffer.from((await store.get(key))!).toString()) as BatchManifest;
    manifests.set(m.batchTimeMs, m);
  }
  await addIdle(store, manifests);
  return { store, manifests, printed, faults, incarnations, conflicts, fenced, refused };
}
