/**
 * The store catalog: which batches a store holds, read from its keys. Committed batches are those
 * with a manifest (`manifests/<t>.json`); received batches those with a write-ahead entry
 * (`batches/<t>/received.json`); pending batches were received and never committed. The one
 * place that parses these keys back into batch times, beside `layout.ts` that writes them: used
 * by the driver, `sluice status`/`store`, the UI, replay and the recovery function. Batches of an
 * idle span (`idle/<from>-<to>.json`, issue 11: committed, empty, nothing stored) are committed
 * too: `committed` includes them, `manifests` does not.
 *
 * @module
 */
import type { ObjectStore } from '../ports/object-store.ts';
import { decodeJson } from './codec.ts';
import { idleBatchTimes, listIdleSpans } from './idle-span.ts';
import { layout, parseTimeKey } from './layout.ts';

const MANIFESTS = layout.manifestsPrefix();
const BATCHES = 'batches/';
const RECEIVED = '/received.json';

/** The batch time of a manifest key (`manifests/<t>.json`), or undefined for any other key. */
export function manifestTimeOf(key: string): number | undefined {
  if (!key.startsWith(MANIFESTS) || !key.endsWith('.json')) return undefined;
  const t = parseTimeKey(key.slice(MANIFESTS.length, -'.json'.length));
  return Number.isFinite(t) ? t : undefined;
}

/** The batch time of a write-ahead entry key (`batches/<t>/received.json`), or undefined. */
export function receivedTimeOf(key: string): number | undefined {
  if (!key.startsWith(BATCHES) || !key.endsWith(RECEIVED)) return undefined;
  const t = parseTimeKey(key.slice(BATCHES.length, -RECEIVED.length));
  return Number.isFinite(t) ? t : undefined;
}

/** The batch time of any `batches/<t>/...` key (write-ahead entry, skip record), or undefined. */
export function batchDirTimeOf(key: string): number | undefined {
  if (!key.startsWith(BATCHES)) return undefined;
  const t = parseTimeKey(key.slice(BATCHES.length).split('/')[0] ?? '');
  return Number.isFinite(t) ? t : undefined;
}

function times(keys: readonly string[], of: (k: string) => number | undefined): number[] {
  const out: number[] = [];
  for (const k of keys) {
    const t = of(k);
    if (t !== undefined) out.push(t);
  }
  return out.sort((a, b) => a - b);
}

/** What a store holds, by batch time, oldest first. */
export interface CatalogSnapshot {
  readonly committed: readonly number[];
  readonly received: readonly number[];
  /** Received and never committed (also one before the last commit: a failed backlog batch). */
  readonly pending: readonly number[];
  /** Every key under `batches/` (write-ahead entries, skip records). */
  readonly batchKeys: readonly string[];
}

export const catalog = {
  /**
   * Committed batch times, oldest first: those with a manifest and those inside an idle span
   * (issue 11; the span's batches are every interval of meta/graph.json from its first to its last).
   */
  async committed(store: ObjectStore): Promise<number[]> {
    const [manifests, spans] = await Promise.all([catalog.manifests(store), listIdleSpans(store)]);
    if (spans.length === 0) return manifests;
    const meta = await store.get(layout.graph());
    const interval = meta ? decodeJson<{ batchIntervalMs?: number }>(meta).batchIntervalMs : undefined;
    if (!interval) return manifests;
    return [...new Set([...manifests, ...idleBatchTimes(spans, interval)])].sort((a, b) => a - b);
  },
  /** Batch times with a manifest of their own (idle batches have none), oldest first. */
  async manifests(store: ObjectStore): Promise<number[]> {
    return times(await store.list(MANIFESTS), manifestTimeOf);
  },
  /** Batch times with a write-ahead entry, oldest first. */
  async received(store: ObjectStore): Promise<number[]> {
    return times(await store.list(BATCHES), receivedTimeOf);
  },
  /** Committed, received and pending batch times in two listings. */
  async snapshot(store: ObjectStore): Promise<CatalogSnapshot> {
    const [manifestKeys, batchKeys] = await Promise.all([store.list(MANIFESTS), store.list(BATCHES)]);
    const committed = times(manifestKeys, manifestTimeOf);
    const received = times(batchKeys, receivedTimeOf);
    const done = new Set(committed);
    return { committed, received, pending: received.filter((t) => !done.has(t)), batchKeys };
  },
};
