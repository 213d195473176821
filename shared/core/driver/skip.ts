import { ConfigError } from '../../errors.ts';
import type { ObjectStore } from '../../ports/object-store.ts';
import { decodeJson, encodeJson } from '../codec.ts';
import { timeKey } from '../layout.ts';

/**
 * Skipping a batch (`sluice run --skip-batch <t>`), for a failure no dead letter can isolate (a
 * `mapPartitions` or `foreachRDD` that throws, a record that kills its worker). The batch runs as
 * if its interval had received nothing: its input blocks read as empty in every task (also when a
 * partition of it is recomputed later), state carries over and windows see an empty interval, so
 * later batches go on; no output operation runs for it (no saved files, no foreachRDD / print).
 * The input stays stored (until the usual retention), and the manifest says what was skipped.
 */
export interface SkippedBatch {
  readonly batchTimeMs: number;
  readonly reason: string;
  /** Input records of the batch that reached no operator. */
  readonly records: number;
  readonly skippedAtMs: number;
}

export function skippedKey(t: number): string {
  return `batches/${timeKey(t)}/skipped.json`;
}

/**
 * Checks the batches the user asked to skip (each must be stored and not committed: the batch the
 * driver re-runs first) and records each one in the store, so every later recomputation of that
 * batch skips its input too. Returns every skipped batch of the store, by time.
 */
export async function prepareSkips(
  store: ObjectStore,
  requested: readonly number[],
  received: {
    readonly pending: readonly number[];
    readonly committed: ReadonlySet<number>;
    readonly keys: readonly string[];
  },
  recordsOf: (t: number) => Promise<number>,
): Promise<Map<number, SkippedBatch>> {
  const skipped = new Map<number, SkippedBatch>();
  for (const key of received.keys) {
    if (!key.endsWith('/skipped.json')) continue;
    const bytes = await store.get(key);
    if (bytes) {
      const s = decodeJson<SkippedBatch>(bytes);
      skipped.set(s.batchTimeMs, s);
    }
  }
  for (const t of requested) {
    if (skipped.has(t)) continue;
    if (received.committed.has(t)) {
      throw new ConfigError(
        'skipBatch',
        `batch ${t} is already committed; only a batch that has not committed can be skipped`,
      );
    }
    if (!received.pending.includes(t)) {
      const list =
        received.pending.length > 0
          ? `the uncommitted batches are ${received.pending.join(', ')}`
          : 'no batch is waiting to be re-run';
      throw new ConfigError(
        'skipBatch',
        `batch ${t} has no stored input to skip (${list}); give the time from the 'Batch <time> failed' message`,
      );
    }
    const records = await recordsOf(t);
    // what the failed attempts of the batch committed was computed from its input: start over,
    // or the first-commit-wins rule would keep it (input blocks and input dead letters stay)
    const tk = timeKey(t);
    for (const prefix of [`rdd/${tk}/`, `shuffle/${tk}/`, `deadletter/${tk}/stage`]) {
      for (const key of await store.list(prefix)) await store.delete(key);
    }
    const entry: SkippedBatch = {
      batchTimeMs: t,
      reason: `skipped on request (--skip-batch ${t}): its ${records} input records reached no operator and no output ran; the input stays stored under inputs/${timeKey(t)}/`,
      records,
      skippedAtMs: Date.now(),
    };
    await store.putIfAbsent(skippedKey(t), encodeJson(entry));
    skipped.set(t, entry);
  }
  return skipped;
}
