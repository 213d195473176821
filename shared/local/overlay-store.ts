import { SluiceError } from '../errors.ts';
import type { ByteRange, ObjectStore } from '../ports/object-store.ts';

/** A write to a store opened read-only (the original store of a replay). */
export class ReadOnlyStoreError extends SluiceError {
  constructor(store: string, op: string, key: string) {
    super(`${store} is opened read-only (the original store of a replay): refused ${op} ${key}`);
    this.name = 'ReadOnlyStoreError';
  }
}

/** Wraps a store so that reads pass through and every write or delete throws. */
export class ReadOnlyObjectStore implements ObjectStore {
  constructor(readonly inner: ObjectStore) {}
  get(key: string, range?: ByteRange): Promise<Uint8Array | undefined> {
    return this.inner.get(key, range);
  }
  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }
  async put(key: string, _body?: Uint8Array): Promise<void> {
    throw new ReadOnlyStoreError(this.inner.describe(), 'put', key);
  }
  async putIfAbsent(key: string, _body?: Uint8Array): Promise<boolean> {
    throw new ReadOnlyStoreError(this.inner.describe(), 'putIfAbsent', key);
  }
  async delete(key: string): Promise<void> {
    throw new ReadOnlyStoreError(this.inner.describe(), 'delete', key);
  }
  describe(): string {
    return `${this.inner.describe()} (read-only)`;
  }
}

/** The batch time in an `inputs/<t>/...` or `batches/<t>/...` key, or undefined for other keys. */
function overlaidTime(key: string): number | undefined {
  const m = /^(?:inputs|batches)\/(\d+)\//.exec(key);
  return m ? Number(m[1]) : undefined;
}

/**
 * The store a replay writes to: everything is read from and written to `target`, except input
 * blocks (`inputs/<t>/`) and write-ahead entries (`batches/<t>/`) of the batch times in
 * [fromMs, toMs], which are read from `original` as well (the target's own copy first). The
 * original is wrapped read-only, so a write meant for it throws instead of changing it; deletes
 * (retention clean-up of the replay) only touch the target.
 *
 * To the driver this looks like a store whose batches were received but never committed: it
 * re-runs them from their input blocks, as after a crash.
 */
export class ReplayOverlayStore implements ObjectStore {
  readonly original: ReadOnlyObjectStore;
  readonly target: ObjectStore;
  readonly fromMs: number;
  readonly toMs: number;

  constructor(options: { original: ObjectStore; target: ObjectStore; fromMs?: number; toMs?: number }) {
    this.original =
      options.original instanceof ReadOnlyObjectStore
        ? options.original
        : new ReadOnlyObjectStore(options.original);
    this.target = options.target;
    this.fromMs = options.fromMs ?? Number.NEGATIVE_INFINITY;
    this.toMs = options.toMs ?? Number.POSITIVE_INFINITY;
  }

  private overlaid(key: string): boolean {
    const t = overlaidTime(key);
    return t !== undefined && t >= this.fromMs && t <= this.toMs;
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array | undefined> {
    const own = await this.target.get(key, range);
    if (own !== undefined || !this.overlaid(key)) return own;
    return this.original.get(key, range);
  }

  async list(prefix: string): Promise<string[]> {
    const own = await this.target.list(prefix);
    const mayOverlay = ['inputs/', 'batches/'].some((p) => prefix.startsWith(p) || p.startsWith(prefix));
    if (!mayOverlay) return own;
    const theirs = (await this.original.list(prefix)).filter((k) => this.overlaid(k));
    if (theirs.length === 0) return own;
    return [...new Set([...own, ...theirs])].sort();
  }

  put(key: string, body: Uint8Array): Promise<void> {
    return this.target.put(key, body);
  }

  async putIfAbsent(key: string, body: Uint8Array): Promise<boolean> {
    // a write-ahead entry the original holds counts as present: the replay never writes its own
    if (this.overlaid(key) && (await this.original.get(key)) !== undefined) return false;
    return this.target.putIfAbsent(key, body);
  }

  delete(key: string): Promise<void> {
    return this.target.delete(key);
  }

  describe(): string {
    return `${this.target.describe()} (replay of ${this.original.inner.describe()})`;
  }
}
