/**
 * Record blocks: one byte of format, then the body, then the CRC-32 of both (4 bytes, big
 * endian), so a corrupt block is caught on read without fetching its lineage record.
 *   0  empty block
 *   1  msgpackr (any records)
 *   2  UTF-8 lines (only strings without a newline: the common case of raw text input,
 *      about 3x faster to decode than msgpack and as small)
 *
 * A stored RDD partition or shuffle map output carries its lineage record in a trailer after
 * the data (issue 11: one conditional PUT commits data and lineage together):
 *   <data> <lineage JSON> <u32 JSON length> <u32 CRC-32 of the JSON> "SLT1"
 * A trailer, not a header, so the byte ranges of a shuffle object's buckets start at 0 as before
 * and a reduce task's range read never touches it. `decodeBlock` drops the trailer; an object
 * without one (written before) is a plain block, its lineage in `<key>.lineage.json`.
 *
 * @module
 */
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import { UnsupportedRecordError } from '../errors.ts';

export { UnsupportedRecordError };

const EMPTY = 0;
const MSGPACK = 1;
const LINES = 2;

/**
 * What records may hold, through a shuffle or a stored block (docs/API.md, "Records"): JSON values,
 * `undefined`, bigint, Date, RegExp, Error, Set and typed arrays (a Buffer stays a Buffer), nested
 * as deep as needed. `encodeBlock` refuses a record that is, or whose tuple elements are, a Map or
 * an instance of another class (it does not look deeper, to stay cheap): those would come back as
 * plain objects.
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: true });

const ALLOWED_PROTOTYPES = new Set<unknown>([
  Object.prototype,
  Array.prototype,
  null,
  Set.prototype,
  Date.prototype,
  RegExp.prototype,
  Error.prototype,
  Buffer.prototype,
  ...[
    Uint8Array,
    Int8Array,
    Uint8ClampedArray,
    Uint16Array,
    Int16Array,
    Uint32Array,
    Int32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
  ].map((c) => c.prototype),
]);

/** Refuses a record (or an element of a tuple record) that is an instance of a class the codec does not keep. */
function checkRecord(r: unknown): void {
  if (typeof r !== 'object' || r === null) return;
  const proto = Object.getPrototypeOf(r);
  if (ALLOWED_PROTOTYPES.has(proto) || r instanceof Error) {
    if (Array.isArray(r) && r.length <= 4) for (const e of r) checkRecord(e);
    return;
  }
  if (r instanceof Map) {
    throw new UnsupportedRecordError(
      'a record holds a Map, which would come back from a shuffle or a stored block as a plain object: ' +
        'use an array of [key, value] pairs (or a plain object with string keys) instead',
    );
  }
  const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? 'an unknown class';
  throw new UnsupportedRecordError(
    `a record holds an instance of class ${name}, which would come back from a shuffle or a stored ` +
      'block as a plain object without its class and methods: convert it to a plain object first',
  );
}

function seal(out: Buffer): Buffer {
  out.writeUInt32BE(crc32(out.subarray(0, out.length - 4)), out.length - 4);
  return out;
}

/** The newlines in `text`, counting no further than `limit` (more means: not one per record). */
function newlines(text: string, limit: number): number {
  let n = 0;
  for (let at = text.indexOf('\n'); at !== -1 && n < limit; at = text.indexOf('\n', at + 1)) n++;
  return n;
}

export function encodeBlock(records: readonly unknown[]): Uint8Array {
  if (records.length === 0) return seal(Buffer.from([EMPTY, 0, 0, 0, 0]));
  let strings = true;
  for (let i = 0; i < records.length; i++) {
    if (typeof records[i] !== 'string') {
      strings = false;
      break;
    }
  }
  if (strings) {
    const text = (records as readonly string[]).join('\n');
    // lines when no record holds a newline: the text then has exactly one between each two records
    // (counting them in the joined text is several times cheaper than a search in every record)
    if (newlines(text, records.length) === records.length - 1) {
      const out = Buffer.allocUnsafe(5 + Buffer.byteLength(text));
      out[0] = LINES;
      out.write(text, 1, 'utf8');
      return seal(out);
    }
  }
  for (let i = 0; i < records.length; i++) checkRecord(records[i]);
  const body = packr.pack(records as unknown[]);
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = MSGPACK;
  body.copy(out, 1);
  return seal(out);
}

export class CorruptBlockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptBlockError';
  }
}

const TRAILER_MAGIC = 0x534c5431; // "SLT1"

/** The data of a stored object followed by its lineage trailer (see the module comment). */
export function frameWithLineage(data: Uint8Array, lineage: unknown): Uint8Array {
  const json = Buffer.from(JSON.stringify(lineage), 'utf8');
  const out = Buffer.allocUnsafe(data.length + json.length + 12);
  out.set(data, 0);
  json.copy(out, data.length);
  out.writeUInt32BE(json.length, data.length + json.length);
  out.writeUInt32BE(crc32(json), data.length + json.length + 4);
  out.writeUInt32BE(TRAILER_MAGIC, data.length + json.length + 8);
  return out;
}

/**
 * Splits a stored object into its data and the lineage of its trailer; `lineage` is undefined
 * for an object written without one (before issue 11). A damaged trailer is a CorruptBlockError.
 */
export function unframe<L = unknown>(bytes: Uint8Array): { data: Uint8Array; lineage?: L } {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (buf.length < 12 || buf.readUInt32BE(buf.length - 4) !== TRAILER_MAGIC) return { data: buf };
  const len = buf.readUInt32BE(buf.length - 12);
  const start = buf.length - 12 - len;
  if (start < 0) throw new CorruptBlockError('lineage trailer length is past the start of the object');
  const json = buf.subarray(start, buf.length - 12);
  if (crc32(json) !== buf.readUInt32BE(buf.length - 8))
    throw new CorruptBlockError('lineage trailer checksum mismatch');
  return { data: buf.subarray(0, start), lineage: JSON.parse(json.toString('utf8')) as L };
}

/** Decodes a stored object (a block, with or without a lineage trailer). */
export function decodeBlock<T = unknown>(bytes: Uint8Array): T[] {
  return decodeSealed<T>(unframe(bytes).data);
}

/** Decodes one sealed block exactly (a shuffle bucket read by byte range: never a trailer). */
export function decodeSealed<T = unknown>(bytes: Uint8Array): T[] {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (buf.length < 5) throw new CorruptBlockError(`record block of ${buf.length} bytes is truncated`);
  const end = buf.length - 4;
  if (crc32(buf.subarray(0, end)) !== buf.readUInt32BE(end)) {
    throw new CorruptBlockError('record block checksum mismatch');
  }
  switch (buf[0]) {
    case EMPTY:
      return [];
    case LINES:
      return buf.toString('utf8', 1, end).split('\n') as T[];
    case MSGPACK:
      return packr.unpack(buf.subarray(1, end)) as T[];
    default:
      throw new CorruptBlockError(`unknown record block format ${buf[0]}`);
  }
}

/** The checksum of a block as stored in lineage: its sealed CRC-32, hex. */
export function blockChecksum(block: Uint8Array): string {
  const buf = Buffer.from(block.buffer, block.byteOffset, block.length);
  return buf
    .readUInt32BE(buf.length - 4)
    .toString(16)
    .padStart(8, '0');
}

export function checksum(bytes: Uint8Array): string {
  return crc32(bytes).toString(16).padStart(8, '0');
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value, null, 1));
}

export function decodeJson<T>(bytes: Uint8Array): T {
  return JSON.parse(decoder.decode(bytes)) as T;
}

/** JSON lines for output people read; `undefined` inside tuples becomes null. */
export function encodeJsonLines(records: readonly unknown[]): Uint8Array {
  let text = '';
  for (const r of records) text += `${JSON.stringify(r === undefined ? null : r)}\n`;
  return encoder.encode(text);
}

export function encodeTextLines(records: readonly unknown[]): Uint8Array {
  let text = '';
  for (const r of records) text += `${typeof r === 'string' ? r : JSON.stringify(r)}\n`;
  return encoder.encode(text);
}
