import { isThrottle } from '../errors.ts';

/**
 * Concurrency that adapts to what the invoker sustains: additive increase, multiplicative decrease
 * (AIMD, as TCP's congestion window). Every success raises the limit by 1/limit (about one slot per
 * round of successful invocations), up to `max`; a throttled invocation halves it, down to `min`.
 * One burst of throttles halves it once: a throttle only lowers the limit if its invocation started
 * after the last decrease (invocations already in flight saw the old limit).
 */
export interface AdaptiveLimiterOptions {
  /** Upper bound and starting limit (the invoker's concurrency). */
  readonly max: number;
  /** Lower bound (default 1). */
  readonly min?: number;
  /** Multiplicative decrease factor on a throttle (default 0.5). */
  readonly decrease?: number;
  /** Which failures count as throttles (default: `isThrottle`). */
  readonly isThrottle?: (err: unknown) => boolean;
}

/** The range of the limit while someone watched (a stage, a batch). */
export interface ConcurrencyRange {
  min: number;
  max: number;
}

export class AdaptiveLimiter {
  readonly max: number;
  readonly min: number;
  private readonly factor: number;
  private readonly throttleTest: (err: unknown) => boolean;
  private value: number;
  private active = 0;
  private epoch = 0;
  private readonly queue: (() => void)[] = [];
  private readonly watchers = new Set<ConcurrencyRange>();
  /** Counters since construction. */
  readonly stats = { throttles: 0, decreases: 0, successes: 0 };

  constructor(options: AdaptiveLimiterOptions) {
    this.max = Math.max(1, Math.floor(options.max));
    this.min = Math.min(this.max, Math.max(1, Math.floor(options.min ?? 1)));
    this.factor = options.decrease ?? 0.5;
    if (!(this.factor > 0 && this.factor < 1)) throw new RangeError('decrease must be between 0 and 1');
    this.throttleTest = options.isThrottle ?? isThrottle;
    this.value = this.max;
  }

  /** How many invocations may be in flight now. */
  get limit(): number {
    return Math.floor(this.value);
  }

  get inFlight(): number {
    return this.active;
  }

  /** Runs `fn` once fewer than `limit` run; a throttle it throws lowers the limit, a success raises it. */
  async run<R>(fn: () => Promise<R>): Promise<R> {
    if (this.active >= this.limit || this.queue.length > 0) {
      await new Promise<void>((r) => this.queue.push(r)); // pump() counted this one as active
    } else this.active++;
    const startedEpoch = this.epoch;
    try {
      const result = await fn();
      this.onSuccess();
      return result;
    } catch (err) {
      if (this.throttleTest(err)) this.onThrottle(startedEpoch);
      throw err;
    } finally {
      this.active--;
      this.pump();
    }
  }

  /** Watches the limit's range until the returned function is called (which returns the range). */
  watch(): () => ConcurrencyRange {
    const range = { min: this.limit, max: this.limit };
    this.watchers.add(range);
    return () => {
      this.watchers.delete(range);
      return { ...range };
    };
  }

  private onSuccess(): void {
    this.stats.successes++;
    if (this.value >= this.max) return;
    this.set(Math.min(this.max, this.value + 1 / this.limit));
  }

  private onThrottle(startedEpoch: number): void {
    this.stats.throttles++;
    if (startedEpoch !== this.epoch) return; // already lowered for this burst
    this.epoch++;
    this.stats.decreases++;
    this.set(Math.max(this.min, this.value * this.factor));
  }

  private set(value: number): void {
    this.value = value;
    const limit = this.limit;
    for (const w of this.watchers) {
      if (limit < w.min) w.min = limit;
      if (limit > w.max) w.max = limit;
    }
    this.pump();
  }

  private pump(): void {
    // a woken waiter's slot is taken here, on its behalf, so no one can overtake it
    while (this.queue.length > 0 && this.active < this.limit) {
      this.active++;
      this.queue.shift()!();
    }
  }
}

/** Exponential backoff with full jitter: a uniform wait in [0, min(cap, base * 2^n)). */
export function fullJitterMs(
  baseMs: number,
  capMs: number,
  n: number,
  random: () => number = Math.random,
): number {
  return random() * Math.min(capMs, baseMs * 2 ** Math.max(0, n));
}
