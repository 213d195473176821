/**
 * The object store port: the only durable place the engine writes to.
 *
 * Local implementations live in `shared/local/` (a directory, and memory for tests);
 * the S3 implementation lives in `aws/`. Keys are `/`-separated relative paths.
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
