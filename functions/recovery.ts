/**
 * The recovery function, woken every few minutes. When no scheduler holds the lease but batches
 * were received and never committed (the scheduler died mid-batch), it takes the lease and
 * re-runs exactly those batches from their stored input, through the partition functions.
 *
 * @module
 */
import { ASLEEP_KEY } from '../aws/asleep-marker.ts';
import { LambdaInvoker, S3ObjectStore } from '../aws/index.ts';
import {
  BatchScheduler,
  catalog,
  DriverLease,
  type Invoker,
  LeaseHeldError,
  type ObjectStore,
  SluiceError,
  type Source,
  type TinyBatchOptions,
} from '../shared/engine.ts';
import { intEnv, jsonEnv, requireEnv, type SluiceEnv, sluiceEnv } from './lib/env.ts';
import { DEFAULT_PARTITION_TIMEOUT_MS, driverTaskTimeoutMs, LAMBDA_ENV } from './lib/env-names.ts';
import { buildContext, bundledPipeline, type PipelineModuleLike } from './lib/pipeline.ts';
import { emitMetrics, log } from './lib/telemetry.ts';

export interface RecoveryDeps {
  readonly module: PipelineModuleLike;
  readonly env: SluiceEnv;
  readonly partitionFunction: string;
  /** The partition function's timeout: the driver's task timeout follows it (`driverTaskTimeoutMs`). */
  readonly partitionTimeoutMs: number;
  readonly retainInputsMs?: number;
  /** Tiny batches re-run inside this function (issue 11; SLUICE_TINY_BATCH). */
  readonly tinyBatch?: false | TinyBatchOptions;
  readonly store?: ObjectStore;
  readonly invoker?: Invoker;
}

export interface RecoveryContext {
  readonly awsRequestId: string;
  getRemainingTimeInMillis(): number;
}

/** Recovery replays stored input only; it never takes new records from the queue. */
const noNewInput: Source<unknown> = {
  async receive() {
    throw new SluiceError('the recovery function only re-runs batches whose input is already stored');
  },
  describe: () => 'stored input only',
};

export function createRecoveryHandler(deps: RecoveryDeps) {
  return async (_event: unknown, context: RecoveryContext) => {
    const store = deps.store ?? new S3ObjectStore({ bucket: deps.env.bucket, prefix: deps.env.prefix });
    // a sleeping pipeline (functions/lib/sleep.ts) has nothing to recover: it fell asleep after
    // committing every batch, and a wake deletes the marker before it receives anything. One GET,
    // not a LIST of the lease and of the whole catalog (manifests/ grows a page a 1,000 batches)
    if (await store.get(ASLEEP_KEY)) return { status: 'asleep' };
    const latest = await new DriverLease(store, 'probe').latest();
    if (latest && !latest.released && Date.now() < latest.record.expiresAtMs) {
      log({ event: 'recovery.skip', reason: 'a scheduler holds the lease', holder: latest.record.owner });
      return { status: 'driver-alive', holder: latest.record.owner };
    }
    const { pending } = await catalog.snapshot(store);
    if (pending.length === 0) return { status: 'nothing-to-recover' };

    const ctx = await buildContext(deps.module, deps.env);
    const sources: Record<string, Source<unknown>> = {};
    for (const b of ctx.graph.inputs.values()) if (!b.factory) sources[b.name] = noNewInput;
    const invoker = deps.invoker ?? new LambdaInvoker({ functionName: deps.partitionFunction });
    const scheduler = new BatchScheduler(ctx, {
      store,
      invoker,
      sources,
      clock: 'manual',
      taskTimeoutMs: driverTaskTimeoutMs(deps.partitionTimeoutMs),
      retainInputsMs: deps.retainInputsMs,
      tinyBatch: deps.tinyBatch,
      lease: {
        owner: `recovery:${context.awsRequestId}`,
        durationMs: context.getRemainingTimeInMillis(),
        renew: false,
      },
      log: (e) => log(e),
    });
    try {
      await scheduler.start();
    } catch (err) {
      if (err instanceof LeaseHeldError) return { status: 'driver-alive', holder: err.holder.owner };
      throw err;
    }
    try {
      const manifests = await scheduler.run({ numBatches: pending.length });
      emitMetrics(deps.env.pipelineName, { RecoveredBatches: { value: manifests.length, unit: 'Count' } });
      log({ event: 'recovery.done', batches: manifests.map((m) => m.batchTimeMs) });
      return { status: 'recovered', batches: manifests.map((m) => m.batchTimeMs) };
    } finally {
      await scheduler.stop();
      if (!deps.invoker) await invoker.close();
    }
  };
}

export function recoveryDepsFromEnv(env: NodeJS.ProcessEnv = process.env): RecoveryDeps {
  return {
    module: bundledPipeline,
    env: sluiceEnv(env),
    partitionFunction: requireEnv(LAMBDA_ENV.partitionFunction, env),
    partitionTimeoutMs: intEnv(LAMBDA_ENV.partitionTimeoutMs, DEFAULT_PARTITION_TIMEOUT_MS, env),
    retainInputsMs: intEnv(LAMBDA_ENV.retainInputsMs, 7 * 24 * 3_600_000, env),
    tinyBatch: jsonEnv<false | TinyBatchOptions>(LAMBDA_ENV.tinyBatch, env),
  };
}

let handlerInstance: ReturnType<typeof createRecoveryHandler> | undefined;

export const handler = (event: unknown, context: RecoveryContext) => {
  handlerInstance ??= createRecoveryHandler(recoveryDepsFromEnv());
  return handlerInstance(event, context);
};
