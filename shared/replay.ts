/**
 * Replay: re-run a pipeline (the same one or a changed one) over the retained input of a past
 * range of another store, into a new store, with the same exactly-once commits.
 *
 * The new store is laid over the original (`ReplayOverlayStore`): the original's input blocks
 * and write-ahead entries of the range are visible in it, no manifest is, so to the driver the
 * range looks like batches received but not committed, and it re-runs them as a backlog, in
 * parallel where their dependencies allow (the resume path after a crash). The original is
 * wrapped read-only: nothing is ever written to it.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { catalog } from './core/catalog.ts';
import { decodeJson } from './core/codec.ts';
import { StreamingContext } from './core/context.ts';
import { type BatchManifest, BatchScheduler, type GraphMeta, type ReceivedEntry } from './core/driver.ts';
import { idleBatchTimes, listIdleSpans } from './core/idle-span.ts';
import { layout } from './core/layout.ts';
import { ConfigError, SluiceError } from './errors.ts';
import { DirectoryObjectStore } from './local/directory-store.ts';
import { InProcessInvoker } from './local/in-process-invoker.ts';
import { loadPipeline } from './local/load-pipeline.ts';
import { ReadOnlyObjectStore, ReplayOverlayStore } from './local/overlay-store.ts';
import { WorkerPoolInvoker } from './local/worker-pool.ts';
import type { Invoker } from './ports/invoker.ts';
import type { ObjectStore } from './ports/object-store.ts';
import type { Source } from './ports/source.ts';

/** A range of batches of the original whose input is gone. */
export interface RemovedRange {
  readonly fromMs: number;
  readonly toMs: number;
  readonly batches: number;
}

export interface ReplayPlan {
  /** The original's meta/graph.json. */
  readonly original: GraphMeta;
  /**
   * Batch times to replay, oldest first: those whose input blocks and write-ahead entry are
   * present, and the empty batches of the original's idle spans between them (issue 11).
   */
  readonly times: readonly number[];
  /** The times of `times` inside an idle span of the original: replayed as empty batches. */
  readonly idle: readonly number[];
  /** Zero time of the new store: the original's, or the batch before the first replayed one. */
  readonly zeroTimeMs: number;
  /** Committed batches of the range whose input retention already removed, as ranges. */
  readonly removed: readonly RemovedRange[];
  /** Batches with input skipped so that windows keep the original's alignment. */
  readonly skippedForAlignment: readonly number[];
  readonly fromMs: number;
  readonly toMs: number;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Consecutive batch times (one interval apart) as ranges. */
function toRanges(times: readonly number[], interval: number): RemovedRange[] {
  const out: RemovedRange[] = [];
  for (const t of times) {
    const last = out[out.length - 1];
    if (last && t === last.toMs + interval)
      out[out.length - 1] = { ...last, toMs: t, batches: last.batches + 1 };
    else out.push({ fromMs: t, toMs: t, batches: 1 });
  }
  return out;
}

/**
 * What a replay of [fromMs, toMs] of `original` will run: the batches whose input is retained,
 * the ranges whose input retention removed (never skipped silently: the caller reports them), and
 * the zero time of the new store. `slideMs` are the slides of the replayed pipeline's streams.
 */
export async function planReplay(
  original: ObjectStore,
  options: { fromMs?: number; toMs?: number; slidesMs?: readonly number[] } = {},
): Promise<ReplayPlan> {
  const metaBytes = await original.get(layout.graph());
  if (!metaBytes) {
    throw new ConfigError(
      'store',
      `${original.describe()} is not a Sluice store (${layout.graph()} is missing); name the store the pipeline ran in`,
    );
  }
  const meta = decodeJson<GraphMeta>(metaBytes);
  const interval = meta.batchIntervalMs;
  const fromMs = options.fromMs ?? Number.NEGATIVE_INFINITY;
  const toMs = options.toMs ?? Number.POSITIVE_INFINITY;
  if (fromMs > toMs) throw new ConfigError('from', `--from (${fromMs}) is after --to (${toMs})`);
  const inRange = (t: number) => t >= fromMs && t <= toMs;
  const received = await catalog.received(original);
  // batches with a manifest: an idle batch (issue 11) stored no input for retention to remove
  const committed = await catalog.manifests(original);
  const retained = new Set(received);
  // idle spans (issue 11) are committed empty batches: no gap, replayed as batches without input
  const idle = new Set(idleBatchTimes(await listIdleSpans(original), interval).filter(inRange));
  let times = [...received.filter(inRange), ...[...idle].filter((t) => !retained.has(t))].sort(
    (a, b) => a - b,
  );
  const removed = toRanges(
    committed.filter((t) => inRange(t) && !retained.has(t)),
    interval,
  );
  // A gap inside the range (batches never received) would leave the state across it undefined:
  // only the last run of consecutive batches is replayed, the rest is reported as skipped.
  const skipped: number[] = [];
  let cut = 0;
  for (let i = 1; i < times.length; i++) if (times[i]! - times[i - 1]! !== interval) cut = i;
  skipped.push(...times.slice(0, cut).filter((t) => !idle.has(t)));
  times = times.slice(cut);
  // State and windows start empty at the first replayed batch unless the replay starts at the
  // original's first batch: the new zero time is the batch before it, moved forward (skipping
  // batches) until every window still slides at the original's times.
  // both lists are sorted; no spread (a week of 1 s batches is 600,000 entries)
  const first = Math.min(committed[0] ?? Number.POSITIVE_INFINITY, received[0] ?? Number.POSITIVE_INFINITY);
  let zero = meta.zeroTimeMs;
  if (times.length > 0 && times[0]! > first) {
    const slides = [interval, ...(options.slidesMs ?? [])];
    const lcm = slides.reduce((a, b) => (a / gcd(a, b)) * b, interval);
    while (times.length > 0 && (times[0]! - interval - meta.zeroTimeMs) % lcm !== 0) {
      const t = times.shift()!;
      if (!idle.has(t)) skipped.push(t);
    }
    if (times.length > 0) zero = times[0]! - interval;
  }
  // idle batches after the last batch with input have nothing to run (nor does an all-idle range)
  while (times.length > 0 && idle.has(times.at(-1)!)) times.pop();
  return {
    original: meta,
    times,
    idle: times.filter((t) => idle.has(t)),
    zeroTimeMs: zero,
    removed,
    skippedForAlignment: skipped.sort((a, b) => a - b),
    fromMs,
    toMs,
  };
}

/** The plan's times as runs of batches with input and runs of idle batches, in order. */
function segmentsOf(plan: ReplayPlan): { fromMs: number; toMs: number; idle: boolean }[] {
  const idle = new Set(plan.idle);
  const out: { fromMs: number; toMs: number; idle: boolean }[] = [];
  for (const t of plan.times) {
    const last = out.at(-1);
    if (last && last.idle === idle.has(t)) last.toMs = t;
    else out.push({ fromMs: t, toMs: t, idle: idle.has(t) });
  }
  return out;
}

/** Describes removed input for people: "inputs for 12:00:00.000–12:10:00.000 (600 batches) ...". */
export function describeRemoved(plan: ReplayPlan, retainInputsMs?: number): string[] {
  const iso = (t: number) => new Date(t).toISOString();
  const hint = retainInputsMs
    ? `retainInputsMs=${retainInputsMs} ms`
    : 'the original run kept inputs for its retainInputsMs (--retain-inputs, 1h by default)';
  return plan.removed.map(
    (r) =>
      `inputs for ${iso(r.fromMs)}–${iso(r.toMs)} (${r.batches} batch${r.batches === 1 ? '' : 'es'}, ${r.fromMs}–${r.toMs}) were removed by retention (${hint}); those batches are not replayed`,
  );
}

/** A source that has nothing: replay reads only stored input. */
function storedInputOnly(name: string): Source<unknown> {
  return {
    async receive() {
      return { records: [], deadLetters: [] };
    },
    exhausted: () => true,
    describe: () => `stored input of '${name}' (replay)`,
  };
}

export interface ReplayOptions {
  /** The store the pipeline ran in. Opened read-only. */
  readonly original: ObjectStore;
  /** The new store (a directory or S3 prefix of its own). */
  readonly into: ObjectStore;
  /** A pipeline module path (tasks on worker threads when both stores are directories) or a build function. */
  readonly pipeline: string | ((ctx: StreamingContext) => void | Promise<void>);
  readonly fromMs?: number;
  readonly toMs?: number;
  /** Worker threads for a module path with directory stores (default: one per core; 0: in this thread). */
  readonly workers?: number;
  /** Batches run together as one backlog (default 16). */
  readonly backlog?: number;
  readonly printer?: (text: string) => void;
  readonly onBatch?: (manifest: BatchManifest) => void;
  readonly log?: (event: Record<string, unknown>) => void;
  /** Called once the plan is known, before any batch runs (to report removed input). */
  readonly onPlan?: (plan: ReplayPlan) => void;
}

export interface ReplayResult {
  readonly plan: ReplayPlan;
  readonly manifests: BatchManifest[];
  /** Meta of the new store. */
  readonly meta: GraphMeta;
}

/** Re-runs a pipeline over the retained input of a past range of `original`, into `into`. */
export async function replay(options: ReplayOptions): Promise<ReplayResult> {
  const same =
    options.original.describe() === options.into.describe() && options.into.describe() !== 'memory';
  if (options.original === options.into || same) {
    throw new ConfigError(
      'into',
      `the new store must not be the original store (${options.into.describe()})`,
    );
  }
  const original = new ReadOnlyObjectStore(options.original);
  const meta0 = await original.get(layout.graph());
  if (!meta0) await planReplay(original); // throws the message naming the store
  const originalMeta = decodeJson<GraphMeta>(meta0!);
  // the replayed pipeline runs at the original's interval and input partitions
  let ctx: StreamingContext;
  let modulePath: string | undefined;
  if (typeof options.pipeline === 'string') {
    modulePath = path.resolve(options.pipeline);
    ctx = (
      await loadPipeline(modulePath, {
        batchIntervalMs: originalMeta.batchIntervalMs,
        partitions: originalMeta.partitions,
        printer: options.printer,
      })
    ).ctx;
  } else {
    ctx = new StreamingContext({
      batchIntervalMs: originalMeta.batchIntervalMs,
      partitions: originalMeta.partitions,
      printer: options.printer,
    });
    await options.pipeline(ctx);
    ctx.graph.freeze();
  }
  const plan = await planReplay(original, {
    fromMs: options.fromMs,
    toMs: options.toMs,
    slidesMs: ctx.graph.streams.map((s) => s.slideMs),
  });
  options.onPlan?.(plan);
  if (plan.times.length === 0) {
    throw new SluiceError(
      `nothing to replay: ${original.describe()} holds no retained input${
        Number.isFinite(plan.fromMs) || Number.isFinite(plan.toMs)
          ? ` between ${plan.fromMs} and ${plan.toMs}`
          : ''
      }${plan.removed.length ? ` (${describeRemoved(plan).join('; ')})` : ''}`,
    );
  }
  // every input of the replayed pipeline must have stored blocks in the original, with as many partitions
  const idleTimes = new Set(plan.idle);
  const entryBytes = await original.get(layout.received(plan.times.find((t) => !idleTimes.has(t))!));
  const entry = decodeJson<ReceivedEntry>(entryBytes!);
  for (const binding of ctx.graph.inputs.values()) {
    const stored = entry.streams[binding.name];
    if (!stored) {
      throw new ConfigError(
        'pipeline',
        `input stream '${binding.name}' of the replayed pipeline has no stored input in ${original.describe()} (it holds: ${Object.keys(entry.streams).join(', ') || 'none'}); name the inputs as the original did`,
      );
    }
    if (stored.blocks !== binding.partitions) {
      throw new ConfigError(
        'pipeline',
        `input stream '${binding.name}' has ${binding.partitions} partitions, the original stored ${stored.blocks} blocks per batch; use ${stored.blocks}`,
      );
    }
  }
  const existing = await options.into.get(layout.graph());
  if (existing) {
    const m = decodeJson<GraphMeta>(existing);
    if (m.zeroTimeMs !== plan.zeroTimeMs) {
      throw new ConfigError(
        'into',
        `${options.into.describe()} already holds another run (zero time ${m.zeroTimeMs}, this replay needs ${plan.zeroTimeMs}); name a new directory`,
      );
    }
  }
  const last = plan.times[plan.times.length - 1]!;
  const store = new ReplayOverlayStore({
    original,
    target: options.into,
    fromMs: plan.times[0]!,
    toMs: last,
  });
  const sources: Record<string, Source<unknown>> = {};
  for (const binding of ctx.graph.inputs.values()) sources[binding.name] = storedInputOnly(binding.name);
  let scheduler: BatchScheduler | undefined;
  const useWorkers =
    modulePath !== undefined &&
    options.workers !== 0 &&
    options.original instanceof DirectoryObjectStore &&
    options.into instanceof DirectoryObjectStore;
  const invoker: Invoker = useWorkers
    ? new WorkerPoolInvoker({
        pipelineModule: modulePath!,
        storeDir: (options.into as DirectoryObjectStore).root,
        batchIntervalMs: ctx.batchIntervalMs,
        partitions: ctx.defaultPartitions,
        workers: options.workers,
        overlay: {
          originalDir: (options.original as DirectoryObjectStore).root,
          fromMs: plan.times[0]!,
          toMs: last,
        },
      })
    : new InProcessInvoker({
        pipeline: () => scheduler!.pipeline,
        store,
        concurrency: Math.max(2, availableParallelism()),
      });
  const manifests: BatchManifest[] = [];
  // one driver per run of batches with input and per idle span between them (issue 11): the
  // driver re-runs the batches its store shows as received first, so each one sees only its own
  // run's write-ahead entries; across a span it closes empty batches (the idle fast path where
  // the replayed pipeline allows it), which windows and state reaching back read as empty
  try {
    if (invoker instanceof WorkerPoolInvoker) await invoker.ready();
    for (const segment of segmentsOf(plan)) {
      scheduler = new BatchScheduler(ctx, {
        store: segment.idle
          ? options.into
          : new ReplayOverlayStore({
              original,
              target: options.into,
              fromMs: segment.fromMs,
              toMs: segment.toMs,
            }),
        invoker,
        sources,
        clock: 'manual',
        zeroTimeMs: plan.zeroTimeMs,
        // keep the replayed range's input visible for recovery while the replay runs
        retainInputsMs: Math.max(3_600_000, last - plan.times[0]! + 2 * ctx.batchIntervalMs),
        onBatch: options.onBatch,
        log: options.log,
      });
      try {
        await scheduler.start();
        const chunk = options.backlog ?? 16;
        while (scheduler.nextBatchTimeMs <= segment.toMs) {
          const ran = await scheduler.run({ numBatches: chunk, untilMs: segment.toMs });
          if (ran.length === 0) break;
          manifests.push(...ran);
        }
      } finally {
        await scheduler.stop();
      }
    }
  } finally {
    await invoker.close();
  }
  const meta = decodeJson<GraphMeta>((await options.into.get(layout.graph()))!);
  return { plan, manifests, meta };
}
