/**
 * The same code on history: `runBatch` runs a pipeline module's graph over a bounded dataset,
 * either as one batch or as a sequence of batches cut by a time field of the records, with the
 * real driver (manual clock) into a store, so a pipeline written for the stream also backfills.
 */
import { availableParallelism } from 'node:os';
import { StreamingContext } from './core/context.ts';
import type { BatchManifest } from './core/driver.ts';
import { layout } from './core/layout.ts';
import { ConfigError } from './errors.ts';
import { loadPipeline } from './local/load-pipeline.ts';
import { MemoryObjectStore } from './local/memory-store.ts';
import type { ObjectStore } from './ports/object-store.ts';
import type { DeadLetter, Source } from './ports/source.ts';
import { inProcessScheduler } from './testing.ts';

export interface RunBatchOptions {
  /**
   * Cut the records into batches by this field (epoch ms or an ISO time): a record with time `ts`
   * goes to the batch whose interval [t - interval, t) holds it. Without it: one batch.
   */
  readonly timeField?: string;
  /** Batch interval (default: the module's options, else 1 s). */
  readonly batchIntervalMs?: number;
  readonly partitions?: number;
  /** Where to write (default: a new in-memory store). Must not hold another run. */
  readonly store?: ObjectStore;
  /** Where `print()` writes (default: standard output). */
  readonly printer?: (text: string) => void;
  readonly onBatch?: (manifest: BatchManifest) => void;
}

export interface RunBatchResult {
  readonly store: ObjectStore;
  readonly manifests: BatchManifest[];
  /** Batch times, oldest first. */
  readonly batchTimes: number[];
  /** Records without a usable time field (written to the first batch's dead letters). */
  readonly untimed: number;
}

function timeOf(record: unknown, field: string): number | undefined {
  if (typeof record !== 'object' || record === null) return undefined;
  const v = (record as Record<string, unknown>)[field];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string') {
    const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/**
 * Runs a pipeline (a module path or a build function) over `records` (or, by input name,
 * `{ input: records, ... }`). Outputs land in the store as in a streaming run
 * (`outputs/<prefix>-<t>/`), `print()` prints, stateful streams carry state from batch to batch.
 */
export async function runBatch(
  pipeline: string | ((ctx: StreamingContext) => void | Promise<void>),
  records: readonly unknown[] | Readonly<Record<string, readonly unknown[]>>,
  options: RunBatchOptions = {},
): Promise<RunBatchResult> {
  let ctx: StreamingContext;
  if (typeof pipeline === 'string') {
    ctx = (
      await loadPipeline(pipeline, {
        batchIntervalMs: options.batchIntervalMs,
        partitions: options.partitions,
        printer: options.printer,
      })
    ).ctx;
  } else {
    ctx = new StreamingContext({
      batchIntervalMs: options.batchIntervalMs ?? 1000,
      partitions: options.partitions ?? 2,
      printer: options.printer,
    });
    await pipeline(ctx);
    ctx.graph.freeze();
  }
  const bindings = [...ctx.graph.inputs.values()];
  const byName: Record<string, readonly unknown[]> = Array.isArray(records)
    ? (() => {
        const unbound = bindings.filter((b) => !b.factory);
        if (unbound.length !== 1) {
          throw new ConfigError(
            'input',
            `the pipeline has ${unbound.length} inputStream()s (${unbound.map((b) => b.name).join(', ') || 'none'}); pass the records by input name`,
          );
        }
        return { [unbound[0]!.name]: records };
      })()
    : (records as Readonly<Record<string, readonly unknown[]>>);
  for (const name of Object.keys(byName)) {
    if (!bindings.some((b) => b.name === name)) {
      throw new ConfigError(
        'input',
        `the pipeline has no input stream '${name}' (it has: ${bindings.map((b) => b.name).join(', ')})`,
      );
    }
  }
  const interval = ctx.batchIntervalMs;
  // cut each input into batches: index 0 is the batch at zero + interval
  let zero = 0;
  const batchesOf = new Map<string, { batches: unknown[][]; deadLetters: DeadLetter[] }>();
  let count = 1;
  let untimed = 0;
  if (options.timeField) {
    const field = options.timeField;
    let min = Number.POSITIVE_INFINITY;
    for (const list of Object.values(byName))
      for (const r of list) {
        const t = timeOf(r, field);
        if (t !== undefined) min = Math.min(min, t);
      }
    if (!Number.isFinite(min)) {
      throw new ConfigError('timeField', `no record has a numeric or ISO time in field '${field}'`);
    }
    zero = Math.floor(min / interval) * interval;
    for (const [name, list] of Object.entries(byName)) {
      const entry = { batches: [] as unknown[][], deadLetters: [] as DeadLetter[] };
      for (const r of list) {
        const t = timeOf(r, field);
        if (t === undefined) {
          untimed++;
          entry.deadLetters.push({
            raw: JSON.stringify(r) ?? String(r),
            reason: `no time in field '${field}'`,
          });
          continue;
        }
        const i = Math.floor(t / interval) - Math.floor(min / interval);
        (entry.batches[i] ??= []).push(r);
      }
      count = Math.max(count, entry.batches.length);
      batchesOf.set(name, entry);
    }
  } else {
    for (const [name, list] of Object.entries(byName))
      batchesOf.set(name, { batches: [[...list]], deadLetters: [] });
  }
  const sources: Record<string, Source<unknown>> = {};
  for (const binding of bindings) {
    if (binding.factory && !byName[binding.name]) continue;
    const entry = batchesOf.get(binding.name) ?? { batches: [], deadLetters: [] };
    let next = 0;
    sources[binding.name] = {
      async receive() {
        const i = next++;
        return { records: entry.batches[i] ?? [], deadLetters: i === 0 ? entry.deadLetters : [] };
      },
      exhausted: () => next >= count,
      describe: () => `dataset '${binding.name}'`,
    };
  }
  const store = options.store ?? new MemoryObjectStore();
  if ((await store.list(layout.manifestsPrefix())).length > 0) {
    throw new ConfigError(
      'store',
      `${store.describe()} already holds committed batches; write into a new store`,
    );
  }
  const scheduler = inProcessScheduler(ctx, {
    store,
    sources,
    zeroTimeMs: zero,
    concurrency: Math.max(2, availableParallelism()),
    // a backfill keeps its input for as long as it runs, whatever the time field spans
    retainInputsMs: Math.max(3_600_000, (count + 2) * interval),
    onBatch: options.onBatch,
  });
  try {
    const manifests = await scheduler.run({ numBatches: count });
    return { store, manifests, batchTimes: manifests.map((m) => m.batchTimeMs), untimed };
  } finally {
    await scheduler.stop();
  }
}
