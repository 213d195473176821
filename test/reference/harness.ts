/**
 * Runs one pipeline on both the engine (runBatches / runBatches2) and the reference evaluator, and
 * compares the outputs. The pipeline is written once, typed against the engine's DStream API; the
 * reference mirrors that API, so the same function runs on its streams too.
 *
 * This file imports the engine; evaluator.ts and keys.ts do not.
 */
import { expect } from 'vitest';
import { type DStream, runBatches, runBatches2, type StreamingContext } from '../../shared/index.ts';
import { type RefContext, type RefStream, refRun, refRun2 } from './evaluator.ts';
import { unordered, unorderedCogroups, unorderedGroups } from './keys.ts';

export interface RunOptions {
  batchIntervalMs?: number;
  numBatches?: number;
  partitions?: number;
}

/**
 * How to compare the two outputs batch by batch:
 * `ordered` where Spark defines the order (narrow operations on one input, union, window),
 * `unordered` after a shuffle, `groups` / `cogroups` also ignore the order of grouped values.
 */
export type Comparison = 'ordered' | 'unordered' | 'groups' | 'cogroups';

export function normalize(batches: unknown[][], how: Comparison): unknown[][] {
  switch (how) {
    case 'ordered':
      return batches;
    case 'unordered':
      return unordered(batches);
    case 'groups':
      return unorderedGroups(batches as [unknown, unknown[]][][]);
    case 'cogroups':
      return unorderedCogroups(batches as [unknown, [unknown[], unknown[]]][][]);
  }
}

export type Build<T, V> = (stream: DStream<T>, ctx: StreamingContext) => DStream<V>;
export type Build2<A, B, V> = (a: DStream<A>, b: DStream<B>, ctx: StreamingContext) => DStream<V>;

/** The same pipeline, seen as a pipeline on reference streams (the reference mirrors the API). */
function asRef<T, V>(build: Build<T, V>): (s: RefStream<T>, ctx: RefContext) => RefStream<V> {
  return build as unknown as (s: RefStream<T>, ctx: RefContext) => RefStream<V>;
}

function asRef2<A, B, V>(
  build: Build2<A, B, V>,
): (a: RefStream<A>, b: RefStream<B>, ctx: RefContext) => RefStream<V> {
  return build as unknown as (a: RefStream<A>, b: RefStream<B>, ctx: RefContext) => RefStream<V>;
}

export interface Outputs<V> {
  engine: V[][];
  reference: V[][];
}

export async function runBoth<T, V>(
  input: T[][],
  build: Build<T, V>,
  options: RunOptions = {},
): Promise<Outputs<V>> {
  const reference = refRun(input, asRef(build), options);
  const engine = await runBatches(input, build, options);
  return { engine, reference };
}

export async function runBoth2<A, B, V>(
  input1: A[][],
  input2: B[][],
  build: Build2<A, B, V>,
  options: RunOptions = {},
): Promise<Outputs<V>> {
  const reference = refRun2(input1, input2, asRef2(build), options);
  const engine = await runBatches2(input1, input2, build, options);
  return { engine, reference };
}

/** Runs on both and expects equal outputs (after `compare`); returns the engine's output. */
export async function expectSame<T, V>(
  input: T[][],
  build: Build<T, V>,
  options: RunOptions & { compare?: Comparison } = {},
): Promise<V[][]> {
  const { compare = 'unordered', ...run } = options;
  const { engine, reference } = await runBoth(input, build, run);
  expect(normalize(engine, compare), describeRun(input, run)).toEqual(normalize(reference, compare));
  return engine;
}

/** Two-input variant of {@link expectSame}. */
export async function expectSame2<A, B, V>(
  input1: A[][],
  input2: B[][],
  build: Build2<A, B, V>,
  options: RunOptions & { compare?: Comparison } = {},
): Promise<V[][]> {
  const { compare = 'unordered', ...run } = options;
  const { engine, reference } = await runBoth2(input1, input2, build, run);
  expect(normalize(engine, compare), describeRun([input1, input2], run)).toEqual(
    normalize(reference, compare),
  );
  return engine;
}

function describeRun(input: unknown, options: RunOptions): string {
  return `engine vs reference, options ${JSON.stringify(options)}, input ${JSON.stringify(input)}`;
}
