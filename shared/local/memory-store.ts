import { type ByteRange, checkByteRange, compareKeys, type ObjectStore } from '../ports/object-store.ts';

/**
 * An object store in memory, for tests and `runBatches`. It keeps a copy of what is put and hands
 * out copies, like a real store: neither a writer nor a reader can change stored bytes in place.
 */
export class MemoryObjectStore implements ObjectStore {
  private readonly objects = new Map<string, Uint8Array>();

  async get(key: string, range?: ByteRange): Promise<Uint8Array | undefined> {
    checkByteRange(key, range);
    const body = this.objects.get(key);
    if (!body) return undefined;
    return range ? body.slice(range.start, range.end) : body.slice();
  }
  async put(key: string, body: Uint8Array): Promise<void> {
    this.objects.set(key, body.slice());
  }
  async putIfAbsent(key: string, body: Uint8Array): Promise<boolean> {
    if (this.objects.has(key)) return false;
    this.objects.set(key, body.slice());
    return true;
  }
  async list(prefix: string): Promise<string[]> {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys);
  }
  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }
  describe(): string {
    return 'memory';
  }
}
