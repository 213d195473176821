/**
 * Benchmark Grep (the D-Streams paper's Grep, on 100-byte lines): counts the lines that contain
 * a pattern, per batch.
 *
 *   lines --filter(includes PATTERN)--> matches --count--> one number per batch --foreachRDD(no-op)
 *
 * PATTERN is `with the`, which occurs in about 3.0% of the generated lines.
 */
import type { StreamingContext } from '../../shared/index.ts';
import { defaultGenerate } from '../../shared/local/embedded-runner.ts';

export const PATTERN = 'with the';

export default function grep(ctx: StreamingContext): void {
  ctx
    .inputStream<string>()
    .filter((line) => line.includes(PATTERN))
    .count()
    .foreachRDD(() => {});
}

/** The seq-th input line: ~97 bytes of words drawn from a precomputed pool (cheap to generate). */
export function generate(seq: number): string {
  return defaultGenerate(seq);
}
