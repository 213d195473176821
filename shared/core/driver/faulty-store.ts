import { SluiceError } from '../../errors.ts';
import type { ByteRange, ObjectStore } from '../../ports/object-store.ts';
import type { FaultInjector } from '../faults.ts';

/** A store request that did not answer in time (injected by `slowStore`); retrying it may succeed. */
export class StoreTimeoutError extends SluiceError {
  constructor(op: string, key: string, afterMs: number) {
    super(`store ${op} ${key} timed out after ${afterMs} ms (injected slowStore fault)`, { retryable: true });
    this.name = 'StoreTimeoutError';
  }
}

/**
 * Fault injection on the ObjectStore port (`faults.slowStore`): some requests take longer, and a
 * few time out, as S3 does under load. Decisions are a function of the seed, the operation, the key
 * and how many times that operation on that key was asked before, so a run can be replayed.
 * A timed-out request never reaches the inner store.
 */
export class FaultyObjectStore implements ObjectStore {
  readonly inner: ObjectStore;
  private readonly faults: FaultInjector;
  private readonly seen = new Map<string, number>();

  constructor(
    inner: ObjectStore,
    faults: FaultInjector,
    private readonly incarnation = 0,
  ) {
    this.inner = inner;
    this.faults = faults;
  }

  private async before(op: string, key: string): Promise<void> {
    const id = `${op} ${key}`;
    const n = this.seen.get(id) ?? 0;
    this.seen.set(id, n + 1);
    if (this.seen.size > 100_000) this.seen.clear(); // bounded: a replay only needs recent keys
    const fault = this.faults.forStoreRequest(op, key, n, this.incarnation);
    if (!fault) return;
    await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault.timeout) throw new StoreTimeoutError(op, key, fault.delayMs);
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array | undefined> {
    await this.before('get', key);
    return this.inner.get(key, range);
  }
  async put(key: string, body: Uint8Array): Promise<void> {
    await this.before('put', key);
    return this.inner.put(key, body);
  }
  async putIfAbsent(key: string, body: Uint8Array): Promise<boolean> {
    await this.before('putIfAbsent', key);
    return this.inner.putIfAbsent(key, body);
  }
  async list(prefix: string): Promise<string[]> {
    await this.before('list', prefix);
    return this.inner.list(prefix);
  }
  async delete(key: string): Promise<void> {
    await this.before('delete', key);
    return this.inner.delete(key);
  }
  describe(): string {
    return this.inner.describe();
  }
}
