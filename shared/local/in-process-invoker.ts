import type { Pipeline } from '../core/context.ts';
import { runTask } from '../core/executor.ts';
import type { TaskResult, TaskSpec } from '../core/task.ts';
import { TaskFailedError, TaskTimeoutError } from '../errors.ts';
import type { InvokeOptions, Invoker } from '../ports/invoker.ts';
import type { ObjectStore } from '../ports/object-store.ts';

/**
 * Runs tasks in this thread, on the driver's own pipeline object. Used by `runBatches` (whose
 * pipelines are closures in a test file, so no worker could load them) and for debugging.
 */
export class InProcessInvoker implements Invoker {
  readonly concurrency: number;
  private readonly pipeline: () => Pipeline;
  private readonly store: ObjectStore;

  constructor(options: { pipeline: () => Pipeline; store: ObjectStore; concurrency?: number }) {
    this.pipeline = options.pipeline;
    this.store = options.store;
    this.concurrency = options.concurrency ?? 4;
  }

  async invoke(spec: TaskSpec, options: InvokeOptions): Promise<TaskResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TaskTimeoutError(`task ${spec.stageId}/${spec.partition}`, options.timeoutMs)),
        options.timeoutMs,
      );
    });
    const aborted = new Promise<never>((_, reject) => {
      options.signal?.addEventListener(
        'abort',
        () => reject(new TaskFailedError('task cancelled', { retryable: false })),
        {
          once: true,
        },
      );
    });
    try {
      return await Promise.race([runTask(spec, this.pipeline(), this.store), timeout, aborted]);
    } finally {
      clearTimeout(timer);
    }
  }
  async close(): Promise<void> {}
  describe(): string {
    return `in-process(${this.concurrency})`;
  }
}
