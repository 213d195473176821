/**
 * How dead letters are counted, one rule everywhere (the manifest, the live row of `sluice run`,
 * its summary, `sluice status`, the metrics): a batch's dead letters are the records its source
 * could not decode plus the distinct records that made user code throw. A record is counted once
 * however many stages computed it: with two outputs over the same stream, both result stages
 * compute its partitions, and both write the record to `deadletter/<t>/stage<N>-part<P>.jsonl`.
 */
import type { ObjectStore } from '../../ports/object-store.ts';
import { layout, timeKey } from '../layout.ts';

/** The dead letters of a committed batch, as the manifest counts them. */
export function deadLettersOf(m: {
  readonly deadLettered?: number;
  readonly input: { readonly deadLetters: number };
}): number {
  return m.deadLettered ?? m.input.deadLetters;
}

/**
 * The distinct records set aside by tasks of batch `t`, read from its `deadletter/<t>/stage*`
 * objects: each (operator, record, reason) counts as often as the stage that saw it most often
 * saw it (a stage computes each partition of an RDD once, so that is the number of such records
 * in the RDD), not once per stage.
 */
export async function countTaskDeadLetters(store: ObjectStore, t: number): Promise<number> {
  const prefix = `deadletter/${timeKey(t)}/`;
  const perStage = new Map<string, Map<string, number>>();
  for (const key of await store.list(prefix)) {
    const m = /^stage(\d+)-part\d+\.jsonl$/.exec(key.slice(prefix.length));
    if (!m) continue;
    const bytes = await store.get(key);
    if (!bytes) continue;
    let counts = perStage.get(m[1]!);
    if (!counts) perStage.set(m[1]!, (counts = new Map()));
    for (const line of Buffer.from(bytes).toString('utf8').split('\n')) {
      if (!line) continue;
      let id = line;
      try {
        const d = JSON.parse(line) as { raw?: unknown; reason?: unknown; origin?: unknown };
        id = JSON.stringify([d.origin, d.raw, d.reason]);
      } catch {
        // not ours to judge: count the line as it is
      }
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  const most = new Map<string, number>();
  for (const counts of perStage.values())
    for (const [id, n] of counts) most.set(id, Math.max(most.get(id) ?? 0, n));
  let total = 0;
  for (const n of most.values()) total += n;
  return total;
}

/** Where a batch's dead letters are (for messages). */
export const deadLetterPrefix = (t: number): string => layout.deadLetter(t, '').replace(/\.jsonl$/, '');
