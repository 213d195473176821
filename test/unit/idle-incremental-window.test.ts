/**
 * An incremental window (inverse function) carries its result from slide to slide, stored only on
 * slide batches: the idle fast path must not skip it (found by the random-pipeline property test:
 * countByValueAndWindow with a window shorter than its slide lost its last output).
 */
import { it } from 'vitest';
import { expectSame } from '../reference/harness.ts';

it('countByValueAndWindow (window shorter than the slide) agrees with the reference over empty batches', async () => {
  await expectSame(
    [[[0, 0]], []] as [number, number][][],
    (s) => s.countByValueAndWindow({ windowMs: 100, slideMs: 200 }),
    { partitions: 1, batchIntervalMs: 100, numBatches: 8, compare: 'unordered' },
  );
});
