import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { TaskResult, TaskSpec } from '../core/task.ts';
import { type EncodedError, errorFromJson, TaskFailedError, TaskTimeoutError } from '../errors.ts';
import type { InvokeOptions, Invoker } from '../ports/invoker.ts';

/**
 * The worker thread's entry: from this repository's sources, a bootstrap that registers tsx and then
 * runs worker.ts; installed (compiled into dist/), worker.js itself, with no loader unless the
 * pipeline module is TypeScript (see ensureTypeScriptLoader).
 */
const WORKER_ENTRY = import.meta.url.endsWith('.ts') ? './worker-bootstrap.mjs' : './worker.js';

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  isReady: boolean;
  busy: boolean;
  /** Tasks running on this worker (a speculative copy may share a busy worker). */
  inFlight: number;
}

interface Pending {
  resolve: (r: TaskResult) => void;
  reject: (e: Error) => void;
}

/**
 * Runs tasks on a pool of worker threads (so every core works). Each worker loads the pipeline
 * module itself; tasks are plain data. A task that times out has its worker terminated and
 * replaced, so runaway user code cannot wedge the pool.
 */
export class WorkerPoolInvoker implements Invoker {
  readonly concurrency: number;
  private readonly slots: Slot[] = [];
  private readonly idle: Slot[] = [];
  private readonly waiting: ((slot: Slot) => void)[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly workerData: Record<string, unknown>;
  private closed = false;

  constructor(options: {
    pipelineModule: string;
    storeDir: string;
    batchIntervalMs: number;
    partitions: number;
    workers?: number;
    /** A replay's original store (workers read input from it too): see overlay-store.ts. */
    overlay?: { originalDir: string; fromMs: number; toMs: number };
  }) {
    this.concurrency = Math.max(1, options.workers ?? availableParallelism());
    this.workerData = {
      pipelineModule: options.pipelineModule,
      storeDir: options.storeDir,
      batchIntervalMs: options.batchIntervalMs,
      partitions: options.partitions,
      ...(options.overlay ? { overlay: options.overlay } : {}),
    };
    for (let i = 0; i < this.concurrency; i++) this.idle.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = new Worker(new URL(WORKER_ENTRY, import.meta.url), {
      workerData: this.workerData,
    });
    let markReady!: () => void;
    let failReady!: (e: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    ready.catch(() => {});
    const slot: Slot = { worker, ready, isReady: false, busy: false, inFlight: 0 };
    ready.then(
      () => {
        slot.isReady = true;
      },
      () => {},
    );
    worker.on(
      'message',
      (msg: { ready?: boolean; id?: number; result?: TaskResult; error?: EncodedError }) => {
        if (msg.ready === true) return markReady();
        if (msg.ready === false) return failReady(errorFromJson(msg.error!));
        const p = this.pending.get(msg.id!);
        if (!p) return;
        this.pending.delete(msg.id!);
        if (msg.error) p.reject(errorFromJson(msg.error));
        else p.resolve(msg.result!);
      },
    );
    worker.on('error', (err) => failReady(err));
    worker.on('exit', (code) => {
      failReady(new TaskFailedError(`worker thread exited with code ${code} while starting`));
      // an idle worker that died (or one finishing a cancelled copy) is replaced at once, so no
      // task is ever posted to a dead thread
      const idle = this.idle.indexOf(slot);
      if (!this.closed && idle >= 0) {
        this.idle.splice(idle, 1);
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots.splice(i, 1);
        this.release(this.spawn());
      }
    });
    this.slots.push(slot);
    return slot;
  }

  /** Resolves once every worker has loaded the pipeline module (rejects with its load error). */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.ready));
  }

  private acquire(): Promise<Slot> {
    // prefer a worker that has loaded the pipeline over one still starting (a replacement)
    const i = this.idle.findIndex((s) => s.isReady);
    const slot = i >= 0 ? this.idle.splice(i, 1)[0] : this.idle.pop();
    if (slot) return Promise.resolve(slot);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(slot: Slot): void {
    const next = this.waiting.shift();
    if (next) next(slot);
    else this.idle.push(slot);
  }

  async invoke(spec: TaskSpec, options: InvokeOptions): Promise<TaskResult> {
    if (this.closed) throw new TaskFailedError('the worker pool is closed', { retryable: false });
    if (spec.speculative && !this.idle.some((s) => s.isReady)) {
      // A copy of a straggler does not queue behind the stage: it shares the least busy worker
      // (tasks are async, a worker interleaves them), so it starts as soon as it is launched.
      const shared = this.slots.filter((s) => s.isReady).sort((a, b) => a.inFlight - b.inFlight)[0];
      if (shared) return this.runOn(shared, spec, options, false);
    }
    const slot = await this.acquire();
    try {
      await slot.ready;
    } catch (err) {
      this.release(this.replace(slot));
      throw new TaskFailedError(`a worker thread failed to start: ${(err as Error).message}`, {
        retryable: false,
      });
    }
    return this.runOn(slot, spec, options, true);
  }

  /** Runs a task on a worker; `owned`: this call holds the slot and gives it back (or replaces it). */
  private async runOn(
    slot: Slot,
    spec: TaskSpec,
    options: InvokeOptions,
    owned: boolean,
  ): Promise<TaskResult> {
    const id = this.nextId++;
    let timer: NodeJS.Timeout | undefined;
    let died = false;
    let current = slot;
    const onExit = (code: number) => {
      died = true;
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        p.reject(new TaskFailedError(`worker thread died (exit code ${code}) while running the task`));
      }
    };
    slot.worker.once('exit', onExit);
    slot.inFlight++;
    try {
      return await new Promise<TaskResult>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        timer = setTimeout(() => {
          this.pending.delete(id);
          reject(
            new TaskTimeoutError(
              `task ${spec.batchTimeMs}/stage ${spec.stageId}/partition ${spec.partition} (raise taskTimeoutMs if tasks are this slow)`,
              options.timeoutMs,
            ),
          );
          if (owned) current = this.replace(slot);
        }, options.timeoutMs);
        options.signal?.addEventListener('abort', () => {
          if (!this.pending.has(id)) return;
          this.pending.delete(id);
          // Another copy won. The worker may go on with the stale task (tasks are async and its
          // result is ignored); replacing the thread would cost a module load, so keep it.
          reject(new TaskFailedError('task cancelled', { retryable: false }));
        });
        slot.worker.postMessage({ id, spec });
      });
    } finally {
      clearTimeout(timer);
      slot.inFlight--;
      slot.worker.off('exit', onExit);
      if (owned) this.release(died ? this.replace(current) : current);
    }
  }

  /** Terminates a worker (stuck or dead) and starts a fresh one in its place. */
  private replace(slot: Slot): Slot {
    void slot.worker.terminate();
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    return this.spawn();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  describe(): string {
    return `worker-threads(${this.concurrency})`;
  }
}
