/**
 * Value-based keys and order-insensitive comparison helpers for the reference evaluator and the
 * tests that compare it with the engine. Nothing here imports the engine.
 */

/**
 * A canonical string for a value: equal for values that are equal by value (strings, numbers,
 * booleans, null, undefined, and arrays or plain objects of them, object keys in any order), and
 * different otherwise (`1` and `'1'` differ, so do `null` and `undefined`).
 */
export function canonicalKey(value: unknown): string {
  if (value === undefined) return 'u';
  if (value === null) return 'n';
  switch (typeof value) {
    case 'number':
      return Object.is(value, -0) ? 'd0' : `d${String(value)}`;
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'T' : 'F';
    case 'bigint':
      return `i${value.toString()}`;
    default:
      break;
  }
  if (Array.isArray(value)) return `[${value.map(canonicalKey).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalKey((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  throw new Error(`reference: cannot use a ${typeof value} as a key or compare it by value`);
}

/** A copy of `items` sorted by canonical key (a total, deterministic order). */
export function sortCanonical<T>(items: readonly T[]): T[] {
  return items
    .map((item) => ({ key: canonicalKey(item), item }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((e) => e.item);
}

/** Each batch sorted canonically: compares batch by batch, ignoring order inside a batch. */
export function unordered<T>(batches: readonly (readonly T[])[]): T[][] {
  return batches.map((batch) => sortCanonical(batch));
}

/** For `[K, V[]]` outputs (groupByKey, groupByKeyAndWindow): values sorted inside each group too. */
export function unorderedGroups<K, V>(
  batches: readonly (readonly (readonly [K, readonly V[]])[])[],
): [K, V[]][][] {
  return batches.map((batch) => sortCanonical(batch.map(([k, vs]): [K, V[]] => [k, sortCanonical(vs)])));
}

/** For cogroup outputs `[K, [V[], W[]]]`: both value lists sorted inside each group too. */
export function unorderedCogroups<K, V, W>(
  batches: readonly (readonly (readonly [K, readonly [readonly V[], readonly W[]]])[])[],
): [K, [V[], W[]]][][] {
  return batches.map((batch) =>
    sortCanonical(batch.map(([k, [vs, ws]]): [K, [V[], W[]]] => [k, [sortCanonical(vs), sortCanonical(ws)]])),
  );
}

/** Insertion-ordered map keyed by value (see {@link canonicalKey}). */
export class ValueMap<K, V> {
  private readonly entries = new Map<string, { key: K; value: V }>();

  get size(): number {
    return this.entries.size;
  }

  has(key: K): boolean {
    return this.entries.has(canonicalKey(key));
  }

  get(key: K): V | undefined {
    return this.entries.get(canonicalKey(key))?.value;
  }

  set(key: K, value: V): void {
    const id = canonicalKey(key);
    const existing = this.entries.get(id);
    if (existing) existing.value = value;
    else this.entries.set(id, { key, value });
  }

  delete(key: K): void {
    this.entries.delete(canonicalKey(key));
  }

  /** Returns the value for `key`, creating it with `init` first if absent. */
  upsert(key: K, init: () => V): V {
    const id = canonicalKey(key);
    let entry = this.entries.get(id);
    if (!entry) {
      entry = { key, value: init() };
      this.entries.set(id, entry);
    }
    return entry.value;
  }

  *[Symbol.iterator](): IterableIterator<[K, V]> {
    for (const { key, value } of this.entries.values()) yield [key, value];
  }

  clone(): ValueMap<K, V> {
    const copy = new ValueMap<K, V>();
    for (const [k, v] of this) copy.set(k, v);
    return copy;
  }
}
