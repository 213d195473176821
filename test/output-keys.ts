import { parseOutputKey } from '../shared/core/layout.ts';

/** `<name>-<batch time>` of a saved-output key: one batch of one output, for grouping in tests. */
export function batchDirOf(key: string): string {
  const o = parseOutputKey(key);
  if (!o) throw new Error(`not a saved-output key: ${key}`);
  return `${o.name}-${o.batchTimeMs}`;
}
