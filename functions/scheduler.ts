/**
 * The scheduler function, woken every minute by EventBridge. It takes the driver lease in S3
 * (until its own deadline), resumes after the last committed batch and runs consecutive batches
 * (SQS → S3 input blocks → partition functions → manifest) until close to its timeout, then
 * hands the lease over. A wake-up while another invocation holds the lease returns at once.
 * A transient failure (throttling, S3 SlowDown, a batch that kept failing for a retryable cause)
 * does not make the invocation throw: it is logged, counted (FailedBatches) and the function returns
 * `{status: 'failed-transient'}`, so the next tick resumes where this one stopped. Only a failure
 * that a retry cannot fix (an incompatible store, a bug marked not retryable) is thrown. After
 * `idleAfter` quiet it sleeps (functions/lib/sleep.ts); a producer's nudge (`NUDGE_EVENT`, an
 * asynchronous invoke) wakes it before the next tick.
 *
 * @module
 */

import { isNudge } from '../aws/asleep-marker.ts';
import {
  LambdaInvoker,
  S3ObjectStore,
  SQS_MESSAGE_FORMATS,
  type SqsMessageFormat,
  SqsSource,
} from '../aws/index.ts';
import {
  type BatchRetryOptions,
  BatchScheduler,
  ConfigError,
  type FaultOptions,
  type Invoker,
  isTransientFailure,
  LeaseHeldError,
  type ObjectStore,
  type Source,
  type TinyBatchOptions,
} from '../shared/engine.ts';
import { intEnv, jsonEnv, requireEnv, type SluiceEnv, sluiceEnv } from './lib/env.ts';
import { DEFAULT_PARTITION_TIMEOUT_MS, driverTaskTimeoutMs, LAMBDA_ENV } from './lib/env-names.ts';
import { type MetricsApiSink, metricsApiSinkFromEnv } from './lib/metrics-api.ts';
import { buildContext, bundledPipeline, type PipelineModuleLike } from './lib/pipeline.ts';
import { ASLEEP_KEY, type AsleepMarker, decideTick, SleepMemory, type TickPorts } from './lib/sleep.ts';
import { emitBatchMetrics, emitMetrics, log } from './lib/telemetry.ts';

export interface SchedulerDeps {
  readonly module: PipelineModuleLike;
  readonly env: SluiceEnv;
  readonly queueUrl: string;
  /** The wire format of the queue's message bodies (`SLUICE_FORMAT`, docs/DEPLOY.md). */
  readonly format?: SqsMessageFormat;
  readonly partitionFunction: string;
  readonly taskConcurrency: number;
  /** The partition function's timeout: the driver's task timeout follows it (`driverTaskTimeoutMs`). */
  readonly partitionTimeoutMs: number;
  /** Stop starting batches this long before the function's timeout. */
  readonly marginMs: number;
  /** How long input blocks stay in the bucket (for replay); the bucket's lifecycle rule matches it. */
  readonly retainInputsMs?: number;
  /** Fault injection (SLUICE_FAULTS, JSON of FaultOptions): off unless set. */
  readonly faults?: FaultOptions;
  readonly store?: ObjectStore;
  readonly source?: Source<unknown>;
  readonly invoker?: Invoker;
  /** How often the driver runs a transiently failed batch again (default 3 tries, 1 s backoff). */
  readonly batchRetry?: BatchRetryOptions;
  /** The alarms' metrics also through PutMetricData (SLUICE_METRICS_API=1: for LocalStack). */
  readonly metricsApi?: MetricsApiSink;
  /** Tiny batches run inside this function, no partition invoked (issue 11; SLUICE_TINY_BATCH). */
  readonly tinyBatch?: false | TinyBatchOptions;
  /** Sleep after this long idle (functions/lib/sleep.ts); undefined or 0: always on. */
  readonly idleAfterMs?: number;
  /** The queue's depth (one GetQueueAttributes); default: the SQS client. */
  readonly queueDepth?: () => Promise<number>;
  /** This function's name, written into the sleep marker for producers to nudge (default: Lambda's). */
  readonly functionName?: string;
  /** What the container remembers between ticks (default: module scope; tests pass their own). */
  readonly sleepMemory?: SleepMemory;
}

/** What this container remembers between ticks: whether the pipeline sleeps (functions/lib/sleep.ts). */
const sleepMemory = new SleepMemory();

export interface SchedulerContext {
  readonly awsRequestId: string;
  getRemainingTimeInMillis(): number;
}

export function schedulerDepsFromEnv(env: NodeJS.ProcessEnv = process.env): SchedulerDeps {
  return {
    module: bundledPipeline,
    env: sluiceEnv(env),
    queueUrl: requireEnv('SLUICE_QUEUE_URL', env),
    format: formatEnv(env),
    partitionFunction: requireEnv('SLUICE_PARTITION_FUNCTION', env),
    taskConcurrency: intEnv('SLUICE_TASK_CONCURRENCY', 32, env),
    partitionTimeoutMs: intEnv(LAMBDA_ENV.partitionTimeoutMs, DEFAULT_PARTITION_TIMEOUT_MS, env),
    marginMs: intEnv('SLUICE_RUN_MS_BEFORE_TIMEOUT', 20_000, env),
    retainInputsMs: intEnv('SLUICE_RETAIN_INPUTS_MS', 7 * 24 * 3_600_000, env),
    faults: jsonEnv<FaultOptions>('SLUICE_FAULTS', env),
    metricsApi: metricsApiSinkFromEnv(sluiceEnv(env).pipelineName, env, log),
    idleAfterMs: intEnv(LAMBDA_ENV.idleAfterMs, 0, env),
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    tinyBatch: jsonEnv<false | TinyBatchOptions>(LAMBDA_ENV.tinyBatch, env),
  };
}

export function createSchedulerHandler(deps: SchedulerDeps) {
  const transient = (phase: 'start' | 'run', err: unknown) => {
    emitMetrics(deps.env.pipelineName, { FailedBatches: { value: 1, unit: 'Count' } });
    deps.metricsApi?.failed();
    const error = (err as Error)?.message ?? String(err);
    log({ event: 'batch.failed', phase, error, retryable: true, resumes: 'next tick' });
    return { status: 'failed-transient' as const, phase, error };
  };
  const memory = deps.sleepMemory ?? sleepMemory;
  const invocation = async (event: unknown, context: SchedulerContext) => {
    const started = Date.now();
    const deadlineMs = started + context.getRemainingTimeInMillis() - deps.marginMs;
    const store = deps.store ?? new S3ObjectStore({ bucket: deps.env.bucket, prefix: deps.env.prefix });
    const readMarker = async () => {
      const bytes = await store.get(ASLEEP_KEY);
      return bytes ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as AsleepMarker) : undefined;
    };
    if (isNudge(event)) {
      // a producer's nudge (aws/nudge.ts) skips the queue, which may not count a message just sent
      // yet: the marker decides. Awake (no marker): one GET, no lease, no SQS request.
      if (!(await readMarker())) return { status: 'awake' as const, reason: 'nudge' as const };
      memory.forget();
    } else if (deps.idleAfterMs) {
      // asleep (issue 11): ask the queue first; an empty queue of a sleeping pipeline ends the tick
      const ports: TickPorts = {
        queueDepth: deps.queueDepth ?? (() => sqsQueueDepth(deps.queueUrl)),
        readMarker,
      };
      const decision = await decideTick(ports, memory, Date.now());
      if (decision.action === 'sleep-on') return { status: 'asleep' as const, reason: decision.reason };
    }
    const ctx = await buildContext(deps.module, deps.env);
    const sources: Record<string, Source<unknown>> = {};
    for (const binding of ctx.graph.inputs.values()) {
      if (!binding.factory)
        sources[binding.name] =
          deps.source ?? new SqsSource({ queueUrl: deps.queueUrl, format: deps.format });
    }
    const invoker =
      deps.invoker ??
      new LambdaInvoker({ functionName: deps.partitionFunction, concurrency: deps.taskConcurrency });
    const scheduler = new BatchScheduler(ctx, {
      store,
      invoker,
      sources,
      clock: 'wall',
      taskTimeoutMs: driverTaskTimeoutMs(deps.partitionTimeoutMs),
      retainInputsMs: deps.retainInputsMs,
      faults: deps.faults,
      batchRetry: deps.batchRetry,
      tinyBatch: deps.tinyBatch,
      lease: {
        owner: `scheduler:${context.awsRequestId}`,
        durationMs: deadlineMs - started + deps.marginMs,
        renew: false,
      },
      onBatch: (m) => {
        emitBatchMetrics(deps.env.pipelineName, m);
        deps.metricsApi?.batch(m);
        log({
          event: 'batch',
          batchTimeMs: m.batchTimeMs,
          records: m.input.records,
          processingMs: m.processingMs,
          schedulingDelayMs: m.schedulingDelayMs,
          phases: m.phases,
          requests: m.requests,
        });
      },
      log: (e) => log(e),
    });
    try {
      await scheduler.start();
    } catch (err) {
      if (err instanceof LeaseHeldError) {
        log({ event: 'lease.held', holder: err.holder.owner, expiresAtMs: err.holder.expiresAtMs });
        return { status: 'lease-held', holder: err.holder.owner };
      }
      if (isTransientFailure(err)) return transient('start', err);
      throw err;
    }
    try {
      // the lease holder alone reads whether the pipeline slept (a cold container knows nothing)
      if (await readMarker()) {
        // commit the batches missed while asleep as one idle span, without polling (issue 11)
        const filled = await scheduler.fillIdleUntil(Date.now());
        await store.delete(ASLEEP_KEY);
        log({ event: 'scheduler.wake', idleBatches: filled });
      }
      const manifests = await scheduler.run({ deadlineMs, stopWhenIdleMs: deps.idleAfterMs || undefined });
      if (deps.idleAfterMs && scheduler.idleForMs >= deps.idleAfterMs) {
        // the open idle span is committed by stop() below, after the marker (a wake resumes either way)
        const marker: AsleepMarker = {
          asleepAtMs: Date.now(),
          lastBatchMs: scheduler.lastCommittedBatchMs ?? null,
          wakeAtMs: null,
          ...(deps.functionName ? { functionName: deps.functionName } : {}),
        };
        await store.put(ASLEEP_KEY, Buffer.from(JSON.stringify(marker)));
        memory.remember(marker, Date.now());
        log({ event: 'scheduler.sleep', lastBatchMs: marker.lastBatchMs });
        return { status: 'asleep' as const, reason: 'idle' as const, batches: manifests.length };
      }
      return {
        status: 'handed-over',
        batches: manifests.length,
        lastBatchTimeMs: manifests.at(-1)?.batchTimeMs ?? null,
        runMs: Date.now() - started,
      };
    } catch (err) {
      if (isTransientFailure(err)) return transient('run', err);
      emitMetrics(deps.env.pipelineName, { FailedBatches: { value: 1, unit: 'Count' } });
      deps.metricsApi?.failed();
      log({ event: 'batch.failed', error: (err as Error).message, retryable: false });
      throw err;
    } finally {
      await scheduler.stop();
      if (!deps.invoker) await invoker.close();
    }
  };
  return async (event: unknown, context: SchedulerContext) => {
    try {
      return await invocation(event, context);
    } finally {
      await deps.metricsApi?.flush(); // before Lambda freezes the function
    }
  };
}

let handlerInstance: ReturnType<typeof createSchedulerHandler> | undefined;

export const handler = (event: unknown, context: SchedulerContext) => {
  handlerInstance ??= createSchedulerHandler(schedulerDepsFromEnv());
  return handlerInstance(event, context);
};

/** `SLUICE_FORMAT`: json (default) or lines; anything else fails at start-up, naming the variable. */
function formatEnv(env: NodeJS.ProcessEnv): SqsMessageFormat {
  const raw = env[LAMBDA_ENV.format];
  if (raw === undefined || raw === '') return 'json';
  if (!(SQS_MESSAGE_FORMATS as readonly string[]).includes(raw)) {
    throw new ConfigError('SLUICE_FORMAT', `must be json or lines, got '${raw}'`);
  }
  return raw as SqsMessageFormat;
}

/** ApproximateNumberOfMessages + NotVisible of the queue: one GetQueueAttributes, no lease, no S3. */
async function sqsQueueDepth(queueUrl: string): Promise<number> {
  const { GetQueueAttributesCommand } = await import('@aws-sdk/client-sqs');
  const { createSqsClient } = await import('../aws/clients.ts');
  const res = await createSqsClient().send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  const a = res.Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0);
}
