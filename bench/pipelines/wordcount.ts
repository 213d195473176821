/**
 * Benchmark WordCount (the D-Streams paper's WordCount, on 100-byte lines):
 *
 *   lines --flatMap(split ' ')--> words --map--> (word, 1) --reduceByKey(+)--> counts --foreachRDD(sum)
 *
 * The output operation only adds the counts up on the driver (no printing, no saving), so the
 * benchmark measures the engine, not a sink. The sums are kept in `tally` (batch time -> words)
 * so the benchmark can check that every word of every line was counted.
 */
import type { StreamingContext } from '../../shared/index.ts';
import { defaultGenerate } from '../../shared/local/embedded-runner.ts';

/** Words counted per batch, by batch time (filled on the driver by the output operation). */
export const tally = new Map<number, number>();

export default function wordCount(ctx: StreamingContext): void {
  ctx
    .inputStream<string>()
    .flatMap((line) => line.split(' '))
    .map((word): [string, number] => [word, 1])
    .reduceByKey((a, b) => a + b)
    .foreachRDD(async (rdd, timeMs) => {
      let words = 0;
      for (const kv of await rdd.collect()) words += kv[1];
      tally.set(timeMs, words);
    });
}

/** The seq-th input line: ~97 bytes of words drawn from a precomputed pool (cheap to generate). */
export function generate(seq: number): string {
  return defaultGenerate(seq);
}
