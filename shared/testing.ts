import type { StreamingContext } from './core/context.ts';
import { StreamingContext as Context } from './core/context.ts';
import { type BatchManifest, BatchScheduler, type BatchSchedulerOptions } from './core/driver.ts';
import type { DStream } from './core/dstream.ts';
import { InProcessInvoker } from './local/in-process-invoker.ts';
import { MemoryObjectStore } from './local/memory-store.ts';
import type { Source } from './ports/source.ts';

export interface RunBatchesOptions {
  readonly batchIntervalMs?: number;
  /** How many batches to run (default: the number of input batches). */
  readonly numBatches?: number;
  /** Partitions of the input and default for shuffles (default 2). */
  readonly partitions?: number;
}

/**
 * Runs a pipeline over the given batches on the embedded runner (in memory, in this thread) and
 * returns one array per RDD the output stream produced, in time order, like Spark's
 * TestSuiteBase.testOperation.
 *
 * @example
 * ```ts
 * const out = await runBatches([['a b', 'a']], (lines) =>
 *   lines.flatMap((l) => l.split(' ')).map((w) => [w, 1] as [string, number]).reduceByKey((a, b) => a + b));
 * // [[['b', 1], ['a', 2]]]  (partition order: see the README)
 * ```
 */
export async function runBatches<T, V>(
  input: T[][],
  build: (stream: DStream<T>, ctx: StreamingContext) => DStream<V>,
  options: RunBatchesOptions = {},
): Promise<V[][]> {
  return runWith(options, input.length, (ctx) => build(ctx.queueStream<T>(input, { name: 'input' }), ctx));
}

/** `runBatches` for two inputs (joins, cogroup, union, transformWith). */
export async function runBatches2<T, U, V>(
  input1: T[][],
  input2: U[][],
  build: (a: DStream<T>, b: DStream<U>, ctx: StreamingContext) => DStream<V>,
  options: RunBatchesOptions = {},
): Promise<V[][]> {
  return runWith(options, Math.max(input1.length, input2.length), (ctx) =>
    build(
      ctx.queueStream<T>(input1, { name: 'input1' }),
      ctx.queueStream<U>(input2, { name: 'input2' }),
      ctx,
    ),
  );
}

async function runWith<V>(
  options: RunBatchesOptions,
  inputBatches: number,
  build: (ctx: StreamingContext) => DStream<V>,
): Promise<V[][]> {
  const ctx = new Context({
    batchIntervalMs: options.batchIntervalMs ?? 1000,
    partitions: options.partitions ?? 2,
  });
  const output = build(ctx);
  const collected: V[][] = [];
  output.foreachRDD(async (rdd) => {
    collected.push(await rdd.collect());
  });
  const store = new MemoryObjectStore();
  const scheduler = inProcessScheduler(ctx, { store, lease: false });
  await scheduler.run({ numBatches: options.numBatches ?? inputBatches });
  await scheduler.stop();
  return collected;
}

export interface RunPipelineResult {
  /** The store the run wrote to (outputs/, manifests/, rdd/ ...). */
  readonly store: MemoryObjectStore;
  readonly manifests: BatchManifest[];
  /** Everything `print()` wrote. */
  readonly printed: string;
}

/**
 * Runs a pipeline module's build function on the embedded runner in this thread, with its
 * `inputStream()`s fed from `inputs` (one array per batch), for tests of whole pipelines.
 */
export async function runPipeline(
  build: (ctx: StreamingContext) => void | Promise<void>,
  inputs: Readonly<Record<string, readonly (readonly unknown[])[]>>,
  options: RunBatchesOptions & { store?: MemoryObjectStore; onRecordError?: 'deadLetter' | 'fail' } = {},
): Promise<RunPipelineResult> {
  let printed = '';
  const ctx = new Context({
    batchIntervalMs: options.batchIntervalMs ?? 1000,
    partitions: options.partitions ?? 2,
    onRecordError: options.onRecordError,
    printer: (text) => {
      printed += text;
    },
  });
  await build(ctx);
  const store = options.store ?? new MemoryObjectStore();
  const sources: Record<string, Source<unknown>> = {};
  for (const [name, batches] of Object.entries(inputs)) sources[name] = arraySource(batches);
  const scheduler = inProcessScheduler(ctx, { store, sources });
  const longest = Math.max(0, ...Object.values(inputs).map((b) => b.length));
  const manifests = await scheduler.run({ numBatches: options.numBatches ?? longest });
  await scheduler.stop();
  return { store, manifests, printed };
}

/** A source that gives one array per batch, then empty batches. */
export function arraySource<T>(batches: readonly (readonly T[])[]): Source<T> {
  let next = 0;
  return {
    async receive(request) {
      if (typeof request.resumeFrom === 'number') next = request.resumeFrom;
      return { records: (batches[next++] ?? []).slice(), deadLetters: [], position: next };
    },
    exhausted: () => next >= batches.length,
    describe: () => `array(${batches.length} batches)`,
  };
}

/**
 * A driver that runs tasks in this thread on a manual clock: what runBatches, runPipeline and
 * the chaos harness share. The pipeline's closures stay in this process, so no worker is needed.
 */
export function inProcessScheduler(
  ctx: StreamingContext,
  options: Omit<BatchSchedulerOptions, 'invoker'> & { concurrency?: number },
): BatchScheduler {
  const { concurrency, ...rest } = options;
  let scheduler: BatchScheduler | undefined;
  const invoker = new InProcessInvoker({
    pipeline: () => scheduler!.pipeline,
    store: options.store,
    concurrency,
  });
  scheduler = new BatchScheduler(ctx, {
    clock: 'manual',
    zeroTimeMs: 0,
    retryBackoffMs: 1,
    ...rest,
    invoker,
  });
  return scheduler;
}
