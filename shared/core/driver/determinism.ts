/**
 * The determinism rule, caught in its common case: a task attempt that lost the commit (an
 * earlier attempt of the same task had committed) but computed different bytes means the
 * operator's functions are not deterministic (`Math.random()` keys, `Date.now()`), which breaks
 * exactly-once counts under retries and recomputation. The driver logs a warning naming the
 * operator; `sluice run` shows it.
 */
import type { TaskResult } from '../task.ts';

export function warnNondeterministic(
  log: (event: Record<string, unknown>) => void,
  t: number,
  stageId: number,
  r: TaskResult,
): void {
  const operator = r.lineage.operators.join(' > ') || r.lineage.operator;
  log({
    event: 'task.nondeterministic',
    batchTimeMs: t,
    stage: stageId,
    partition: r.lineage.partition,
    operator,
    message:
      `a retry of stage ${stageId} partition ${r.lineage.partition} (${operator}) computed different output ` +
      'than the attempt that committed: its functions are not deterministic (Math.random, Date.now, ' +
      'iteration order of a Set or Map?); results may be counted twice. See "Records" in docs/API.md',
  });
}
