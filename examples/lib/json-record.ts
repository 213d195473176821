/**
 * Input records of the JSON examples arrive in two shapes: as a line of text (`--source file:...`
 * or stdin with the default `--format lines`, and SQS messages sent as lines), or already parsed
 * (`--format json`, the HTTP source with `--format json`, `sluice send --format json`). `asJson`
 * accepts both, so the same pipeline runs with either format.
 */

/** The record as a JSON value: a string is parsed (undefined when it is not JSON), anything else is returned as is. */
export function asJson(record: unknown): unknown {
  if (typeof record !== 'string') return record;
  try {
    return JSON.parse(record);
  } catch {
    return undefined; // malformed JSON: the caller skips the record
  }
}

/** The record as a JSON object, or undefined when it is not one. */
export function asObject(record: unknown): Record<string, unknown> | undefined {
  const v = asJson(record);
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}
