import type { ByteRange, ObjectStore } from '../ports/object-store.ts';

export interface RequestCounts {
  get: number;
  put: number;
  list: number;
  delete: number;
  bytesRead: number;
  bytesWritten: number;
}

/** Wraps a store and counts requests and bytes, so every batch can report what it cost. */
export class CountingObjectStore implements ObjectStore {
  readonly inner: ObjectStore;
  private readonly counts: RequestCounts = {
    get: 0,
    put: 0,
    list: 0,
    delete: 0,
    bytesRead: 0,
    bytesWritten: 0,
  };

  constructor(inner: ObjectStore) {
    this.inner = inner;
  }
  snapshot(): RequestCounts {
    return { ...this.counts };
  }
  since(before: RequestCounts): RequestCounts {
    const c = this.counts;
    return {
      get: c.get - before.get,
      put: c.put - before.put,
      list: c.list - before.list,
      delete: c.delete - before.delete,
      bytesRead: c.bytesRead - before.bytesRead,
      bytesWritten: c.bytesWritten - before.bytesWritten,
    };
  }
  async get(key: string, range?: ByteRange): Promise<Uint8Array | undefined> {
    this.counts.get++;
    const body = await this.inner.get(key, range);
    if (body) this.counts.bytesRead += body.length;
    return body;
  }
  put(key: string, body: Uint8Array): Promise<void> {
    this.counts.put++;
    this.counts.bytesWritten += body.length;
    return this.inner.put(key, body);
  }
  putIfAbsent(key: string, body: Uint8Array): Promise<boolean> {
    this.counts.put++;
    this.counts.bytesWritten += body.length;
    return this.inner.putIfAbsent(key, body);
  }
  list(prefix: string): Promise<string[]> {
    this.counts.list++;
    return this.inner.list(prefix);
  }
  delete(key: string): Promise<void> {
    this.counts.delete++;
    return this.inner.delete(key);
  }
  describe(): string {
    return this.inner.describe();
  }
}
