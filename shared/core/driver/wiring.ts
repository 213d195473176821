/**
 * The driver's start-up wiring: builds its rooms from the resolved options (fault hooks decorating
 * the ports, batch retry, task runner, rate controller, input tracker, idle path, stage runner,
 * lineage recovery, retention) and wires them to one another. The batch loop (`scheduler.ts`)
 * hands in what only it knows: its fence, its pipeline, which batches it skips.
 *
 * @module
 */
import type { Invoker } from '../../ports/invoker.ts';
import type { Pipeline, StreamingContext } from '../context.ts';
import { CountingObjectStore } from '../counting-store.ts';
import type { BatchGeneration } from '../generation.ts';
import { IdlePath } from '../idle-path.ts';
import type { Target } from '../planner.ts';
import { TaskRunner } from '../task-runner.ts';
import { BatchRetry } from './batch-retry.ts';
import type { CommitOrder } from './commit-order.ts';
import { DriverFaultHooks } from './fault-hooks.ts';
import type { DriverFence } from './fencing.ts';
import { InputTracker } from './input-tracker.ts';
import { LineageRecovery } from './lineage-recovery.ts';
import type { ResolvedDriverOptions } from './options.ts';
import type { BatchPositions } from './positions.ts';
import { RateController } from './rate-controller.ts';
import { Retention } from './retention.ts';
import { StageRunner } from './stage-runner.ts';

/** The driver's rooms, as `wireRooms` builds them. */
export interface DriverRooms {
  readonly hooks: DriverFaultHooks;
  readonly store: CountingObjectStore;
  readonly invoker: Invoker;
  readonly batchRetry: BatchRetry;
  readonly runner: TaskRunner;
  readonly rate: RateController;
  readonly inputs: InputTracker;
  readonly idlePath: IdlePath;
  readonly stages: StageRunner;
  readonly lineage: LineageRecovery;
  readonly retention: Retention;
}

/** What the batch loop hands its rooms: read when needed, never copied. */
export interface DriverHandles {
  /** A crash injected by the fault hooks: the driver runs nothing more. */
  onCrash(): void;
  fence(): DriverFence;
  pipeline(): Pipeline;
  isSkipped(t: number): boolean;
  targetsOf(gen: BatchGeneration): Target[];
  log(event: Record<string, unknown>): void;
  stopping(): boolean;
  readonly commitOrder: CommitOrder;
  readonly at: BatchPositions;
}

/** Builds the driver's rooms and wires them to one another. */
export function wireRooms(ctx: StreamingContext, o: ResolvedDriverOptions, d: DriverHandles): DriverRooms {
  const log = d.log;
  const hooks = new DriverFaultHooks(o.faults, o.incarnation, { onCrash: () => d.onCrash(), log });
  // overload faults decorate the ports (shared/core/driver/faulty-store.ts, faulty-invoker.ts)
  const store = new CountingObjectStore(hooks.decorateStore(o.store));
  const invoker = hooks.decorateInvoker(o.invoker);
  const batchRetry = new BatchRetry(o.batchRetry ?? {}, log);
  const runner: TaskRunner = new TaskRunner({
    invoker,
    maxTaskAttempts: o.maxTaskAttempts,
    taskTimeoutMs: o.taskTimeoutMs,
    retryBackoffMs: o.retryBackoffMs,
    speculation: o.speculation ?? {},
    faults: hooks.injector,
    recover: (key) => lineage.recover(key),
    log,
  });
  const rate = new RateController({
    intervalMs: ctx.batchIntervalMs,
    maxRecordsPerBatch: o.maxRecordsPerBatch,
    adaptive: o.backpressure && o.clock !== 'manual',
    log,
  });
  const inputs = new InputTracker(ctx, store, {
    manualClock: o.clock === 'manual',
    maxRecords: () => rate.maxRecords,
    fence: (what) => d.fence().check(what),
    log, // issue 14: block generators
  });
  // idle fast path (issue 11)
  const idlePath = new IdlePath(ctx, store, {
    enabled: o.idleFastPath !== false,
    fingerprint: () => d.pipeline().fingerprint,
  });
  const stages: StageRunner = new StageRunner(ctx, () => d.pipeline(), runner, {
    isSkipped: (t) => d.isSkipped(t),
    idleSpans: (t) => idlePath.specSpans(t, retention.historyMs),
    blocks: inputs.blocks, // issue 14: input partitions written during the interval
    log,
    tinyBatch: o.tinyBatch, // issue 11: a tiny batch runs in the driver (tiny-batch.ts)
    taskStore: store.inner,
  });
  const lineage: LineageRecovery = new LineageRecovery(
    store,
    () => d.pipeline(),
    () => stages,
    {
      targetsOf: (gen) => d.targetsOf(gen),
      log,
    },
  );
  const retention = new Retention(ctx, store, o, (t) => idlePath.spans.contains(t));
  return { hooks, store, invoker, batchRetry, runner, rate, inputs, idlePath, stages, lineage, retention };
}
