/**
 * WordCount, the first example of the D-Streams paper: counts the words of each batch.
 *
 *   lines --flatMap--> words --map--> (word, 1) --reduceByKey--> (word, count) per batch
 *
 * Run it with `npx sluice run examples/wordcount.ts --source generator --duration 10s`, or feed
 * it text: `--source file:<path>`, `--source stdin`, `--source http:<port>`.
 */
import type { StreamingContext } from '../shared/index.ts';
import { wordLine } from './lib/demo-data.ts';

/** Defaults for `sluice run` (overridable on the command line). */
export const options = { batchIntervalMs: 1000, partitions: 2 };

export default function wordCount(ctx: StreamingContext): void {
  // One record per line of text, from whatever source the runner binds.
  const lines = ctx.inputStream<string>();

  const counts = lines
    .flatMap((line) => line.split(/\s+/).filter((w) => w.length > 0))
    .map((word): [string, number] => [word, 1])
    .reduceByKey((a, b) => a + b);

  // Two output operations: each runs once per batch.
  counts.print();
  counts.saveAsJsonLines('wordcount'); // outputs/wordcount/dt=.../batch=<time>/part-NNNNN...
}

/** The seq-th line of the `--source generator` demo: ~100 bytes of Zipf-distributed words. */
export function generate(seq: number): string {
  return wordLine(seq);
}
