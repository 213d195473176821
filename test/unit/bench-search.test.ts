/**
 * The sustainable-rate search shared by `npm run bench` and `npm run bench:peers`
 * (bench/search.ts), against engines whose capacity is known: every trial at or below the
 * capacity passes, every one above fails.
 */
import { describe, expect, it } from 'vitest';
import { nice, type SearchParams, searchSustainable } from '../../bench/search.ts';

const params: SearchParams = {
  screenBatches: 3,
  measuredBatches: 10,
  fullTrials: 4,
  precision: 1.1,
  maxScreens: 8,
  minRate: 1_000,
  maxRate: 50_000_000,
};

function engine(capacity: number, flakyScreens = false) {
  const trials: { rate: number; batches: number; passed: boolean }[] = [];
  const run = async (rate: number, kind: 'screen' | 'full', batches: number) => {
    // a lucky screen: passes up to 1.5x the capacity on 3 batches, the full trial does not
    const passed = rate <= capacity * (flakyScreens && kind === 'screen' ? 1.5 : 1);
    trials.push({ rate, batches, passed });
    return { passed };
  };
  return { run, trials };
}

describe('searchSustainable', () => {
  for (const [capacity, start] of [
    [250_000, 100_000],
    [250_000, 900_000],
    [3_360_000, 200_000],
    [40_000, 40_000],
  ] as const) {
    it(`finds a capacity of ${capacity}/s from ${start}/s within the precision, never above it`, async () => {
      const { run, trials } = engine(capacity);
      const { best, failedAt } = await searchSustainable(run, start, params);
      expect(best).toBeDefined();
      expect(best!.rate).toBeLessThanOrEqual(capacity);
      expect(failedAt).toBeGreaterThan(capacity);
      // screens double or halve: the bracket is at most 2x, bisection narrows it
      expect(best!.rate).toBeGreaterThan(capacity / 2);
      const full = trials.filter((t) => t.batches === params.measuredBatches);
      expect(full.length).toBeLessThanOrEqual(params.fullTrials);
      expect(full.some((t) => t.passed && t.rate === best!.rate)).toBe(true);
    });
  }

  it('only a full trial makes a rate sustainable: a screen that passed by luck is re-checked', async () => {
    const { run } = engine(100_000, true);
    const { best } = await searchSustainable(run, 120_000, params);
    expect(best!.rate).toBeLessThanOrEqual(100_000);
  });

  it('reports no rate when even the minimum fails', async () => {
    const { run } = engine(10);
    const { best, failedAt } = await searchSustainable(run, 8_000, params);
    expect(best).toBeUndefined();
    expect(failedAt).toBe(params.minRate);
  });

  it('rounds rates to 3 significant digits', () => {
    expect(nice(123_456)).toBe(123_000);
    expect(nice(3_358_000)).toBe(3_360_000);
    expect(nice(0.2)).toBe(1);
  });
});
