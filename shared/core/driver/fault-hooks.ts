/**
 * Fault injection around the driver, kept out of its batch loop. The ports get decorators
 * (`FaultyObjectStore` for a slow store, `ThrottlingInvoker` for throttling), as
 * `CountingObjectStore` decorates the store for request counts; the driver calls `DriverFaultHooks`
 * at named points of a batch, where an injected fault may strike: the driver dies
 * (`afterReceive`, `afterTasks`, `beforeCommit`), stalls past its lease before the commit, or
 * finds stored partitions of a committed batch deleted or corrupted. Without fault options every
 * hook does nothing.
 *
 * @module
 */
import type { Invoker } from '../../ports/invoker.ts';
import type { ObjectStore } from '../../ports/object-store.ts';
import { type CrashPoint, DriverCrashError, FaultInjector, type FaultOptions } from '../faults.ts';
import { layout } from '../layout.ts';
import type { BatchPlan } from '../planner.ts';
import { ThrottlingInvoker } from './faulty-invoker.ts';
import { FaultyObjectStore } from './faulty-store.ts';
import type { LeaseKeeper } from './fencing.ts';

export class DriverFaultHooks {
  readonly injector: FaultInjector | undefined;

  constructor(
    options: FaultOptions | undefined,
    private readonly incarnation: number,
    private readonly o: {
      /** The driver dies: it runs nothing more and leaves its lease to expire. */
      readonly onCrash: () => void;
      readonly log: (event: Record<string, unknown>) => void;
    },
  ) {
    this.injector = options ? new FaultInjector(options) : undefined;
  }

  /** The store with overload faults (`slowStore`), or the store itself. */
  decorateStore(store: ObjectStore): ObjectStore {
    const f = this.injector;
    return f?.options.slowStore ? new FaultyObjectStore(store, f, this.incarnation) : store;
  }

  /** The invoker with throttling faults (`throttleTasks`), or the invoker itself. */
  decorateInvoker(invoker: Invoker): Invoker {
    const f = this.injector;
    return f?.options.throttleTasks ? new ThrottlingInvoker(invoker, f) : invoker;
  }

  /** A named point of batch t: the driver dies here if the schedule says so (DriverCrashError). */
  at(t: number, point: CrashPoint): void {
    const f = this.injector;
    if (!f || f.crashPoint(t, this.incarnation) !== point) return;
    f.counts.driverCrashes++;
    this.o.onCrash();
    throw new DriverCrashError(t, point);
  }

  /** Before the commit of batch t: the driver may stall past its lease (`longBatch`). */
  async beforeCommit(t: number, keeper: LeaseKeeper | undefined): Promise<void> {
    const f = this.injector;
    if (!f?.longBatchAt(t, this.incarnation) || !keeper) return;
    f.counts.longBatches++;
    await keeper.stallPastLease();
  }

  /** After batch t committed: delete or corrupt stored partitions later batches will read. */
  async afterCommit(t: number, plan: BatchPlan, store: ObjectStore): Promise<void> {
    const f = this.injector;
    if (!f || !(f.options.deletePartitions || f.options.corruptBlocks)) return;
    for (const target of plan.targets) {
      if (target.kind !== 'rdd' || target.reason === 'output') continue;
      for (let p = 0; p < target.rdd.numPartitions; p++) {
        const key = layout.rddPartition(t, target.name, p);
        const action = f.forStoredPartition(key);
        if (action === 'delete') {
          await store.delete(key);
          f.counts.deletedPartitions++;
        } else if (action === 'corrupt') {
          const bytes = await store.get(key);
          if (!bytes || bytes.length === 0) continue;
          const copy = Uint8Array.from(bytes);
          copy[Math.floor(copy.length / 2)]! ^= 0xff;
          await store.put(key, copy);
          f.counts.corruptedBlocks++;
        }
        if (action) this.o.log({ event: 'fault.storage', action, key });
      }
    }
  }
}
