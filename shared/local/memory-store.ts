import type { ByteRange, ObjectStore } from '../ports/object-store.ts';

/** An object store in memory, for tests and `runBatches`. */
export class MemoryObjectStore implements ObjectStore {
  private readonly objects = new Map<string, Uint8Array>();

  async get(key: string, range?: ByteRange): Promise<Uint8Array | undefined> {
    const body = this.objects.get(key);
    if (!body) return undefined;
    return range ? body.subarray(range.start, range.end) : body;
  }
  async put(key: string, body: Uint8Array): Promise<void> {
    this.objects.set(key, body);
  }
  async putIfAbsent(key: string, body: Uint8Array): Promise<boolean> {
    if (this.objects.has(key)) return false;
    this.objects.set(key, body);
    return true;
  }
  async list(prefix: string): Promise<string[]> {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }
  describe(): string {
    return 'memory';
  }
}
