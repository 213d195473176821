/**
 * Where `sluice status` and `sluice lineage` read from: any ObjectStore. `--store <dir>` opens a
 * directory store; `--bucket <name> [--prefix <p>]` opens the S3 store of the AWS runner
 * (aws/s3-object-store.ts, loaded only when asked for, so the CLI has no AWS dependency).
 *
 * @module
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { catalog } from '../shared/core/catalog.ts';
import { decodeJson } from '../shared/core/codec.ts';
import type { BatchManifest, GraphMeta } from '../shared/core/driver.ts';
import { idleManifestOf } from '../shared/core/idle-path.ts';
import { listIdleSpans, type Span } from '../shared/core/idle-span.ts';
import { layout } from '../shared/core/layout.ts';
import { DirectoryObjectStore } from '../shared/local/directory-store.ts';
import type { ObjectStore } from '../shared/ports/object-store.ts';
import { badValue, CliError } from './errors.ts';
import { timeOfDay } from './format.ts';
import type { BatchTimeSpec } from './parse.ts';

export interface StoreOptions {
  /** A store directory (the embedded runner's store). */
  readonly store?: string;
  /** An S3 bucket (the AWS runner's store). */
  readonly bucket?: string;
  /** Key prefix inside the bucket. */
  readonly prefix?: string;
}

export interface OpenedStore {
  readonly store: ObjectStore;
  /** How to name this store again on a command line, e.g. `--store .sluice/wordcount`. */
  readonly flags: string;
  /** The store's own description (`dir:/abs/path`, `s3://bucket/prefix`). */
  readonly description: string;
}

/** Where the S3 store lives; a seam so the CLI builds and runs without aws/. */
const S3_STORE_MODULE = fileURLToPath(
  // `.ts` from this repository's sources, `.js` when installed (compiled into dist/)
  new URL(`../aws/s3-object-store${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);

interface S3StoreModule {
  S3ObjectStore: new (options: { bucket: string; prefix?: string }) => ObjectStore;
}

/** The default store directory of `sluice run <module>`: `.sluice/<module name>`. */
export function defaultStoreDir(modulePath: string): string {
  return path.join('.sluice', path.basename(modulePath).replace(/\.[cm]?[jt]sx?$/, ''));
}

/**
 * Opens the store named by `--store` or `--bucket`. Without either, uses the only store under
 * `.sluice/` (where `sluice run` puts them), or says which ones there are.
 */
export async function openStore(options: StoreOptions): Promise<OpenedStore> {
  if (options.store !== undefined && options.bucket !== undefined) {
    throw badValue('--bucket', 'give either --store <dir> or --bucket <name>, not both');
  }
  if (options.bucket !== undefined) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket)) {
      throw badValue('--bucket', `'${options.bucket}' is not an S3 bucket name`);
    }
    if (!existsSync(S3_STORE_MODULE)) {
      throw badValue(
        '--bucket',
        'this build of sluice has no S3 store (aws/s3-object-store.ts); use --store <dir>',
      );
    }
    const mod = (await import(pathToFileURL(S3_STORE_MODULE).href)) as S3StoreModule;
    const prefix = options.prefix?.replace(/^\/+|\/+$/g, '');
    const store = new mod.S3ObjectStore({ bucket: options.bucket, ...(prefix ? { prefix } : {}) });
    return {
      store,
      flags: `--bucket ${options.bucket}${prefix ? ` --prefix ${prefix}` : ''}`,
      description: store.describe(),
    };
  }
  if (options.prefix !== undefined) throw badValue('--prefix', 'only applies to --bucket');
  const dir = options.store ?? (await onlyLocalStore());
  if (!existsSync(dir)) {
    throw badValue(
      '--store',
      `${dir} does not exist; run 'sluice run <pipeline> --store ${dir}' first, or name another store`,
    );
  }
  const store = new DirectoryObjectStore(dir);
  return { store, flags: `--store ${dir}`, description: store.describe() };
}

async function onlyLocalStore(): Promise<string> {
  const root = '.sluice';
  const entries = await fs.readdir(root, { withFileTypes: true }).catch(() => []);
  const stores = entries
    .filter((e) => e.isDirectory() && existsSync(path.join(root, e.name, layout.graph())))
    .map((e) => path.join(root, e.name));
  if (stores.length === 1) return stores[0]!;
  if (stores.length === 0) {
    throw badValue(
      '--store',
      'no store given and none under .sluice/; name one with --store <dir> (or --bucket <name>)',
    );
  }
  throw badValue(
    '--store',
    `no store given and .sluice/ holds several; pick one: ${stores.map((s) => `--store ${s}`).join(', ')}`,
  );
}

export async function readJson<T>(store: ObjectStore, key: string): Promise<T | undefined> {
  const bytes = await store.get(key);
  if (!bytes) return undefined;
  try {
    return decodeJson<T>(bytes);
  } catch (err) {
    throw new CliError(`${store.describe()}/${key} is not valid JSON (${(err as Error).message})`);
  }
}

/** meta/graph.json, or a clear error when the store holds no pipeline. */
export async function readGraphMeta(opened: OpenedStore): Promise<GraphMeta> {
  const meta = await readJson<GraphMeta>(opened.store, layout.graph());
  if (!meta) {
    throw new CliError(
      `no Sluice store at ${opened.description}: ${layout.graph()} is missing. ` +
        `Run 'sluice run <pipeline> ${opened.flags}' first, or name another store.`,
    );
  }
  return meta;
}

/**
 * Committed batch times (from manifests/ and the idle spans under idle/, issue 11), oldest first
 * (see shared/core/catalog.ts).
 */
export async function committedBatchTimes(store: ObjectStore): Promise<number[]> {
  return catalog.committed(store);
}

/** The idle span holding batch `t` (issue 11: committed, empty, nothing stored), if any. */
export function idleSpanOf(spans: readonly Span[], t: number): Span | undefined {
  return spans.find((s) => t >= s.fromMs && t <= s.toMs);
}

/** Batches whose input was received (write-ahead entry) but that have no manifest yet. */
export async function uncommittedBatchTimes(
  store: ObjectStore,
  committed: readonly number[],
): Promise<number[]> {
  const done = new Set(committed);
  return (await catalog.received(store)).filter((t) => !done.has(t));
}

export async function readManifests(store: ObjectStore, times: readonly number[]): Promise<BatchManifest[]> {
  const out: BatchManifest[] = [];
  // an idle batch (issue 11) has no manifest of its own: its span stands for it
  const spans = await listIdleSpans(store);
  const idle = times.filter((t) => idleSpanOf(spans, t));
  if (idle.length > 0) {
    const fingerprint = (await readJson<GraphMeta>(store, layout.graph()))?.fingerprint ?? '';
    for (const t of idle) out.push(idleManifestOf(t, fingerprint));
    times = times.filter((t) => !idleSpanOf(spans, t));
  }
  // a few requests at a time: cheap on a directory, polite to S3
  for (let i = 0; i < times.length; i += 16) {
    const chunk = await Promise.all(
      times.slice(i, i + 16).map((t) => readJson<BatchManifest>(store, layout.manifest(t))),
    );
    for (const m of chunk) if (m) out.push(m);
  }
  return idle.length > 0 ? out.sort((a, b) => a.batchTimeMs - b.batchTimeMs) : out;
}

/**
 * Matches a batch time the user typed against the store: exact times are taken as they are
 * (the store may still hold data of a batch without a manifest), a time of day must match one
 * committed batch, `last` is the newest committed batch.
 */
export async function resolveBatchTime(
  store: ObjectStore,
  spec: BatchTimeSpec,
  option: string,
): Promise<number> {
  if (spec.kind === 'exact') return spec.ms;
  const times = await committedBatchTimes(store);
  if (times.length === 0) throw new CliError(`${store.describe()} has no committed batch yet`);
  if (spec.kind === 'latest') return times[times.length - 1]!;
  const matches = times.filter((t) => timeOfDay(t).startsWith(spec.text));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) {
    const first = times[0]!;
    const last = times[times.length - 1]!;
    throw badValue(
      option,
      `no committed batch at ${spec.text} (local time); the store holds ${times.length} batches from ${timeOfDay(first)} (${first}) to ${timeOfDay(last)} (${last})`,
    );
  }
  throw badValue(
    option,
    `${spec.text} matches ${matches.length} batches (${matches
      .slice(0, 5)
      .map((t) => `${timeOfDay(t)} = ${t}`)
      .join(', ')}${matches.length > 5 ? ', ...' : ''}); give milliseconds or the epoch time`,
  );
}
