/**
 * Where lineage records live (issue 11: fewer requests for a batch with data), and the one place
 * that reads them back, for `sluice lineage`, the UI and tests:
 *
 * - a stored RDD partition (`rdd/...`) or shuffle map output (`shuffle/...`) carries its record
 *   in a trailer of its own object (`frameWithLineage` in codec.ts), written with ONE put-if-absent:
 *   the data and its commit together, the first finisher wins;
 * - a shuffle map output whose every bucket is empty is not written at all: its record (in the
 *   task result, and so in the reduce tasks' inputs) has `empty: true` and an index of empty ranges;
 * - a saved output part (`outputs/...`) stays data only, for Athena, DuckDB and Spark reading the
 *   folder: its record goes into the batch's manifest (`outputLineage`), which is put-if-absent too;
 * - stores written before keep their records in `<key>.lineage.json` (`lineage/<key>.lineage.json`
 *   for outputs): every reader here falls back to them.
 *
 * @module
 */
import { crc32 } from 'node:zlib';
import type { ObjectStore } from '../ports/object-store.ts';
import { CorruptBlockError, checksum, decodeJson, frameWithLineage, unframe } from './codec.ts';
import { layout, parseOutputKey } from './layout.ts';
import type { LineageRecord } from './task.ts';

export interface CommitOutcome {
  /** True when this attempt's object is the one stored. */
  readonly committed: boolean;
  /** The lineage of the object stored (this attempt's, or the first finisher's). */
  readonly winner: LineageRecord;
  readonly reads: number;
  readonly writes: number;
}

/**
 * Writes `data` with `lineage` in its trailer, put-if-absent. When an object is already there (a
 * retry, a duplicate, a speculative copy) its lineage is the winner's; an object that is damaged,
 * or written before lineage trailers (its record beside it), is replaced by this attempt's (the
 * same data: tasks are deterministic), as lineage recovery of a corrupt partition needs.
 */
export async function commitWithLineage(
  store: ObjectStore,
  kind: 'rdd' | 'shuffle',
  data: Uint8Array,
  lineage: LineageRecord,
): Promise<CommitOutcome> {
  const framed = frameWithLineage(data, lineage);
  if (await store.putIfAbsent(lineage.key, framed)) {
    return { committed: true, winner: lineage, reads: 0, writes: 1 };
  }
  const existing = await store.get(lineage.key);
  const winner = existing ? intactLineage(kind, existing) : undefined;
  if (winner) return { committed: false, winner, reads: 1, writes: 1 };
  await store.put(lineage.key, framed);
  return { committed: true, winner: lineage, reads: 1, writes: 2 };
}

/** The lineage in an object's trailer when the object is whole (data matching its checksum). */
function intactLineage(kind: 'rdd' | 'shuffle', bytes: Uint8Array): LineageRecord | undefined {
  let parts: { data: Uint8Array; lineage?: LineageRecord };
  try {
    parts = unframe<LineageRecord>(bytes);
  } catch (err) {
    if (err instanceof CorruptBlockError) return undefined;
    throw err;
  }
  const { data, lineage } = parts;
  if (!lineage || data.length !== lineage.bytes) return undefined;
  if (kind === 'shuffle') return checksum(data) === lineage.checksum ? lineage : undefined;
  if (data.length < 5) return undefined;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const seal = buf.readUInt32BE(buf.length - 4);
  const whole = crc32(buf.subarray(0, buf.length - 4)) === seal;
  return whole && seal.toString(16).padStart(8, '0') === lineage.checksum ? lineage : undefined;
}

/** The lineage record in a stored object's trailer, or undefined (no object, or none in it). */
export function lineageInObject(bytes: Uint8Array | undefined): LineageRecord | undefined {
  if (!bytes) return undefined;
  try {
    return unframe<LineageRecord>(bytes).lineage;
  } catch (err) {
    if (err instanceof CorruptBlockError) return undefined;
    throw err;
  }
}

/**
 * The lineage record of data object `key`: from the object's trailer (RDD partitions, shuffle
 * outputs), from the batch's manifest (saved output parts), or from the `.lineage.json` record
 * a store written before issue 11 has beside it.
 */
export async function readLineage(store: ObjectStore, key: string): Promise<LineageRecord | undefined> {
  const out = parseOutputKey(key);
  if (out && !key.startsWith('lineage/')) {
    const fromManifest = (await outputLineageOf(store, out.batchTimeMs)).find((r) => r.key === key);
    if (fromManifest) return fromManifest;
  } else if (key.startsWith('rdd/') || key.startsWith('shuffle/')) {
    const inObject = lineageInObject(await store.get(key));
    if (inObject) return inObject;
  }
  const legacy = await store.get(layout.lineageOf(key));
  if (legacy) return decodeJson<LineageRecord>(legacy);
  return (await memoryLineageOf(store, key))?.find((r) => r.key === key);
}

/**
 * The lineage records a tiny batch kept in its manifest for what it held in memory (issue 11),
 * for the batch of `key` (`rdd/<t>/...` or `shuffle/<t>/...`); undefined for another key.
 */
export async function memoryLineageOf(
  store: ObjectStore,
  key: string,
): Promise<readonly LineageRecord[] | undefined> {
  const m = /^(?:rdd|shuffle)\/(\d+)\//.exec(key);
  if (!m) return undefined;
  const bytes = await store.get(layout.manifest(Number(m[1])));
  if (!bytes) return [];
  return decodeJson<{ memoryLineage?: LineageRecord[] }>(bytes).memoryLineage ?? [];
}

/** The lineage records of batch t's saved output parts, from its manifest (empty before issue 11). */
export async function outputLineageOf(store: ObjectStore, t: number): Promise<readonly LineageRecord[]> {
  const bytes = await store.get(layout.manifest(t));
  if (!bytes) return [];
  return decodeJson<{ outputLineage?: LineageRecord[] }>(bytes).outputLineage ?? [];
}

/**
 * The data keys among `keys` (a listing under `rdd/` or `shuffle/`) that have a lineage record:
 * every `.blk` object (its trailer, or its legacy `.lineage.json` beside it).
 */
export function lineageDataKeys(keys: readonly string[]): string[] {
  const out = new Set<string>();
  for (const k of keys) {
    if (k.endsWith('.blk')) out.add(k);
    else if (k.endsWith('.blk.lineage.json')) out.add(k.slice(0, -'.lineage.json'.length));
  }
  return [...out].sort();
}
