/**
 * Keys are compared by value: strings, numbers, booleans, and arrays or plain objects of them.
 * Primitive keys are used as they are (fast path); composite keys are canonicalized to a string
 * with sorted object fields, so `{a:1,b:2}` and `{b:2,a:1}` are the same key.
 *
 * @module
 */

const COMPOSITE = '\u0000';

function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    return value === undefined ? 'u' : JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`).join(',')}}`;
}

/** A value usable as a JavaScript Map key that is equal for equal keys. */
export function keyId(key: unknown): unknown {
  if (key !== null && typeof key === 'object') return COMPOSITE + canonical(key);
  return key;
}

/** A Map keyed by value. Keeps the first-seen original key for each entry, in insertion order. */
export class KeyMap<V> {
  private readonly map = new Map<unknown, [unknown, V]>();

  get size(): number {
    return this.map.size;
  }
  get(key: unknown): V | undefined {
    return this.map.get(keyId(key))?.[1];
  }
  has(key: unknown): boolean {
    return this.map.has(keyId(key));
  }
  set(key: unknown, value: V): void {
    const id = keyId(key);
    const entry = this.map.get(id);
    if (entry) entry[1] = value;
    else this.map.set(id, [key, value]);
  }
  /** Returns the entry for `key`, creating it with `init()` if absent. */
  entry(key: unknown, init: () => V): [unknown, V] {
    const id = typeof key === 'string' ? key : keyId(key);
    let entry = this.map.get(id);
    if (!entry) {
      entry = [key, init()];
      this.map.set(id, entry);
    }
    return entry;
  }
  delete(key: unknown): boolean {
    return this.map.delete(keyId(key));
  }
  entries(): IterableIterator<[unknown, V]> {
    return this.map.values();
  }
}

/** FNV-1a with a murmur3 finalizer: a stable 32-bit hash of a string. */
export function fnv1a(text: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // final avalanche (murmur3 fmix32) so that similar keys spread over partitions
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A hash that is the same in every process and on every machine, for partitioning. */
export function stableHash(key: unknown): number {
  switch (typeof key) {
    case 'string':
      return fnv1a(key, 0x811c9dc5);
    case 'number':
      return fnv1a(String(key), 0x9e3779b9);
    case 'boolean':
      return key ? 1 : 0;
    default:
      return fnv1a(canonical(key), 0x27d4eb2f);
  }
}

/** Orders any two keys deterministically (used for sorted output and tests). */
export function compareKeys(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  const ca = canonical(a);
  const cb = canonical(b);
  return ca < cb ? -1 : ca > cb ? 1 : 0;
}

export function canonicalKey(key: unknown): string {
  return canonical(key);
}
