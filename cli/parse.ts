/**
 * Parsers for option values. Each takes the flag it parses so that its error names it, and
 * throws a UsageError (exit code 2) saying what is accepted.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { badValue, UsageError } from './errors.ts';

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration such as `500ms`, `1s`, `2.5s`, `2m`, `1h` or `1m30s`, in whole milliseconds.
 *
 * @example parseDuration('--interval', '1s') // 1000
 */
export function parseDuration(option: string, text: string): number {
  const trimmed = text.trim().toLowerCase();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  let match: RegExpExecArray | null;
  while ((match = part.exec(trimmed)) !== null) {
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    consumed = part.lastIndex;
  }
  if (trimmed === '' || consumed !== trimmed.length) {
    const hint = /^\d+(\.\d+)?$/.test(trimmed) ? ` (add a unit: ${trimmed}ms or ${trimmed}s)` : '';
    throw badValue(option, `'${text}' is not a duration${hint}; use e.g. 500ms, 1s, 2m, 1h or 1m30s`);
  }
  const ms = Math.round(total);
  if (ms <= 0) throw badValue(option, `must be longer than 0 ms, got '${text}'`);
  return ms;
}

/** A whole number of at least `min` (1 unless given). */
export function parseInteger(
  option: string,
  text: string,
  what: string,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const t = text.trim();
  if (!/^[+-]?\d+$/.test(t)) throw badValue(option, `must be a whole number of ${what}, got '${text}'`);
  const n = Number(t);
  if (n < min) {
    throw badValue(
      option,
      min === 1 ? `must be at least 1 (${what}), got ${n}` : `must be ${min} or more (${what}), got ${n}`,
    );
  }
  if (n > max) throw badValue(option, `must be at most ${max} (${what}), got ${n}`);
  return n;
}

/** A positive number (not necessarily whole), such as a rate. */
export function parsePositiveNumber(option: string, text: string, what: string): number {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw badValue(option, `must be a positive number of ${what}, got '${text}'`);
  }
  return n;
}

export function parseFormat(option: string, text: string): 'lines' | 'json' {
  if (text === 'lines' || text === 'json') return text;
  throw badValue(
    option,
    `must be 'lines' (each line is a string record) or 'json' (each line is a JSON record), got '${text}'`,
  );
}

/**
 * A source spec: `generator[:<rate>]`, `file:<path>`, `stdin` or `http[:<port>]`. Checked here so
 * that a typo fails before the store is touched.
 */
export function parseSourceSpec(option: string, text: string): string {
  const [kind, ...rest] = text.split(':');
  const arg = rest.join(':');
  const usage = 'use generator[:<rate>], file:<path>, stdin, http[:<port>] or store:<dir>#<output>';
  switch (kind) {
    case 'generator':
      if (arg) parsePositiveNumber(option, arg, 'records per second in generator:<rate>');
      return text;
    case 'file':
      if (!arg) throw badValue(option, `the file source needs a path: file:<path>`);
      if (!existsSync(arg)) throw badValue(option, `file ${arg} does not exist`);
      return text;
    case 'stdin':
      if (arg) throw badValue(option, `stdin takes no argument, got '${text}'`);
      return text;
    case 'http':
      if (arg) parseInteger(option, arg, 'port in http:<port>', 0, 65535);
      return text;
    case 'store': {
      const hash = arg.indexOf('#');
      if (hash <= 0 || hash === arg.length - 1)
        throw badValue(option, `the store source needs store:<dir>#<output name>, got '${text}'`);
      if (!existsSync(arg.slice(0, hash)))
        throw badValue(option, `store ${arg.slice(0, hash)} does not exist`);
      return text;
    }
    default:
      throw badValue(option, `unknown source '${text}': ${usage}`);
  }
}

const RESERVED_PREFIXES = [
  'meta/',
  'batches/',
  'inputs/',
  'rdd/',
  'shuffle/',
  'manifests/',
  'outputs/',
  'deadletter/',
  'lease/',
  'lineage/',
];

/** One `--dataset <key>=<file>`, accumulated into a key -> file record. */
export function parseDataset(
  option: string,
  text: string,
  previous: Record<string, string>,
): Record<string, string> {
  const eq = text.indexOf('=');
  if (eq <= 0 || eq === text.length - 1) {
    throw badValue(
      option,
      `expected <store key>=<local file>, e.g. datasets/pages.jsonl=examples/datasets/pages.jsonl, got '${text}'`,
    );
  }
  const key = text.slice(0, eq);
  const file = text.slice(eq + 1);
  if (key.startsWith('/') || key.split('/').includes('..')) {
    throw badValue(option, `store key '${key}' must be a relative key such as datasets/pages.jsonl`);
  }
  const reserved = RESERVED_PREFIXES.find((p) => key.startsWith(p));
  if (reserved)
    throw badValue(
      option,
      `store key '${key}' is under '${reserved}', which the engine owns; use e.g. datasets/...`,
    );
  if (!existsSync(file)) throw badValue(option, `file ${file} does not exist (for store key ${key})`);
  return { ...previous, [key]: file };
}

/** What the user typed for a batch time, before it is matched against the store. */
export type BatchTimeSpec =
  | { readonly kind: 'exact'; readonly ms: number }
  | { readonly kind: 'timeOfDay'; readonly text: string }
  | { readonly kind: 'latest' };

/**
 * A batch time: epoch milliseconds (`1732880591400`), an ISO date-time
 * (`2024-11-29T11:43:11.400Z`), a time of day as `sluice run` and `sluice status` print it
 * (`11:43:11.400`, local time, matched against the store's batches), or `last`.
 */
export function parseBatchTime(option: string, text: string): BatchTimeSpec {
  const t = text.trim();
  if (t === 'last' || t === 'latest') return { kind: 'latest' };
  if (/^\d{10,}$/.test(t)) return { kind: 'exact', ms: Number(t) };
  if (/^\d{1,2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/.test(t))
    return { kind: 'timeOfDay', text: t.padStart(t.indexOf(':') === 1 ? t.length + 1 : t.length, '0') };
  if (/^\d{4}-\d{2}-\d{2}T/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return { kind: 'exact', ms };
  }
  throw badValue(
    option,
    `'${text}' is not a batch time; give epoch milliseconds (1732880591400), an ISO time (2024-11-29T11:43:11.400Z), ` +
      `a time of day as sluice status prints it (11:43:11.400), or 'last'`,
  );
}

const FAULT_KEYS = [
  'seed',
  'failTasks',
  'killWorkers',
  'slowTasks',
  'slowFactor',
  'crashDriver',
  'deletePartitions',
  'corruptBlocks',
  // overload (throttling, a slow store)
  'throttleTasks',
  'slowStore',
  'slowStoreMs',
  'longBatch',
] as const;

/** `failTasks=0.1,slowTasks=0.05,seed=3` -> FaultOptions. */
export function parseFaults(option: string, text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',').filter(Boolean)) {
    const [key, value] = part.split('=');
    if (!key || value === undefined || !(FAULT_KEYS as readonly string[]).includes(key)) {
      throw new UsageError(option, `'${part}' is not key=value with a key among ${FAULT_KEYS.join(', ')}`);
    }
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0)
      throw new UsageError(option, `${key} must be a non-negative number, got '${value}'`);
    if (key !== 'seed' && key !== 'slowFactor' && key !== 'slowStoreMs' && n > 1)
      throw new UsageError(option, `${key} is a share between 0 and 1, got ${n}`);
    out[key] = n;
  }
  return out;
}
