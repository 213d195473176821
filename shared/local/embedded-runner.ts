import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { BatchManifest } from '../core/driver.ts';
import { BatchScheduler, type DriverTuning, pickTuning } from '../core/driver.ts';
import { storeOutputsSource } from '../core/query.ts';
import { ConfigError } from '../errors.ts';
import type { Source } from '../ports/source.ts';
import { defaultWorkers } from './default-workers.ts';
import { DirectoryObjectStore } from './directory-store.ts';
import { InProcessInvoker } from './in-process-invoker.ts';
import { loadPipeline, type PipelineModule } from './load-pipeline.ts';
import { checkSourceFile, checkStoreDir } from './setup-checks.ts';
import { FileSource, GeneratorSource, HttpSource, type RecordFormat, StdinSource } from './sources.ts';
import { WorkerPoolInvoker } from './worker-pool.ts';

/** `sluice run`'s options: the driver's (DriverTuning, resolved by the driver) and the runner's own. */
export interface EmbeddedRunOptions extends DriverTuning {
  /** Path of the pipeline module (default-exports `(ctx) => void`). */
  readonly pipelineModule: string;
  /** The store directory (created if needed; a run resumes from what it holds). */
  readonly storeDir: string;
  readonly batchIntervalMs?: number;
  readonly partitions?: number;
  /** Worker threads (default: one per core but one, for the driver: default-workers.ts). 0 runs tasks in the driver's thread. */
  readonly workers?: number;
  /** `generator`, `file:<path>`, `stdin` or `http:<port>` (default `generator`). */
  readonly source?: string;
  /** Records per second of the generator source. */
  readonly rate?: number;
  /** `lines` (default) or `json`: how file, stdin and http sources decode lines. */
  readonly format?: RecordFormat;
  readonly durationMs?: number;
  readonly numBatches?: number;
  /** Stop once a finite source (file, stdin) is exhausted. Default true. */
  readonly stopWhenExhausted?: boolean;
  /** Store key -> local file, put into the store before starting (static datasets). */
  readonly datasets?: Readonly<Record<string, string>>;
  /** The driver lease: its duration (default 30 s) and `force` (take it from a live holder). */
  readonly lease?: { readonly durationMs?: number; readonly force?: boolean };
  readonly signal?: AbortSignal;
  readonly printer?: (text: string) => void;
  readonly onStart?: (info: { sources: Source<unknown>[]; scheduler: BatchScheduler }) => void;
}

const DEFAULT_WORDS =
  'the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three'.split(
    ' ',
  );

function mix(seed: number): number {
  let x = Math.imul(seed + 1, 0x9e3779b1);
  x = Math.imul(x ^ (x >>> 15), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A line of about 100 bytes built from `seed`, with a Zipf-like word skew. */
export function demoLine(seed: number): string {
  let line = '';
  let x = seed;
  while (line.length < 95) {
    x = mix(x);
    const r = (x % 10_000) / 10_000;
    const word = DEFAULT_WORDS[Math.floor(r * r * DEFAULT_WORDS.length)]!;
    line += line ? ` ${word}` : word;
  }
  return line;
}

const POOL_SIZE = 65_536;
let pool: string[] | undefined;

/**
 * The demo generator: the seq-th line, deterministic. Lines come from a pool of 65,536 distinct
 * lines built once, so the generator costs next to nothing next to the pipeline it feeds.
 */
export function defaultGenerate(seq: number): string {
  // flat strings: a line built with += is a rope that every read (a join, a search) walks through
  pool ??= Array.from({ length: POOL_SIZE }, (_, i) => Buffer.from(demoLine(i)).toString());
  return pool[mix(seq) & (POOL_SIZE - 1)]!;
}

/** Builds the source named by `--source`. */
export function sourceFromSpec(
  spec: string,
  options: { rate?: number; format?: RecordFormat; module?: PipelineModule; skipDowntime?: boolean },
): Source<unknown> {
  const [kind, ...rest] = spec.split(':');
  const arg = rest.join(':');
  // --format, else the pipeline module's own format, else lines
  const format = options.format ?? options.module?.options?.format ?? 'lines';
  switch (kind) {
    case 'generator': {
      const rate = arg ? Number(arg) : (options.rate ?? 1000);
      if (!Number.isFinite(rate) || rate <= 0)
        throw new ConfigError(
          'rate',
          `must be a positive number of records per second, got ${arg || options.rate}`,
        );
      return new GeneratorSource({
        ratePerSec: rate,
        generate: options.module?.generate ?? defaultGenerate,
        skipDowntime: options.skipDowntime ?? false,
      });
    }
    case 'file':
      if (!arg) throw new ConfigError('source', 'file source needs a path: --source file:<path>');
      return new FileSource(arg, { format });
    case 'stdin':
      return new StdinSource({ format });
    case 'http': {
      const port = arg ? Number(arg) : 8787;
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new ConfigError('source', `http source needs a port number, got '${arg}'`);
      return new HttpSource({ port, format });
    }
    case 'store': {
      // the saved outputs of another pipeline: store:<dir>#<output name>, one output batch per batch
      const hash = arg.indexOf('#');
      if (hash <= 0 || hash === arg.length - 1)
        throw new ConfigError('source', `store source needs store:<dir>#<output name>, got '${spec}'`);
      return storeOutputsSource(new DirectoryObjectStore(arg.slice(0, hash)), arg.slice(hash + 1));
    }
    default:
      throw new ConfigError(
        'source',
        `unknown source '${spec}': use generator[:<rate>], file:<path>, stdin, http[:<port>] or store:<dir>#<output>`,
      );
  }
}

/**
 * The shortest batch interval `sluice run` accepts. Spark's advice is 500 ms or more; Sluice's
 * fixed work per batch on one machine is a few tens of ms (see the message in runEmbedded).
 */
export const MIN_BATCH_INTERVAL_MS = 50;

/** Runs a pipeline module on this machine: a directory store, local sources, worker threads. */
export async function runEmbedded(
  options: EmbeddedRunOptions,
): Promise<{ manifests: BatchManifest[]; scheduler: BatchScheduler }> {
  const loaded = await loadPipeline(options.pipelineModule, {
    batchIntervalMs: options.batchIntervalMs,
    partitions: options.partitions,
    printer: options.printer,
  });
  const ctx = loaded.ctx;
  if (ctx.batchIntervalMs < MIN_BATCH_INTERVAL_MS) {
    throw new ConfigError(
      'batchIntervalMs',
      `${ctx.batchIntervalMs} ms is below the floor of ${MIN_BATCH_INTERVAL_MS} ms: every batch has fixed work ` +
        '(writing its input blocks and write-ahead entry, planning, committing its manifest: 10 to 30 ms here), ' +
        'so a shorter interval only falls behind. Use 50ms or more (the flag, or options.batchIntervalMs of the module)',
    );
  }
  const store = new DirectoryObjectStore(options.storeDir);
  await checkStoreDir(store.root);
  // temporary files of writes cut short by a kill would otherwise stay forever
  const removed = await store.removeStaleTempFiles();
  if (removed > 0) options.log?.({ event: 'store.tempFilesRemoved', files: removed });
  const spec = options.source ?? 'generator';
  if (spec.startsWith('file:')) await checkSourceFile(spec.slice('file:'.length));
  for (const [key, file] of Object.entries(options.datasets ?? {})) {
    const body = await fs.readFile(file).catch(() => {
      throw new ConfigError('dataset', `cannot read ${file} (for store key ${key})`);
    });
    await store.put(key, body);
  }
  const sources: Record<string, Source<unknown>> = {};
  for (const binding of ctx.graph.inputs.values()) {
    if (!binding.factory) {
      sources[binding.name] = sourceFromSpec(options.source ?? 'generator', {
        rate: options.rate,
        format: options.format,
        module: loaded.module,
        // on the wall clock, a resumed generator makes nothing for the time it was not running
        skipDowntime: (options.clock ?? 'wall') === 'wall',
      });
    }
  }
  // issue 14: the driver's own work counts as a core's work (default-workers.ts)
  const workers = options.workers ?? defaultWorkers();
  let scheduler: BatchScheduler | undefined;
  const invoker =
    workers === 0
      ? new InProcessInvoker({ pipeline: () => scheduler!.pipeline, store })
      : new WorkerPoolInvoker({
          pipelineModule: path.resolve(options.pipelineModule),
          storeDir: store.root,
          batchIntervalMs: ctx.batchIntervalMs,
          partitions: ctx.defaultPartitions,
          workers,
        });
  scheduler = new BatchScheduler(ctx, {
    store,
    invoker,
    sources,
    ...pickTuning(options),
    // with worker threads, every task runs in a worker: a small batch run in
    // the driver's thread (tiny-batch.ts) saves requests that cost nothing on a local disk, and user
    // code that blocks there would stall the lease renewal, the HTTP acks and the block generators
    ...(workers > 0 ? { tinyBatch: false as const } : {}),
    ...(options.lease ? { lease: options.lease } : {}),
  });
  try {
    // the workers load the module first (about a second): a new store's first interval starts
    // after that, not while they load (its batches would close as catch-up, before any cut)
    if (invoker instanceof WorkerPoolInvoker) await invoker.ready();
    await scheduler.start();
    options.onStart?.({ sources: Object.values(sources), scheduler });
    // --duration counts from now (not from the last committed batch of a resumed store)
    const now =
      (options.clock ?? 'wall') === 'wall'
        ? Math.ceil(Date.now() / ctx.batchIntervalMs) * ctx.batchIntervalMs
        : 0;
    const first = Math.max(scheduler.nextBatchTimeMs, now);
    const untilMs =
      options.durationMs !== undefined ? first + options.durationMs - ctx.batchIntervalMs : undefined;
    const manifests = await scheduler.run({
      numBatches: options.numBatches,
      untilMs,
      signal: options.signal,
      stopWhenExhausted: options.stopWhenExhausted ?? true,
    });
    return { manifests, scheduler };
  } finally {
    await scheduler.stop();
    await invoker.close();
  }
}
