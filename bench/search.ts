/**
 * The search for the sustainable rate, shared by `npm run bench` (run.ts) and `npm run
 * bench:peers` (peers.ts): doubling (or halving) screening trials find a bracket [pass, fail]
 * within a factor of 2; full trials verify the lower bracket and bisect geometrically; the highest
 * rate that passed a full trial is the sustainable rate. Both also take its parameters and the
 * trials' warm-up from here, so their figures compare.
 *
 * @module
 */

export interface SearchParams {
  /** Measured batches of a screening trial (the doubling/halving phase). */
  readonly screenBatches: number;
  /** Measured batches of a full trial. */
  readonly measuredBatches: number;
  /** Full trials per configuration: verifying the screened lower bracket, then bisection. */
  readonly fullTrials: number;
  /** Bisection stops once the lowest failure is within this factor of the highest pass. */
  readonly precision: number;
  readonly maxScreens: number;
  readonly minRate: number;
  readonly maxRate: number;
}

/** The search's parameters: a `quick` run screens and verifies with fewer batches. */
export function searchParams(quick: boolean, measuredBatches: number): SearchParams {
  return {
    screenBatches: quick ? 3 : 5,
    measuredBatches,
    fullTrials: quick ? 3 : 4,
    precision: 1.1,
    maxScreens: 8,
    minRate: 1_000,
    maxRate: 50_000_000,
  };
}

/**
 * A trial's warm-up at `intervalMs`: at least `minWarmup` batches (and 2 s, 1 s when `quick`),
 * then until the rate is steady, at most `maxWarmup` batches.
 */
export function warmupOf(intervalMs: number, quick: boolean): { minWarmup: number; maxWarmup: number } {
  const minWarmup = Math.max(quick ? 2 : 3, Math.ceil((quick ? 1000 : 2000) / intervalMs));
  return { minWarmup, maxWarmup: minWarmup + Math.max(10, Math.ceil(8000 / intervalMs)) };
}

/** Rounds a rate to 3 significant digits. */
export function nice(rate: number): number {
  const p = 10 ** Math.max(0, Math.floor(Math.log10(rate)) - 2);
  return Math.max(1, Math.round(rate / p) * p);
}

/**
 * Runs the search with `run(rate, kind, batches)` as the trial. Returns the best full trial's
 * result, and `failedAt`: the lowest rate above it that failed (screens included).
 */
export async function searchSustainable<R extends { readonly passed: boolean }>(
  run: (rate: number, kind: 'screen' | 'full', batches: number) => Promise<R>,
  startRate: number,
  search: SearchParams,
): Promise<{ best?: { rate: number; result: R }; failedAt?: number }> {
  let best: { rate: number; result: R } | undefined;
  const failures: number[] = [];
  const trial = async (rate: number, kind: 'screen' | 'full') => {
    const result = await run(rate, kind, kind === 'screen' ? search.screenBatches : search.measuredBatches);
    if (kind === 'full' && result.passed && (!best || rate > best.rate)) best = { rate, result };
    if (!result.passed) failures.push(rate);
    return result.passed;
  };

  let lo: number | undefined;
  let hi: number | undefined;
  let rate = nice(Math.max(search.minRate, startRate));
  for (let i = 0; i < search.maxScreens; i++) {
    if (await trial(rate, 'screen')) {
      lo = rate;
      if (hi !== undefined || rate >= search.maxRate) break;
      rate = nice(Math.min(search.maxRate, rate * 2));
    } else {
      hi = rate;
      if (lo !== undefined || rate <= search.minRate) break;
      rate = nice(Math.max(search.minRate, rate / 2));
    }
  }
  // Full trials. First verify the screened lower bracket (a screen of a few batches can pass by
  // luck), halving until a full trial passes; then bisect (geometrically) between the highest full
  // pass and the lowest failure until they are within `precision` or the budget is spent.
  let a: number | undefined;
  let b = hi;
  let next = lo ?? search.minRate;
  for (let i = 0; i < search.fullTrials; i++) {
    if (await trial(next, 'full')) a = next;
    else b = next;
    if (a === undefined) {
      next = nice(next / 2);
      if (next < search.minRate) break;
      continue;
    }
    if (b === undefined || b / a <= search.precision) break;
    next = nice(Math.sqrt(a * b));
    if (next <= a || next >= b) break;
  }
  const floor = best?.rate ?? 0;
  const above = failures.filter((r) => r > floor);
  return { ...(best ? { best } : {}), ...(above.length > 0 ? { failedAt: Math.min(...above) } : {}) };
}

/** A figure for the benches' tables: thousands separated, `-` when there is none. */
export const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined || !Number.isFinite(n)
    ? '-'
    : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
