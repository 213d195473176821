import { isUtf8 } from 'node:buffer';
import type { DeadLetter } from '../ports/source.ts';

/**
 * The one place where the local sources (file, stdin, HTTP) turn bytes into records, so they all
 * follow the same rules:
 * - lines end at `\n`; a trailing `\r` is stripped (CRLF files read like LF files);
 * - a line that is not valid UTF-8 is dead-lettered with reason `invalid UTF-8 at byte N` (N counts
 *   from the start of the line) and its raw bytes as base64;
 * - with `--format json`, a line that is not JSON is dead-lettered (`not valid JSON: ...`), and so is
 *   one whose strings hold a lone UTF-16 surrogate (`\ud800` escapes), which no UTF-8 sink can store;
 *   blank lines are skipped.
 */

export type RecordFormat = 'lines' | 'json';

const LF = 0x0a;
const CR = 0x0d;

/** The offset of the first byte that is not part of a valid UTF-8 sequence, or -1. */
export function invalidUtf8At(bytes: Uint8Array): number {
  if (isUtf8(bytes)) return -1;
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    let need: number;
    let min: number;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else return i;
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

const LONE_SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function wellFormed(value: unknown): boolean {
  if (typeof value === 'string') return !LONE_SURROGATE.test(value);
  if (Array.isArray(value)) return value.every(wellFormed);
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) if (LONE_SURROGATE.test(k) || !wellFormed(v)) return false;
  }
  return true;
}

/**
 * Parses JSON text, or says why it cannot be used. Text with a `\uD8xx`-style escape is checked
 * for lone surrogates (a pair is fine).
 */
export function parseJsonRecord(text: string): { value: unknown } | { reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { reason: `not valid JSON: ${(err as Error).message}` };
  }
  if (LONE_SURROGATE_ESCAPE.test(text) && !wellFormed(value))
    return { reason: 'a JSON string holds a lone UTF-16 surrogate (\\uD800-\\uDFFF without its pair)' };
  return { value };
}

/** Decodes one line (given as text that is known to be valid): as text, or as JSON. */
export function decodeLine<T>(
  line: string,
  format: RecordFormat,
  origin: string,
  records: T[],
  deadLetters: DeadLetter[],
): void {
  if (format === 'lines') {
    records.push(line as T);
    return;
  }
  if (line.trim() === '') return;
  const parsed = parseJsonRecord(line);
  if ('value' in parsed) records.push(parsed.value as T);
  else deadLetters.push({ raw: line, reason: parsed.reason, origin });
}

/**
 * Decodes one line given as bytes (without its `\n`): strips a trailing `\r`, dead-letters
 * invalid UTF-8, then decodes the text as `decodeLine` does.
 */
export function decodeLineBytes<T>(
  bytes: Uint8Array,
  format: RecordFormat,
  origin: string,
  records: T[],
  deadLetters: DeadLetter[],
): void {
  const end = bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.length - 1 : bytes.length;
  const line = bytes.subarray(0, end);
  const bad = invalidUtf8At(line);
  if (bad >= 0) {
    deadLetters.push({
      raw: Buffer.from(line).toString('base64'),
      reason: `invalid UTF-8 at byte ${bad}`,
      origin,
    });
    return;
  }
  decodeLine(
    Buffer.from(line.buffer, line.byteOffset, line.length).toString('utf8'),
    format,
    origin,
    records,
    deadLetters,
  );
}

/**
 * Splits a byte stream into lines, across chunk boundaries: bytes are kept until their `\n`
 * arrives, so a line or a multi-byte UTF-8 character split between two chunks comes out whole.
 * Holds at most one unfinished line between calls.
 */
export class LineSplitter {
  private rest: Buffer = Buffer.alloc(0);

  /** The bytes of the unfinished last line. */
  get pending(): number {
    return this.rest.length;
  }

  /** Calls `onLine` with each complete line (without `\n`) of `rest + chunk`. */
  push(chunk: Uint8Array, onLine: (line: Buffer) => void): void {
    const buf =
      this.rest.length === 0
        ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
        : Buffer.concat([this.rest, chunk]);
    let start = 0;
    let nl = buf.indexOf(LF, start);
    while (nl >= 0) {
      onLine(buf.subarray(start, nl));
      start = nl + 1;
      nl = buf.indexOf(LF, start);
    }
    this.rest = Buffer.from(buf.subarray(start));
  }

  /** At the end of the input: the unfinished last line, if any (a file need not end with `\n`). */
  end(onLine: (line: Buffer) => void): void {
    if (this.rest.length > 0) onLine(this.rest);
    this.rest = Buffer.alloc(0);
  }
}
