/**
 * The chaos suite: every example pipeline under many randomized fault schedules (failed tasks,
 * killed workers, stragglers, driver crashes, deleted and corrupted stored partitions) on the
 * embedded runner. Every committed output must equal the fault-free run's.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import * as grep from '../../examples/grep.ts';
import * as joinStatic from '../../examples/join-static.ts';
import * as pageviews from '../../examples/pageviews.ts';
import * as sessions from '../../examples/sessions.ts';
import * as topk from '../../examples/topk.ts';
import * as wordcount from '../../examples/wordcount.ts';
import { chance, emptyFaultCounts, type FaultCounts, type FaultOptions } from '../../shared/core/faults.ts';
import { MemoryObjectStore, type StreamingContext } from '../../shared/index.ts';
import { observable, runRacingDrivers, runWithFaults } from '../chaos/harness.ts';

interface Example {
  default: (ctx: StreamingContext) => void;
  generate: (seq: number) => string;
}

const examples: Record<string, Example> = { wordcount, grep, topk, pageviews, sessions, joinStatic };
const RUNS_PER_EXAMPLE = Number(process.env.SLUICE_CHAOS_RUNS ?? 5);
const BATCHES = 14;
const totals = { runs: 0, faults: emptyFaultCounts() };

function inputFor(example: Example, seed: number): string[][] {
  return Array.from({ length: BATCHES - 2 }, (_, b) =>
    Array.from({ length: 15 + Math.floor(chance(seed, 'size', b) * 40) }, (_, i) =>
      example.generate(seed * 10_000 + b * 100 + i),
    ),
  );
}

function scheduleFor(seed: number): FaultOptions {
  const r = (what: string, max: number) => Math.round(chance(seed, what) * max * 100) / 100;
  return {
    seed,
    failTasks: r('fail', 0.25),
    killWorkers: r('kill', 0.15),
    slowTasks: r('slow', 0.15),
    slowFactor: 4,
    crashDriver: r('crash', 0.25),
    deletePartitions: r('delete', 0.3),
    corruptBlocks: r('corrupt', 0.15),
    // overload: refused invocations (any try) and a slow store with occasional time-outs
    throttleTasks: r('throttle', 0.5),
    slowStore: r('slowStore', 0.2),
    slowStoreMs: 2,
  };
}

function storeFor(name: string): MemoryObjectStore {
  const store = new MemoryObjectStore();
  if (name === 'joinStatic') {
    void store.put(
      'datasets/pages.jsonl',
      readFileSync(new URL('../../examples/datasets/pages.jsonl', import.meta.url)),
    );
  }
  return store;
}

function injected(f: FaultCounts): number {
  return Object.values(f).reduce((a, b) => a + b, 0);
}

afterAll(() => {
  const f = totals.faults;
  const sum = Object.values(f).reduce((a, b) => a + b, 0);
  console.log(
    `chaos: survived ${totals.runs} runs with ${sum} injected faults (${f.failedTasks} failed tasks, ${f.killedWorkers} killed workers, ` +
      `${f.slowTasks} stragglers, ${f.driverCrashes} driver crashes, ${f.deletedPartitions} deleted partitions, ` +
      `${f.corruptedBlocks} corrupted blocks, ${f.throttledTasks} throttled invocations, ${f.slowStoreRequests} slow store requests ` +
      `of which ${f.storeTimeouts} timed out, ${f.longBatches} long batches); every output equal to the fault-free run`,
  );
});

describe.each(Object.keys(examples))('chaos: %s', (name) => {
  const example = examples[name]!;
  it.each(Array.from({ length: RUNS_PER_EXAMPLE }, (_, i) => 1000 + i * 37 + name.length))(
    'fault schedule %i gives the fault-free outputs',
    async (seed) => {
      const input = inputFor(example, seed);
      const reference = await runWithFaults(
        example.default,
        { input },
        { numBatches: BATCHES, store: storeFor(name) },
      );
      const faulty = await runWithFaults(
        example.default,
        { input },
        {
          numBatches: BATCHES,
          store: storeFor(name),
          faults: scheduleFor(seed),
          speculation: { minRuntimeMs: 5 },
        },
      );
      expect(faulty.conflicts).toEqual([]);
      expect(await observable(faulty)).toEqual(await observable(reference));
      // a schedule that injected nothing proves nothing: it fails
      expect(injected(faulty.faults)).toBeGreaterThan(0);
      totals.runs++;
      for (const k of Object.keys(totals.faults) as (keyof FaultCounts)[])
        totals.faults[k] += faulty.faults[k];
    },
  );
});

// Two drivers racing on one store: each operator restarts its driver whenever it dies, is fenced
// or finds the lease taken; drivers stall past their lease (longBatch) while the other takes over.
// The fenced driver must commit nothing: every input record is counted exactly once.
describe.each(['wordcount', 'sessions'])('chaos: two drivers racing on one store (%s)', (name) => {
  const example = examples[name]!;
  it.each([2001, 2002])('schedule %i: exact totals, outputs of the single-driver run', async (seed) => {
    const input = inputFor(example, seed);
    const reference = await runWithFaults(example.default, { input }, { numBatches: BATCHES });
    const race = await runRacingDrivers(
      example.default,
      { input },
      {
        drivers: 2,
        numBatches: BATCHES,
        leaseMs: 150,
        faults: { seed, longBatch: 0.2, failTasks: 0.1, crashDriver: 0.05 },
      },
    );
    expect(race.conflicts).toEqual([]);
    const total = input.reduce((n, batch) => n + batch.length, 0);
    expect((await observable(race)).records).toBe(total);
    expect(await observable(race)).toEqual(await observable(reference));
    // the race did happen: drivers stalled past their lease and were fenced
    expect(race.faults.longBatches).toBeGreaterThan(0);
    expect(race.fenced).toBeGreaterThan(0);
    totals.runs++;
    for (const k of Object.keys(totals.faults) as (keyof FaultCounts)[]) totals.faults[k] += race.faults[k];
  });
});

describe('chaos totals', () => {
  // runs last (tests of a file run in order): the schedules together injected every kind of fault
  it('every kind of fault was injected', () => {
    expect(totals.runs).toBeGreaterThan(0);
    if (totals.runs < 10) return; // a short run (SLUICE_CHAOS_RUNS) draws too few schedules for every kind
    const f = totals.faults;
    for (const kind of [
      'failedTasks',
      'killedWorkers',
      'slowTasks',
      'driverCrashes',
      'deletedPartitions',
      'corruptedBlocks',
      'throttledTasks',
      'slowStoreRequests',
      'longBatches',
    ] as const) {
      expect(f[kind], kind).toBeGreaterThan(0);
    }
  });
});
