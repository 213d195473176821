/**
 * Poison records: values a task cannot store (the codec cannot encode them) and readable
 * descriptions of any value for dead letters and error messages. See TaskContext.recordError for
 * what happens to such a record.
 */

/**
 * Why `value` cannot be stored in a record block (msgpack), or as JSON when `json` is set;
 * undefined when it can. Names the first problem and where it is, e.g. "a Symbol at .x",
 * "a cycle at .a.b", "a BigInt (2^70) at [1]: JSON has no BigInt". A BigInt of any size is stored
 * in a block (the codec's `moreTypes`); a Map or a class instance is refused by `encodeBlock`
 * itself (codec.ts `checkRecord`), which gives the reason then.
 */
export function unstorable(value: unknown, json = false): string | undefined {
  const stack: object[] = [];
  const walk = (v: unknown, path: string): string | undefined => {
    switch (typeof v) {
      case 'symbol':
        return `a Symbol at ${where(path)}`;
      case 'bigint':
        if (json) return `a BigInt (${describeBigInt(v)}) at ${where(path)}: JSON has no BigInt`;
        return undefined;
      case 'object': {
        if (v === null) return undefined;
        if (stack.includes(v)) return `a cycle at ${where(path)}`;
        stack.push(v);
        try {
          if (Array.isArray(v)) {
            for (let i = 0; i < v.length; i++) {
              const r = walk(v[i], `${path}[${i}]`);
              if (r) return r;
            }
          } else if (v instanceof Map) {
            for (const [k, x] of v) {
              const r = walk(k, `${path}<key>`) ?? walk(x, `${path}.${String(k)}`);
              if (r) return r;
            }
          } else if (v instanceof Set) {
            let i = 0;
            for (const x of v) {
              const r = walk(x, `${path}<${i++}>`);
              if (r) return r;
            }
          } else if (!ArrayBuffer.isView(v) && !(v instanceof Date)) {
            for (const k of Object.keys(v)) {
              const r = walk((v as Record<string, unknown>)[k], `${path}.${k}`);
              if (r) return r;
            }
          }
          return undefined;
        } finally {
          stack.pop();
        }
      }
      default:
        return undefined;
    }
  };
  return walk(value, '');
}

function where(path: string): string {
  return path === '' ? 'the top level' : path;
}

function describeBigInt(v: bigint): string {
  const abs = v < 0n ? -v : v;
  if (abs > 0n && (abs & (abs - 1n)) === 0n) return `${v < 0n ? '-' : ''}2^${abs.toString(2).length - 1}`;
  const s = v.toString();
  return s.length > 40 ? `${s.slice(0, 20)}...(${s.length} digits)` : s;
}

/**
 * A record as text for a dead letter or a message: JSON where possible; BigInts as `123n`,
 * Symbols as `Symbol(x)`, cycles as `[Circular]`; long text cut at `max` characters.
 */
export function describeValue(x: unknown, max = 10_000): string {
  let text: string;
  if (typeof x === 'string') text = x;
  else {
    const seen: object[] = [];
    try {
      text =
        JSON.stringify(x, function (this: unknown, _k, v: unknown) {
          if (typeof v === 'bigint') return `${v}n`;
          if (typeof v === 'symbol') return v.toString();
          if (typeof v === 'function') return `[Function ${v.name || 'anonymous'}]`;
          if (v !== null && typeof v === 'object') {
            // drop ancestors we have left (JSON.stringify walks depth first)
            while (seen.length > 0 && seen[seen.length - 1] !== this) seen.pop();
            if (seen.includes(v)) return '[Circular]';
            seen.push(v);
            if (v instanceof Map) {
              const entries = [...v]; // JSON.stringify would show a Map as {}
              seen.push(entries);
              return entries;
            }
          }
          return v;
        }) ?? String(x);
    } catch {
      text = String(x);
    }
  }
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/**
 * Encodes `records` with `encode`; when that throws, takes out the records that cannot be encoded
 * (each given to `onBad` with the reason) and encodes the rest. The fast path is one call.
 */
export function encodeSkippingBad<T>(
  records: readonly unknown[],
  encode: (records: readonly unknown[]) => T,
  onBad: (record: unknown, reason: string) => void,
  json = false,
): { encoded: T; kept: number } {
  try {
    return { encoded: encode(records), kept: records.length };
  } catch (first) {
    const good: unknown[] = [];
    for (const r of records) {
      let reason = unstorable(r, json);
      if (!reason) {
        try {
          encode([r]);
        } catch (err) {
          reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        }
      }
      if (reason) onBad(r, reason);
      else good.push(r);
    }
    if (good.length === records.length) throw first; // not a record's fault
    return { encoded: encode(good), kept: good.length };
  }
}
