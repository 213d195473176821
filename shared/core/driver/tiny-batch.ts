/**
 * Tiny batches run inside the driver (issue 11, item 3: fewer requests for a batch with data).
 * A batch whose input is under `tinyBatch` (records and bytes) runs its stages in the driver's
 * process, through the same TaskRunner (retries, injected faults) and the same executor, with the
 * same specs, deterministic keys and put-if-absent commits as on workers or Lambdas. What only this
 * batch reads is kept in memory instead of the store: its shuffle map outputs and the RDDs it
 * materializes only for its own `foreachRDD`/`print` (reason 'output'). What a later batch or a
 * reader needs goes to the store as always: state and window partitions, saved output parts,
 * dead letters, the manifest. WordCount at 2 partitions: 7 PUTs instead of 17, and no invocation.
 *
 * A crash loses nothing: the batch's input is durable, a re-run computes it again. The scheduler
 * Lambda runs the driver, so the AWS runner takes this path too (no partition function invoked).
 *
 * @module
 */
import { TaskFailedError, TaskTimeoutError } from '../../errors.ts';
import type { InvokeOptions, Invoker } from '../../ports/invoker.ts';
import type { ByteRange, ObjectStore } from '../../ports/object-store.ts';
import type { Pipeline } from '../context.ts';
import { runTask } from '../executor.ts';
import { timeKey } from '../layout.ts';
import type { BatchPlan } from '../planner.ts';
import type { TaskResult, TaskSpec } from '../task.ts';

/** `tinyBatch`: the size under which a batch runs in the driver; `false` turns it off. */
export interface TinyBatchOptions {
  /** At most this many input records (all streams). Default 10,000. */
  readonly maxRecords?: number;
  /** At most this many bytes of input blocks written for the batch. Default 4 MiB. */
  readonly maxBytes?: number;
}

export const TINY_BATCH_DEFAULTS = { maxRecords: 10_000, maxBytes: 4 * 1024 * 1024 } as const;

/** The objects one tiny batch keeps in memory, and store views that read them there. */
export class BatchMemory {
  private readonly objects = new Map<string, Uint8Array>();
  private readonly prefixes: string[];
  /** Something went to the store under `shuffle/` or `rdd/` (state, window partitions). */
  storedData = false;

  constructor(t: number, plan: BatchPlan) {
    this.prefixes = [`shuffle/${timeKey(t)}/`];
    for (const target of plan.targets) {
      if (target.kind === 'rdd' && target.reason === 'output')
        this.prefixes.push(`rdd/${timeKey(t)}/${target.name}/`);
    }
  }

  private kept(key: string): boolean {
    return this.prefixes.some((p) => key.startsWith(p));
  }

  /** `inner` with this batch's in-memory objects over it; `counts` are the requests that reached `inner`. */
  over(inner: ObjectStore): ObjectStore & {
    readonly counts: { get: number; put: number; bytesRead: number; bytesWritten: number };
  } {
    const objects = this.objects;
    const kept = (key: string) => this.kept(key);
    const wrote = (key: string) => {
      if (key.startsWith('shuffle/') || key.startsWith('rdd/')) this.storedData = true;
    };
    const counts = { get: 0, put: 0, bytesRead: 0, bytesWritten: 0 };
    return {
      counts,
      async get(key: string, range?: ByteRange) {
        if (!kept(key)) {
          counts.get++;
          const body = await inner.get(key, range);
          counts.bytesRead += body?.length ?? 0;
          return body;
        }
        const body = objects.get(key);
        return body && range ? body.subarray(range.start, range.end) : body;
      },
      async put(key: string, body: Uint8Array) {
        if (!kept(key)) {
          wrote(key);
          counts.put++;
          counts.bytesWritten += body.length;
          return inner.put(key, body);
        }
        objects.set(key, body);
      },
      async putIfAbsent(key: string, body: Uint8Array) {
        if (!kept(key)) {
          wrote(key);
          counts.put++;
          counts.bytesWritten += body.length;
          return inner.putIfAbsent(key, body);
        }
        if (objects.has(key)) return false;
        objects.set(key, body);
        return true;
      },
      async list(prefix: string) {
        const mine = [...objects.keys()].filter((k) => k.startsWith(prefix));
        if (kept(prefix)) return mine.sort();
        return [...new Set([...(await inner.list(prefix)), ...mine])].sort();
      },
      async delete(key: string) {
        if (kept(key)) objects.delete(key);
        else await inner.delete(key);
      },
      describe: () => `${inner.describe()} (a tiny batch's own data in memory)`,
    };
  }
}

/**
 * Runs tasks in the driver's process on a batch's memory view of the store. A task's metrics
 * count only the requests that reached the store (reads and writes kept in memory are free).
 */
export class DriverInvoker implements Invoker {
  constructor(
    private readonly pipeline: () => Pipeline,
    private readonly store: ObjectStore,
    private readonly memory: BatchMemory,
    readonly concurrency: number,
  ) {}

  async invoke(spec: TaskSpec, options: InvokeOptions): Promise<TaskResult> {
    const view = this.memory.over(this.store);
    let timer: NodeJS.Timeout | undefined;
    const stop = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TaskTimeoutError(`task ${spec.stageId}/${spec.partition}`, options.timeoutMs)),
        options.timeoutMs,
      );
      options.signal?.addEventListener(
        'abort',
        () => reject(new TaskFailedError('task cancelled', { retryable: false })),
        { once: true },
      );
    });
    try {
      const r = await Promise.race([runTask(spec, this.pipeline(), view), stop]);
      const c = view.counts;
      const metrics = {
        ...r.metrics,
        readRequests: c.get,
        writeRequests: c.put,
        bytesRead: c.bytesRead,
        bytesWritten: c.bytesWritten,
      };
      return { ...r, metrics };
    } finally {
      clearTimeout(timer);
    }
  }
  async close(): Promise<void> {}
  describe(): string {
    return 'driver (tiny batch)';
  }
}

/** Which batches are tiny, from their size when received, and their memory while they run. */
export class TinyBatches {
  private readonly sizes = new Map<number, boolean>();
  private readonly memories = new Map<number, BatchMemory>();
  private readonly limits: Required<TinyBatchOptions> | undefined;

  constructor(options: false | TinyBatchOptions | undefined) {
    this.limits = options === false ? undefined : { ...TINY_BATCH_DEFAULTS, ...options };
  }

  /** Batch t was received with this many records and bytes of input blocks. */
  sized(t: number, records: number, bytes: number): void {
    if (this.limits) this.sizes.set(t, records <= this.limits.maxRecords && bytes <= this.limits.maxBytes);
  }

  /** The memory of batch t when it runs in the driver (made on first use), else undefined. */
  memoryOf(t: number, plan: BatchPlan): BatchMemory | undefined {
    if (!this.sizes.get(t)) return undefined;
    let m = this.memories.get(t);
    if (!m) this.memories.set(t, (m = new BatchMemory(t, plan)));
    return m;
  }

  /** The store the driver's outputs of batch t read (its memory over `store` when tiny). */
  storeOf(t: number, store: ObjectStore): ObjectStore {
    return this.memories.get(t)?.over(store) ?? store;
  }

  /** Batch t ran in the driver and stored nothing under `shuffle/` or `rdd/` (retention need not list). */
  storedNothing(t: number): boolean {
    const m = this.memories.get(t);
    return m !== undefined && !m.storedData;
  }

  /** Batch t committed or failed: its memory goes. */
  forget(t: number): void {
    this.sizes.delete(t);
    this.memories.delete(t);
  }
}
