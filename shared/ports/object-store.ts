/**
 * The object store port: the only durable place the engine writes to.
 *
 * Local implementations live in `shared/local/` (a directory, and memory for tests);
 * the S3 implementation lives in `aws/`. Keys are `/`-separated relative paths.
 *
 * @module
 */
export interface ByteRange {
  /** First byte, inclusive. */
  readonly start: number;
  /** Last byte, exclusive. */
  readonly end: number;
}

export interface ObjectStore {
  /** Reads an object (or a byte range of it). Resolves `undefined` when the key does not exist. */
  get(key: string, range?: ByteRange): Promise<Uint8Array | undefined>;
  /** Writes an object atomically: readers see the old bytes or the new ones, never a mix. */
  put(key: string, body: Uint8Array): Promise<void>;
  /**
   * Writes an object only if no object exists under `key` (S3: `If-None-Match: *`).
   * Resolves `true` for the one writer that won, `false` for every other.
   */
  putIfAbsent(key: string, body: Uint8Array): Promise<boolean>;
  /** Lists keys under a prefix, in lexicographic order. */
  list(prefix: string): Promise<string[]>;
  /** Deletes an object; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** A description for logs and `sluice status`, such as `dir:/tmp/x` or `s3://bucket/prefix`. */
  describe(): string;
}

/**
 * Rejects a range no store can serve the same way: negative, fractional or backwards. A range that
 * reaches past the end of an object is fine (it reads what is there, or nothing).
 */
export function checkByteRange(key: string, range: ByteRange | undefined): void {
  if (!range) return;
  const { start, end } = range;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start) {
    throw new RangeError(
      `invalid byte range [${start}, ${end}) for ${key}: start and end must be whole numbers with 0 <= start <= end`,
    );
  }
}

/**
 * The order of `list`: by Unicode code point, which is the order of the keys' UTF-8 bytes, the
 * order S3 lists in. It differs from JavaScript's default string order (UTF-16 units) only between
 * a character beyond U+FFFF and one in U+E000..U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx && !sy && y >= 0xe000) return 1;
    if (sy && !sx && x >= 0xe000) return -1;
    return x - y;
  }
  return a.length - b.length;
}
