/**
 * Reading what a pipeline stored, from outside the pipeline:
 * - `queryState`: the state or window RDD a named stream materialized at a batch (the totals of
 *   an `updateStateByKey`, the counts of a window), as an RDD to transform and collect;
 * - `readStoreOutputs` / `storeOutputsSource`: the saved outputs of one pipeline as the dataset or
 *   the input stream of another, by output name and time range.
 */
import { SluiceError } from '../errors.ts';
import type { ObjectStore } from '../ports/object-store.ts';
import type { ReceivedBatch, Source } from '../ports/source.ts';
import { catalog } from './catalog.ts';
import { decodeJson } from './codec.ts';
import type { GraphMeta } from './driver.ts';
import { BatchGeneration } from './generation.ts';
import { layout, outputDirsOf, parseTimeKey, timeKey } from './layout.ts';
import { StoredRDD } from './rdd.ts';

/** A stream or output that is not in the store, with what is there instead. */
export class NotStoredError extends SluiceError {
  constructor(message: string) {
    super(message);
    this.name = 'NotStoredError';
  }
}

async function readMeta(store: ObjectStore): Promise<GraphMeta> {
  const bytes = await store.get(layout.graph());
  if (!bytes) {
    throw new NotStoredError(
      `no Sluice store at ${store.describe()}: ${layout.graph()} is missing (run a pipeline into it first)`,
    );
  }
  return decodeJson<GraphMeta>(bytes);
}

/** Committed batch times with a manifest (an idle batch, issue 11, stored nothing to read), oldest first. */
export async function committedTimes(store: ObjectStore): Promise<number[]> {
  return catalog.manifests(store);
}

export interface QueryStateOptions {
  /** The batch time to read (default: the last committed batch). */
  readonly atMs?: number;
}

export interface StateQuery<T> {
  readonly name: string;
  readonly batchTimeMs: number;
  /** The stored RDD: transform it (map, filter, flatMap ...) and `collect()` it. */
  readonly rdd: StoredRDD<T>;
  /** All its records. */
  collect(): Promise<T[]>;
}

/**
 * The RDD a materialized stream (state of `updateStateByKey` / `mapWithState`, a window, a stream
 * with `foreachRDD`) stored at a batch, found by the stream's `{ name }` (its storage name). Reads
 * `rdd/<t>/<name>/<p>.blk`; without `atMs`, the last committed batch. Errors name the streams
 * and batches the store does hold.
 */
export async function queryState<T = unknown>(
  store: ObjectStore,
  name: string,
  options: QueryStateOptions = {},
): Promise<StateQuery<T>> {
  const meta = await readMeta(store);
  const committed = await committedTimes(store);
  const at = options.atMs ?? committed[committed.length - 1];
  if (at === undefined) throw new NotStoredError(`${store.describe()} has no committed batch yet`);
  const prefix = `rdd/${timeKey(at)}/${name}/`;
  const blocks = (await store.list(prefix)).filter((k) => k.endsWith('.blk'));
  if (blocks.length === 0) throw new NotStoredError(await whyNotStored(store, meta, name, at, committed));
  const numPartitions = Math.max(...blocks.map((k) => Number(k.slice(prefix.length, -'.blk'.length)))) + 1;
  const gen = new BatchGeneration(
    {
      zeroTimeMs: meta.zeroTimeMs,
      batchIntervalMs: meta.batchIntervalMs,
      defaultPartitions: meta.partitions,
      shapeCache: new Map(),
    },
    at,
  );
  gen.store = store;
  const rdd = new StoredRDD<T>(gen, {
    operator: `stored(${name})`,
    storedTimeMs: at,
    storedName: name,
    numPartitions,
    keyOf: (p) => layout.rddPartition(at, name, p),
  });
  return { name, batchTimeMs: at, rdd, collect: () => rdd.collect() };
}

async function whyNotStored(
  store: ObjectStore,
  meta: GraphMeta,
  name: string,
  at: number,
  committed: readonly number[],
): Promise<string> {
  const names = new Set<string>();
  const times = new Set<number>();
  for (const key of await store.list('rdd/')) {
    const [, t, n] = key.split('/');
    if (n === name) times.add(parseTimeKey(t!));
    if (parseTimeKey(t!) === at && n) names.add(n);
  }
  const persisted = meta.persisted.map((p) => p.name);
  if (times.size > 0) {
    const sorted = [...times].sort((a, b) => a - b);
    return `'${name}' was not stored at batch ${at}; it is stored at ${sorted.length} batch(es) from ${sorted[0]} to ${sorted[sorted.length - 1]} (older batches are removed once no window or recovery needs them)`;
  }
  if (!committed.includes(at)) {
    return `no batch ${at} was committed in ${store.describe()}${committed.length ? ` (committed: ${committed[0]} to ${committed[committed.length - 1]})` : ''}`;
  }
  const known = [...new Set([...persisted, ...names])].sort();
  return `no stream named '${name}' is stored in ${store.describe()}; stored streams: ${
    known.length ? known.join(', ') : '(none)'
  }. Give the stateful operator a { name } (e.g. updateStateByKey(fn, { name: 'totals' })) to query it by that name`;
}

export interface OutputRange {
  /** First batch time to read, inclusive (default: the first). */
  readonly fromMs?: number;
  /** Last batch time to read, inclusive (default: the last). */
  readonly toMs?: number;
}

export interface StoredOutputBatch {
  readonly batchTimeMs: number;
  readonly records: unknown[];
}

/** Output directories of `name` in a store within a time range, complete ones only (with `_SUCCESS`). */
async function outputDirs(store: ObjectStore, name: string, range: OutputRange) {
  const keys = await store.list(layout.outputsPrefix());
  const all = outputDirsOf(keys, name);
  if (all.length === 0) {
    const others = new Set(
      keys.map((k) =>
        k
          .slice(layout.outputsPrefix().length)
          .split('/')[0]!
          .replace(/-\d+(\.[^./]+)?$/, ''),
      ),
    );
    throw new NotStoredError(
      `${store.describe()} holds no saved output named '${name}'${
        others.size ? `; it holds: ${[...others].sort().join(', ')}` : ' (it holds no saved output)'
      }`,
    );
  }
  return all.filter(
    (d) =>
      d.complete &&
      d.batchTimeMs >= (range.fromMs ?? Number.NEGATIVE_INFINITY) &&
      d.batchTimeMs <= (range.toMs ?? Number.POSITIVE_INFINITY),
  );
}

function parseParts(bytes: Uint8Array, key: string): unknown[] {
  const lines = Buffer.from(bytes)
    .toString('utf8')
    .split('\n')
    .filter((l) => l.length > 0);
  return key.endsWith('.jsonl') ? lines.map((l) => JSON.parse(l)) : lines;
}

/**
 * The saved outputs of `name` (`saveAsJsonLines(name)` / `saveAsTextFiles(name)`) in another
 * pipeline's store, one entry per batch in the time range, oldest first. JSON lines are parsed,
 * text lines stay strings. Only complete batches (`_SUCCESS` written) are read.
 */
export async function readStoreOutputs(
  store: ObjectStore,
  name: string,
  range: OutputRange = {},
): Promise<StoredOutputBatch[]> {
  const out: StoredOutputBatch[] = [];
  for (const dir of await outputDirs(store, name, range)) {
    const records: unknown[] = [];
    for (const key of dir.parts) {
      const bytes = await store.get(key);
      if (bytes) records.push(...parseParts(bytes, key));
    }
    out.push({ batchTimeMs: dir.batchTimeMs, records });
  }
  return out;
}

/**
 * A finite source that feeds the saved outputs of another pipeline, one output batch per batch of
 * this one, oldest first: `ctx.sourceStream('totals', () => storeOutputsSource(store, 'totals'))`
 * on either runner (the store is any ObjectStore: a directory or S3). Its position (the last batch
 * time handed out) is kept in the write-ahead entry, so a restart carries on after it.
 */
export function storeOutputsSource<T = unknown>(
  store: ObjectStore,
  name: string,
  range: OutputRange = {},
): Source<T> {
  let dirs: Awaited<ReturnType<typeof outputDirs>> | undefined;
  let next = 0;
  return {
    async start() {
      dirs = await outputDirs(store, name, range);
    },
    async receive(request): Promise<ReceivedBatch<T>> {
      dirs ??= await outputDirs(store, name, range);
      if (typeof request.resumeFrom === 'number') {
        const after = request.resumeFrom;
        next = dirs.findIndex((d) => d.batchTimeMs > after);
        if (next < 0) next = dirs.length;
      }
      const dir = dirs[next];
      if (!dir) return { records: [], deadLetters: [], position: dirs[dirs.length - 1]?.batchTimeMs ?? 0 };
      next++;
      const records: T[] = [];
      for (const key of dir.parts) {
        const bytes = await store.get(key);
        if (bytes) records.push(...(parseParts(bytes, key) as T[]));
      }
      return { records, deadLetters: [], position: dir.batchTimeMs };
    },
    exhausted: () => dirs !== undefined && next >= dirs.length,
    describe: () => `store outputs ${store.describe()}#${name}`,
  };
}
