import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type ByteRange, checkByteRange, compareKeys, type ObjectStore } from '../ports/object-store.ts';

/**
 * A write in progress (`writeTemp`): `.<name>.<12 hex digits>.tmp` beside its target, never listed
 * as a key. The leading dot hides it from readers of the store's files that follow the Hadoop rule
 * (files starting with `.` or `_` are not data) or glob `part-*`: a writer killed between write and
 * rename (a fenced driver's worker, kill -9) leaves no file that looks like an output part.
 * Older versions named it `<name>.<hex>.tmp`; those are still recognised (and cleaned up).
 */
const TEMP_FILE = /\.[0-9a-f]{12}\.tmp$/;

/** The temporary file a write of `file` goes through (same directory: the rename stays atomic). */
export function tempFileFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** What a store holds on disk (temporary files included). */
export interface StoreUsage {
  readonly bytes: number;
  readonly objects: number;
  readonly byPrefix: Readonly<Record<string, { readonly bytes: number; readonly objects: number }>>;
}

/**
 * An object store on a local directory, shared by the driver and the worker threads.
 * `put` writes a temporary file and renames it (atomic on POSIX), and `putIfAbsent` uses
 * `link(2)`, which fails if the target exists, so exactly one writer wins.
 */
export class DirectoryObjectStore implements ObjectStore {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  private pathOf(key: string): string {
    // A `..` segment would leave the root; `a..b` is an ordinary name.
    if (key.startsWith('/') || key.split('/').includes('..')) throw new Error(`invalid object key: ${key}`);
    return path.join(this.root, key);
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array | undefined> {
    checkByteRange(key, range);
    try {
      if (!range) return await fs.readFile(this.pathOf(key));
      const handle = await fs.open(this.pathOf(key), 'r');
      try {
        const length = range.end - range.start;
        const buf = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(buf, 0, length, range.start);
        return buf.subarray(0, bytesRead);
      } finally {
        await handle.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private async writeTemp(file: string, body: Uint8Array): Promise<string> {
    const tmp = tempFileFor(file);
    try {
      await fs.writeFile(tmp, body);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(tmp, body);
    }
    return tmp;
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    const file = this.pathOf(key);
    const tmp = await this.writeTemp(file, body);
    await fs.rename(tmp, file);
  }

  async putIfAbsent(key: string, body: Uint8Array): Promise<boolean> {
    const file = this.pathOf(key);
    const tmp = await this.writeTemp(file, body);
    try {
      await fs.link(tmp, file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const walk = async (dir: string, rel: string): Promise<void> => {
      const entries = await readEntries(dir);
      for (const e of entries) {
        const key = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(path.join(dir, e.name), key);
        } else if (key.startsWith(prefix) && !TEMP_FILE.test(e.name)) out.push(key);
      }
    };
    await walk(dirKey ? this.pathOf(dirKey) : this.root, dirKey);
    return out.sort(compareKeys);
  }

  /** Every file under the root (temporary ones included), with its key, size and age. */
  private async walkFiles(
    visit: (key: string, file: string, stat: import('node:fs').Stats) => void | Promise<void>,
  ): Promise<void> {
    const walk = async (dir: string, rel: string): Promise<void> => {
      const entries = await readEntries(dir);
      for (const e of entries) {
        const key = rel ? `${rel}/${e.name}` : e.name;
        const file = path.join(dir, e.name);
        if (e.isDirectory()) await walk(file, key);
        else if (e.isFile()) {
          const stat = await fs.stat(file).catch(() => undefined);
          if (stat) await visit(key, file, stat);
        }
      }
    };
    await walk(this.root, '');
  }

  /**
   * Removes the temporary files (`.<name>.<random>.tmp`) that a writer killed between write and
   * rename left behind; only those older than `olderThanMs`, so a write in flight is never touched.
   * `sluice run` calls it at start. Returns how many it removed.
   */
  async removeStaleTempFiles(olderThanMs = 60_000): Promise<number> {
    const before = Date.now() - olderThanMs;
    let removed = 0;
    await this.walkFiles(async (_key, file, stat) => {
      if (TEMP_FILE.test(file) && stat.mtimeMs < before) {
        await fs.rm(file, { force: true });
        removed++;
      }
    });
    return removed;
  }

  /** Bytes and objects in the store, in all and by top-level prefix (`inputs/`, `rdd/`, ...). */
  async usage(): Promise<StoreUsage> {
    const byPrefix: Record<string, { bytes: number; objects: number }> = {};
    let bytes = 0;
    let objects = 0;
    await this.walkFiles((key, _file, stat) => {
      const slash = key.indexOf('/');
      const prefix = slash >= 0 ? key.slice(0, slash + 1) : key;
      const p = (byPrefix[prefix] ??= { bytes: 0, objects: 0 });
      p.bytes += stat.size;
      p.objects++;
      bytes += stat.size;
      objects++;
    });
    return { bytes, objects, byPrefix };
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.pathOf(key), { force: true });
  }

  describe(): string {
    return `dir:${this.root}`;
  }
}

/** The entries of a directory; none when it does not exist (a key prefix with nothing under it). */
async function readEntries(dir: string): Promise<import('node:fs').Dirent[]> {
  try {
    return await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
