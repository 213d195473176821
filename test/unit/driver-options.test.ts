/**
 * The driver's options resolved once (issue 10, item 4) and retention asked of the streams
 * (item 1): a bad option fails at construction naming it; defaults come from one object; each
 * DStream says how far back its RDDs are read (`rememberMs`, as Spark's remember duration).
 */
import { describe, expect, it } from 'vitest';
import { Retention } from '../../shared/core/driver/retention.ts';
import { DRIVER_DEFAULTS, resolveDriverOptions } from '../../shared/core/driver.ts';
import {
  BatchScheduler,
  ConfigError,
  type Invoker,
  MemoryObjectStore,
  StreamingContext,
} from '../../shared/index.ts';

/** No task runs in these tests: the invoker is never called. */
const invoker: Invoker = {
  concurrency: 1,
  invoke: async () => {
    throw new Error('no task runs here');
  },
  close: async () => {},
  describe: () => 'none',
};
const base = () => ({ store: new MemoryObjectStore(), invoker });

describe("the driver's options", () => {
  it('fills every default from one object', () => {
    const o = resolveDriverOptions(base());
    expect(o).toMatchObject({
      clock: DRIVER_DEFAULTS.clock,
      taskTimeoutMs: DRIVER_DEFAULTS.taskTimeoutMs,
      maxTaskAttempts: DRIVER_DEFAULTS.maxTaskAttempts,
      retainInputsMs: DRIVER_DEFAULTS.retainInputsMs,
      checkpointEvery: DRIVER_DEFAULTS.checkpointEvery,
      backpressure: true,
      parallelRecovery: true,
    });
  });

  it('a bad option fails when the driver is made, naming the option', () => {
    const ctx = new StreamingContext({ batchIntervalMs: 1000 });
    for (const [options, name] of [
      [{ taskTimeoutMs: 0 }, 'taskTimeoutMs'],
      [{ checkpointEvery: -1 }, 'checkpointEvery'],
      [{ clock: 'sundial' }, 'clock'],
      [{ lease: { durationMs: 0 } }, 'lease.durationMs'],
    ] as const) {
      let err: unknown;
      try {
        new BatchScheduler(ctx, { ...base(), ...(options as object) });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).option).toBe(name);
    }
  });
});

describe('retention asked of the streams', () => {
  it("a window's parent is remembered for the window and its slide; a state stream for its previous RDD", () => {
    const ctx = new StreamingContext({ batchIntervalMs: 1000 });
    const words = ctx.inputStream<string>().map((w): [string, number] => [w, 1]);
    const windowed = words.window(5000, 2000);
    windowed.foreachRDD(() => {});
    // the window reads 5 s back from each of its batches, which are 2 s apart: plus one interval
    expect(words.rememberMs).toBe(2000 + 5000 + 1000);
    expect(windowed.rememberMs).toBe(2000);
    const state = words.updateStateByKey<string, number, number>((vs, s) => (s ?? 0) + vs.length);
    state.foreachRDD(() => {});
    expect(state.rememberMs).toBe(2000);
    const retention = new Retention(ctx, new MemoryObjectStore(), { checkpointEvery: 10, retainInputsMs: 1 });
    ctx.graph.freeze();
    expect(retention.historyMs).toBe(8000);
    // inputs stay as long as recomputing from the oldest kept checkpoint may need them
    expect(retention.inputRetentionMs).toBe(8000 + 2 * 10 * 1000);
  });

  it('a window of a window adds up, as Spark adds each parentRememberDuration', () => {
    const ctx = new StreamingContext({ batchIntervalMs: 1000 });
    const input = ctx.inputStream<number>();
    const outer = input.window(3000).window(4000);
    outer.foreachRDD(() => {});
    // outer remembers 1 s; the inner window 1 + 4 + 1 s; the input 6 + 3 + 1 s
    expect(input.rememberMs).toBe(10_000);
  });
});
