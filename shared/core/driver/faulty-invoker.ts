import { ThrottledError } from '../../errors.ts';
import type { InvokeOptions, Invoker } from '../../ports/invoker.ts';
import { describeTask } from '../executor.ts';
import type { FaultInjector } from '../faults.ts';
import type { TaskResult, TaskSpec } from '../task.ts';

/**
 * Fault injection on the Invoker port (`faults.throttleTasks`): refuses a share of ALL invocation
 * tries as throttled before they reach the real invoker, as Lambda's 429 or a busy executor does.
 * Whether a try is refused depends on the seed, the task, its attempt and how many tries of that
 * attempt came before, so a fault schedule can be replayed.
 */
export class ThrottlingInvoker implements Invoker {
  readonly inner: Invoker;
  private readonly faults: FaultInjector;
  private readonly tries = new Map<string, number>();

  constructor(inner: Invoker, faults: FaultInjector) {
    this.inner = inner;
    this.faults = faults;
  }

  get concurrency(): number {
    return this.inner.concurrency;
  }

  async invoke(spec: TaskSpec, options: InvokeOptions): Promise<TaskResult> {
    const id = `${spec.batchTimeMs}/${spec.stageId}/${spec.partition}/${spec.attempt}/${spec.speculative ? 1 : 0}`;
    const n = this.tries.get(id) ?? 0;
    this.tries.set(id, n + 1);
    if (this.tries.size > 100_000) this.tries.clear();
    if (
      this.faults.throttles(
        spec.batchTimeMs,
        spec.stageId,
        spec.partition,
        spec.attempt,
        n,
        spec.speculative === true,
      )
    ) {
      throw new ThrottledError(
        `task ${describeTask(spec)} refused: throttled (injected throttleTasks fault)`,
      );
    }
    return this.inner.invoke(spec, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  describe(): string {
    return this.inner.describe();
  }
}
