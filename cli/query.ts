/**
 * `sluice query <stream-name> [--at <time>] [--store <dir> | --bucket <name>] [--top N]
 * [--filter <expr>] [--json]`: the state or window RDD a stream stored at a batch, as records.
 */
import { NotStoredError, queryState } from '../shared/core/query.ts';
import { badValue, CliError } from './errors.ts';
import { isoLocal } from './format.ts';
import type { BatchTimeSpec } from './parse.ts';
import { openStore, resolveBatchTime, type StoreOptions } from './store.ts';

export interface QueryCommandOptions extends StoreOptions {
  readonly at?: BatchTimeSpec;
  readonly top?: number;
  readonly filter?: string;
  readonly json?: boolean;
}

/**
 * `--filter`: `key=value` (a pair's key, or an object's field, equal to value as text) or a
 * JavaScript expression over `r` (the record), `k` and `v` (a pair's key and value).
 */
export function parseFilter(text: string): (record: unknown) => boolean {
  const kv = /^([A-Za-z_$][\w$.]*)=([^=].*)?$/.exec(text);
  if (kv && !text.includes('==')) {
    const [, field, value = ''] = kv;
    return (r) => {
      if (Array.isArray(r) && r.length === 2 && field === 'key') return String(r[0]) === value;
      if (Array.isArray(r) && r.length === 2 && field === 'value') return String(r[1]) === value;
      if (r !== null && typeof r === 'object' && field! in (r as object))
        return String((r as Record<string, unknown>)[field!]) === value;
      return false;
    };
  }
  let fn: (r: unknown, k: unknown, v: unknown) => unknown;
  try {
    fn = new Function('r', 'k', 'v', `"use strict"; return (${text});`) as typeof fn;
  } catch (err) {
    throw badValue(
      '--filter',
      `'${text}' is neither key=value nor a JavaScript expression over r, k, v (${(err as Error).message})`,
    );
  }
  return (r) => {
    const pair = Array.isArray(r) && r.length === 2;
    try {
      return Boolean(fn(r, pair ? r[0] : undefined, pair ? r[1] : undefined));
    } catch (err) {
      throw badValue('--filter', `'${text}' threw on ${JSON.stringify(r)}: ${(err as Error).message}`);
    }
  };
}

/** The number a record is ranked by for --top: a pair's value, else the record itself, else its first numeric field. */
function rank(r: unknown): number {
  const v = Array.isArray(r) && r.length === 2 ? r[1] : r;
  if (typeof v === 'number') return v;
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) if (typeof x === 'number') return x;
  }
  return Number.NEGATIVE_INFINITY;
}

export async function queryCommand(
  name: string,
  options: QueryCommandOptions,
  io: { stdout: (text: string) => void; stderr: (text: string) => void },
): Promise<void> {
  const filter = options.filter !== undefined ? parseFilter(options.filter) : undefined;
  const opened = await openStore(options);
  const atMs = options.at ? await resolveBatchTime(opened.store, options.at, '--at') : undefined;
  let query: Awaited<ReturnType<typeof queryState>>;
  try {
    query = await queryState(opened.store, name, atMs === undefined ? {} : { atMs });
  } catch (err) {
    if (err instanceof NotStoredError) throw new CliError(err.message);
    throw err;
  }
  let records = await query.collect();
  const total = records.length;
  if (filter) records = records.filter(filter);
  const matched = records.length;
  if (options.top !== undefined)
    records = [...records].sort((a, b) => rank(b) - rank(a)).slice(0, options.top);
  if (options.json) {
    io.stdout(
      `${JSON.stringify({ stream: name, batchTimeMs: query.batchTimeMs, total, matched, records })}\n`,
    );
    return;
  }
  io.stderr(
    `${name} at ${isoLocal(query.batchTimeMs)} (${query.batchTimeMs}): ${total} records` +
      `${filter ? `, ${matched} match` : ''}${options.top !== undefined ? `, top ${records.length}` : ''}\n`,
  );
  const pairs = records.every((r) => Array.isArray(r) && r.length === 2);
  if (pairs) {
    const keys = records.map((r) =>
      typeof (r as unknown[])[0] === 'string' ? (r as string[])[0]! : JSON.stringify((r as unknown[])[0]),
    );
    const width = Math.min(40, Math.max(0, ...keys.map((k) => k.length)));
    records.forEach((r, i) => {
      io.stdout(`${keys[i]!.padEnd(width)}  ${JSON.stringify((r as unknown[])[1])}\n`);
    });
  } else {
    for (const r of records) io.stdout(`${typeof r === 'string' ? r : JSON.stringify(r)}\n`);
  }
}
