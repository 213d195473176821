/**
 * Deterministic demo data for the examples' `generate(seq)` functions (`sluice run --source
 * generator`). Not a pipeline: a small PRNG seeded by the record number, and a Zipf-like
 * picker so that a few words/pages/users are much more frequent than the rest.
 */

/** A PRNG (mulberry32) seeded by `seed`: the same seed always gives the same sequence. */
export function rng(seed: number): () => number {
  let a = (Math.imul(seed, 0x9e3779b1) ^ 0x5bd1e995) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Picks items with probability proportional to 1 / rank^s (rank 1 is the first item). */
export function zipf<T>(items: readonly T[], s = 1.1): (random: () => number) => T {
  const cumulative: number[] = [];
  let total = 0;
  for (let i = 0; i < items.length; i++) cumulative.push((total += 1 / (i + 1) ** s));
  return (random) => {
    const x = random() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return items[lo]!;
  };
}

/** The vocabulary of the text examples, most frequent first. */
// biome-ignore format: a compact table
export const WORDS = [
  'the', 'stream', 'batch', 'data', 'spark', 'record', 'window', 'state', 'time', 'node',
  'task', 'fault', 'lineage', 'partition', 'shuffle', 'replica', 'driver', 'worker', 'latency', 'interval',
  'checkpoint', 'recovery', 'straggler', 'operator', 'reduce', 'join', 'map', 'filter', 'key', 'value',
  'count', 'slide', 'queue', 'storage', 'memory', 'disk', 'network', 'cluster', 'scheduler', 'throughput',
  'deterministic', 'parallel', 'upstream', 'backup', 'micro', 'discretized', 'resilient', 'dataset', 'graph', 'event',
] as const;

const pickWord = zipf(WORDS);

/** A line of Zipf-distributed words, about `bytes` characters long, the same for the same `seq`. */
export function wordLine(seq: number, bytes = 100): string {
  const random = rng(seq);
  const words: string[] = [];
  let length = -1;
  while (length < bytes - 8) {
    const w = pickWord(random);
    words.push(w);
    length += w.length + 1;
  }
  return words.join(' ');
}
