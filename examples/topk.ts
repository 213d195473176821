/**
 * TopKCount, from the D-Streams paper: the 10 most frequent words of the last 30 seconds,
 * updated every second.
 *
 *   lines --flatMap/map--> (word, 1)
 *         --reduceByKeyAndWindow(+, -, 30 s, 1 s)--> (word, count in the window)
 *         --transform(top 10 per partition, then repartition(1) and the global top 10)--> print
 *
 * With an inverse function, each window is computed from the previous one: add the counts of
 * the batch entering the window, subtract those of the batch leaving it. Words whose count
 * falls to 0 would otherwise stay in the window state forever, so `filter` drops them.
 *
 *   npx sluice run examples/topk.ts --source generator --duration 40s
 */
import type { RDD, StreamingContext } from '../shared/index.ts';
import { wordLine } from './lib/demo-data.ts';

export const options = { batchIntervalMs: 1000, partitions: 2 };

export const K = 10;
export const WINDOW_MS = 30_000;
export const SLIDE_MS = 1_000;

/** Higher counts first; equal counts by word, so the top k is deterministic. */
const byCountDesc = (a: [string, number], b: [string, number]) =>
  b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

const topOf = (records: [string, number][]) => records.sort(byCountDesc).slice(0, K);

/** The top k of an RDD without collecting it: a top k per partition, then one over those. */
function topK(counts: RDD<[string, number]>): RDD<[string, number]> {
  return counts.mapPartitions(topOf).repartition(1).mapPartitions(topOf);
}

export default function topKCount(ctx: StreamingContext): void {
  const words = ctx
    .inputStream<string>()
    .flatMap((line) => line.split(/\s+/).filter((w) => w.length > 0))
    .map((word): [string, number] => [word, 1]);

  const windowCounts = words.reduceByKeyAndWindow((a, b) => a + b, {
    windowMs: WINDOW_MS,
    slideMs: SLIDE_MS,
    inverse: (a, b) => a - b,
    filter: ([, count]) => count > 0,
  });

  // transform gives the window's RDD: use RDD operations to sort it (collect is for the driver).
  windowCounts.transform(topK).print(K);
}

/** The seq-th line of the `--source generator` demo: ~100 bytes of Zipf-distributed words. */
export function generate(seq: number): string {
  return wordLine(seq);
}
