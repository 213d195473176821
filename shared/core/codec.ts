/**
 * Record blocks: one byte of format, then the body, then the CRC-32 of both (4 bytes, big
 * endian), so a corrupt block is caught on read without fetching its lineage record.
 *   0  empty block
 *   1  msgpackr (any records)
 *   2  UTF-8 lines (only strings without a newline: the common case of raw text input,
 *      about 3x faster to decode than msgpack and as small)
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

export function encodeBlock(records: readonly unknown[]): Uint8Array {
  if (records.length === 0) return seal(Buffer.from([EMPTY, 0, 0, 0, 0]));
  let allLines = true;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (typeof r !== 'string' || r.includes('\n')) {
      allLines = false;
      break;
    }
  }
  if (allLines) {
    const text = (records as readonly string[]).join('\n');
    const out = Buffer.allocUnsafe(5 + Buffer.byteLength(text));
    out[0] = LINES;
    out.write(text, 1, 'utf8');
    return seal(out);
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

export function decodeBlock<T = unknown>(bytes: Uint8Array): T[] {
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
