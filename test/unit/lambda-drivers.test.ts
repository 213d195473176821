/**
 * The Lambda drivers (scheduler and recovery functions) run in this process against a memory
 * store, their partition tasks handed to the partition function's handler: what each driver asks
 * of its invoker follows the environment the construct sets.
 */
import { describe, expect, it, vi } from 'vitest';
import { ASLEEP_KEY } from '../../aws/asleep-marker.ts';
import { sluiceEnv } from '../../functions/lib/env.ts';
import { LAMBDA_ENV, TASK_TIMEOUT_SLACK_MS } from '../../functions/lib/env-names.ts';
import { buildContext, type PipelineModuleLike } from '../../functions/lib/pipeline.ts';
import { createPartitionHandler } from '../../functions/partition.ts';
import { createRecoveryHandler, recoveryDepsFromEnv } from '../../functions/recovery.ts';
import { createSchedulerHandler, schedulerDepsFromEnv } from '../../functions/scheduler.ts';
import { CountingObjectStore } from '../../shared/core/counting-store.ts';
import {
  type InvokeOptions,
  type Invoker,
  layout,
  MemoryObjectStore,
  type Source,
  type StreamingContext,
  type TaskResult,
  type TaskSpec,
} from '../../shared/engine.ts';

// The handlers import the user's pipeline as `sluice-pipeline` (an esbuild alias in the bundles);
// these tests pass their own module in the deps instead.
vi.mock('sluice-pipeline', () => ({ default: () => {} }));

const wordCount: PipelineModuleLike = {
  default(ctx: StreamingContext) {
    ctx
      .inputStream<string>()
      .flatMap((l) => l.split(' '))
      .map((w): [string, number] => [w, 1])
      .reduceByKey((a, b) => a + b)
      .saveAsJsonLines('counts');
  },
};

/** Two lines per batch, forever. */
function lines(): Source<string> {
  return {
    async receive() {
      return { records: ['a b', 'b c'], deadLetters: [] };
    },
    describe: () => 'test lines',
  };
}

/** Runs each task on the partition function's handler, recording the timeout the driver gave it. */
function partitionInvoker(store: MemoryObjectStore, env: NodeJS.ProcessEnv) {
  const partition = createPartitionHandler({ ...schedulerDepsFromEnv(env), module: wordCount, store });
  const timeouts: number[] = [];
  const invoker: Invoker = {
    concurrency: 4,
    async invoke(spec: TaskSpec, options: InvokeOptions): Promise<TaskResult> {
      timeouts.push(options.timeoutMs);
      return (await partition(spec)) as TaskResult;
    },
    close: async () => {},
    describe: () => 'the partition handler, in this process',
  };
  return { invoker, timeouts };
}

function lambdaEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    [LAMBDA_ENV.bucket]: 'unused',
    [LAMBDA_ENV.batchIntervalMs]: '100',
    [LAMBDA_ENV.partitions]: '2',
    [LAMBDA_ENV.queueUrl]: 'unused',
    [LAMBDA_ENV.partitionFunction]: 'unused',
    [LAMBDA_ENV.runMsBeforeTimeout]: '0',
    ...extra,
  };
}

function lambdaContext(runMs: number) {
  const deadline = Date.now() + runMs;
  return { awsRequestId: 'test', getRemainingTimeInMillis: () => deadline - Date.now() };
}

describe('the scheduler function', () => {
  it("gives each partition task the partition function's timeout (plus slack), not a fixed 2 minutes", async () => {
    const env = lambdaEnv({ [LAMBDA_ENV.partitionTimeoutMs]: '600000' });
    const store = new MemoryObjectStore();
    const { invoker, timeouts } = partitionInvoker(store, env);
    const handler = createSchedulerHandler({
      ...schedulerDepsFromEnv(env),
      module: wordCount,
      store,
      source: lines(),
      invoker,
      tinyBatch: false, // the partition tasks are the subject (issue 11: tiny batches run in the scheduler)
    });
    const out = (await handler({}, lambdaContext(1_000))) as { status: string; batches: number };
    expect(out.status).toBe('handed-over');
    expect(out.batches).toBeGreaterThan(0);
    expect(timeouts.length).toBeGreaterThan(0);
    expect(new Set(timeouts)).toEqual(new Set([600_000 + TASK_TIMEOUT_SLACK_MS]));
    expect((await store.list('outputs/')).length).toBeGreaterThan(0);
  });

  it("without the variable, uses the construct's default partition timeout", () => {
    const deps = schedulerDepsFromEnv(lambdaEnv({}));
    expect(deps.partitionTimeoutMs).toBe(60_000);
  });

  it('a bad partition timeout fails at start-up, naming the variable', () => {
    expect(() => schedulerDepsFromEnv(lambdaEnv({ [LAMBDA_ENV.partitionTimeoutMs]: '1 min' }))).toThrow(
      /SLUICE_PARTITION_TIMEOUT_MS/,
    );
  });

  it('SLUICE_METRICS_API: off unless 1, and a bad value fails at start-up, naming the variable', () => {
    expect(schedulerDepsFromEnv(lambdaEnv({})).metricsApi).toBeUndefined();
    expect(schedulerDepsFromEnv(lambdaEnv({ [LAMBDA_ENV.metricsViaApi]: '0' })).metricsApi).toBeUndefined();
    expect(schedulerDepsFromEnv(lambdaEnv({ [LAMBDA_ENV.metricsViaApi]: '1' })).metricsApi).toBeDefined();
    expect(() => schedulerDepsFromEnv(lambdaEnv({ [LAMBDA_ENV.metricsViaApi]: 'yes please' }))).toThrow(
      /SLUICE_METRICS_API.*must be 1 \(on\) or 0 \(off\), got 'yes please'/,
    );
  });
});

describe('the recovery function', () => {
  it("re-runs an uncommitted batch with the partition function's timeout", async () => {
    const env = lambdaEnv({ [LAMBDA_ENV.partitionTimeoutMs]: '300000' });
    const store = new MemoryObjectStore();
    // A scheduler runs some batches; then one batch's commit is lost, as if it died before it.
    const first = partitionInvoker(store, env);
    await createSchedulerHandler({
      ...schedulerDepsFromEnv(env),
      module: wordCount,
      store,
      source: lines(),
      invoker: first.invoker,
    })({}, lambdaContext(600));
    const manifests = await store.list(layout.manifestsPrefix());
    expect(manifests.length).toBeGreaterThan(0);
    await store.delete(manifests.at(-1)!);

    const { invoker, timeouts } = partitionInvoker(store, env);
    const out = (await createRecoveryHandler({
      ...recoveryDepsFromEnv(env),
      module: wordCount,
      store,
      invoker,
      tinyBatch: false,
    })({}, lambdaContext(60_000))) as { status: string; batches: number[] };
    expect(out.status).toBe('recovered');
    expect(out.batches).toHaveLength(1);
    expect(timeouts.length).toBeGreaterThan(0);
    expect(new Set(timeouts)).toEqual(new Set([300_000 + TASK_TIMEOUT_SLACK_MS]));
  });

  it('returns after one GET while the pipeline sleeps: no LIST of the lease or of the catalog', async () => {
    const env = lambdaEnv({});
    const memory = new MemoryObjectStore();
    const store = new CountingObjectStore(memory);
    await memory.put(
      ASLEEP_KEY,
      new TextEncoder().encode(JSON.stringify({ asleepAtMs: 0, lastBatchMs: null, wakeAtMs: null })),
    );
    const out = (await createRecoveryHandler({ ...recoveryDepsFromEnv(env), module: wordCount, store })(
      {},
      lambdaContext(60_000),
    )) as { status: string };
    expect(out.status).toBe('asleep');
    expect(store.since({ get: 0, put: 0, list: 0, delete: 0, bytesRead: 0, bytesWritten: 0 })).toMatchObject({
      get: 1,
      list: 0,
      put: 0,
    });
    // awake (no marker) it looks for uncommitted batches as before
    await memory.delete(ASLEEP_KEY);
    const awake = (await createRecoveryHandler({ ...recoveryDepsFromEnv(env), module: wordCount, store })(
      {},
      lambdaContext(60_000),
    )) as { status: string };
    expect(awake.status).toBe('nothing-to-recover');
  });
});

describe("a pipeline module's options on AWS", () => {
  const withPartitions = (partitions: number): PipelineModuleLike => ({
    ...wordCount,
    options: { partitions },
  });
  const env = (vars: Record<string, string>) => sluiceEnv({ [LAMBDA_ENV.bucket]: 'b', ...vars });

  it("honours the module's options.partitions, as sluice run does, unless the construct sets partitions", async () => {
    // the construct's default (8) applies only when the module says nothing
    const defaults = { [LAMBDA_ENV.defaultPartitions]: '8' };
    expect((await buildContext(withPartitions(5), env(defaults))).defaultPartitions).toBe(5);
    expect((await buildContext(wordCount, env(defaults))).defaultPartitions).toBe(8);
    const explicit = { ...defaults, [LAMBDA_ENV.partitions]: '3' };
    expect((await buildContext(withPartitions(5), env(explicit))).defaultPartitions).toBe(3);
  });
});
