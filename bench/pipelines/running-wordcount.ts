/**
 * Benchmark pipeline with state: running word counts (updateStateByKey) beside the per-batch
 * counts, so that losing a stored partition means recomputing state from lineage.
 */
import type { StreamingContext } from '../../shared/index.ts';
import { defaultGenerate } from '../../shared/local/embedded-runner.ts';

export default function runningWordCount(ctx: StreamingContext): void {
  const pairs = ctx
    .inputStream<string>()
    .flatMap((line) => line.split(' '))
    .map((word): [string, number] => [word, 1]);
  pairs
    .updateStateByKey<string, number, number>((values, total) => (total ?? 0) + values.length, {
      name: 'totals',
    })
    .foreachRDD(() => {});
  pairs.reduceByKey((a, b) => a + b).foreachRDD(() => {});
}

export function generate(seq: number): string {
  return defaultGenerate(seq);
}
