/**
 * Parquet part files for `saveAsParquet` (written with hyparquet-writer).
 *
 * Each record is one row: a plain object whose fields are the columns. The schema of a part file
 * is either declared (`saveAsParquet(name, { schema })`) or taken from ALL the records of the
 * partition: columns in the order their fields first appear, each column's type from its
 * non-null values:
 *
 *   boolean -> boolean     string -> string     Date -> timestamp (milliseconds, UTC)
 *   number  -> bigint when every value of the column is a safe integer, else double
 *   bigint  -> bigint      object or array -> json (a string column holding JSON text)
 *
 * A column with no non-null value in the partition is a string column of nulls. A partition
 * with no records and no declared schema writes no part file (a Parquet file needs a column;
 * its lineage record says 0 records). Every column is
 * nullable: a missing field or null is a null. A record that does not fit (not an object; a
 * field whose value is of another kind than its column, e.g. a string where the column is
 * bigint; with a declared schema, a field the schema does not have, or a fraction in a bigint
 * column) is not written: it goes to the dead letters (or the pipeline's onRecordError) with a
 * reason naming the field. An inferred schema may differ between part files (a column that is
 * bigint in one partition and double in another); declare the schema when a catalog table reads
 * the files, so every file has the column types the table says.
 *
 * @module
 */
import { parquetWriteBuffer } from 'hyparquet-writer';

export type OutputFormat = 'text' | 'jsonl' | 'parquet';

/** Column types, named as Athena (Hive) names them. */
export type ParquetType = 'string' | 'bigint' | 'double' | 'boolean' | 'timestamp' | 'json';
export type ParquetSchema = Readonly<Record<string, ParquetType>>;

export const PARQUET_TYPES: readonly ParquetType[] = [
  'string',
  'bigint',
  'double',
  'boolean',
  'timestamp',
  'json',
];

/** The Athena (Hive DDL) type of a column: json columns are strings of JSON text. */
export function athenaType(type: ParquetType): string {
  return type === 'json' ? 'string' : type;
}

/** Throws a message naming the bad column when `schema` is not a valid declared schema. */
export function checkParquetSchema(schema: unknown, where: string): ParquetSchema {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw new Error(
      `${where}: schema must be an object of column name to type, e.g. { word: 'string', count: 'bigint' }`,
    );
  }
  const entries = Object.entries(schema);
  if (entries.length === 0) throw new Error(`${where}: schema has no columns`);
  for (const [name, type] of entries) {
    if (!PARQUET_TYPES.includes(type as ParquetType)) {
      throw new Error(
        `${where}: column '${name}' has type '${String(type)}'; use one of ${PARQUET_TYPES.join(', ')}`,
      );
    }
  }
  return schema as ParquetSchema;
}

type Kind = 'string' | 'int' | 'double' | 'bigint' | 'boolean' | 'timestamp' | 'json';

function kindOf(v: unknown): Kind | undefined {
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'bigint':
      return 'bigint';
    case 'number':
      return Number.isSafeInteger(v) ? 'int' : 'double';
    case 'object':
      if (v === null) return undefined;
      return v instanceof Date ? 'timestamp' : 'json';
    case 'undefined':
      return undefined;
    default:
      return 'json'; // symbols and functions are caught by the JSON check below
  }
}

function describeKind(k: Kind): string {
  return k === 'int'
    ? 'an integer'
    : k === 'double'
      ? 'a fraction'
      : k === 'json'
        ? 'an object or array'
        : `a ${k}`;
}

/** Whether a value of kind `k` fits a column of type `t` (numbers widen: int -> bigint, double). */
function fits(k: Kind, t: ParquetType): boolean {
  switch (t) {
    case 'bigint':
      return k === 'int' || k === 'bigint';
    case 'double':
      return k === 'int' || k === 'double';
    default:
      return k === t;
  }
}

function isRow(r: unknown): r is Record<string, unknown> {
  return (
    r !== null && typeof r === 'object' && !Array.isArray(r) && !(r instanceof Date) && !(r instanceof Map)
  );
}

/**
 * The schema of a part file from its records (see the module comment); records that do not fit
 * are given to `onBad` with the reason, and left out.
 */
export function inferParquetSchema(
  records: readonly unknown[],
  onBad: (record: unknown, reason: string) => void,
): { schema: Record<string, ParquetType>; rows: Record<string, unknown>[] } {
  // first pass: the column kinds (first non-null value decides; int and double widen to double)
  const kinds = new Map<string, Kind | undefined>();
  const notRows = new Set<unknown>();
  for (const r of records) {
    if (!isRow(r)) {
      notRows.add(r);
      continue;
    }
    for (const [name, v] of Object.entries(r)) {
      const k = kindOf(v);
      const have = kinds.get(name);
      if (have === undefined) kinds.set(name, k);
      else if (k !== undefined && have === 'int' && k === 'double') kinds.set(name, 'double');
    }
  }
  const schema: Record<string, ParquetType> = {};
  for (const [name, k] of kinds) {
    schema[name] = k === undefined ? 'string' : k === 'int' ? 'bigint' : k;
  }
  const rows: Record<string, unknown>[] = [];
  for (const r of records) {
    if (notRows.has(r) || !isRow(r)) {
      onBad(r, notRowReason(r));
      continue;
    }
    const why = misfit(r, schema, false);
    if (why) onBad(r, why);
    else rows.push(r);
  }
  return { schema, rows };
}

/** The records that fit a declared schema; the others go to `onBad` with the reason. */
export function rowsFitting(
  records: readonly unknown[],
  schema: ParquetSchema,
  onBad: (record: unknown, reason: string) => void,
): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const r of records) {
    if (!isRow(r)) {
      onBad(r, notRowReason(r));
      continue;
    }
    const why = misfit(r, schema, true);
    if (why) onBad(r, why);
    else rows.push(r);
  }
  return rows;
}

function notRowReason(r: unknown): string {
  const what =
    r === null ? 'null' : Array.isArray(r) ? 'an array' : r instanceof Date ? 'a Date' : `a ${typeof r}`;
  return `a Parquet row must be an object whose fields are the columns, not ${what} (map each record to an object first, e.g. ([word, count]) => ({ word, count }))`;
}

function misfit(r: Record<string, unknown>, schema: ParquetSchema, declared: boolean): string | undefined {
  for (const [name, v] of Object.entries(r)) {
    const type = schema[name];
    if (type === undefined) {
      if (declared)
        return `field '${name}' is not in the declared schema (${Object.keys(schema).join(', ')})`;
      continue;
    }
    const k = kindOf(v);
    if (k === undefined) continue;
    if (!fits(k, type)) {
      return `field '${name}' is ${describeKind(k)} (${preview(v)}), but the column is ${type}${declared ? ' in the declared schema' : " (from the partition's other records)"}`;
    }
    if (type === 'bigint' && typeof v === 'bigint' && (v < -(2n ** 63n) || v >= 2n ** 63n)) {
      return `field '${name}' (${v}) does not fit in a 64-bit bigint column`;
    }
    if (type === 'json') {
      try {
        if (JSON.stringify(v) === undefined) return `field '${name}' cannot be written as JSON`;
      } catch (err) {
        return `field '${name}' cannot be written as JSON: ${(err as Error).message}`;
      }
    }
    if (type === 'timestamp' && Number.isNaN((v as Date).getTime()))
      return `field '${name}' is an invalid Date`;
  }
  return undefined;
}

function preview(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'bigint' ? `${v}n` : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

const ELEMENT: Record<
  ParquetType,
  { type: 'BYTE_ARRAY' | 'INT64' | 'DOUBLE' | 'BOOLEAN'; converted_type?: 'UTF8' | 'TIMESTAMP_MILLIS' }
> = {
  string: { type: 'BYTE_ARRAY', converted_type: 'UTF8' },
  json: { type: 'BYTE_ARRAY', converted_type: 'UTF8' },
  bigint: { type: 'INT64' },
  double: { type: 'DOUBLE' },
  boolean: { type: 'BOOLEAN' },
  timestamp: { type: 'INT64', converted_type: 'TIMESTAMP_MILLIS' },
};

function column(type: ParquetType, values: unknown[]): unknown[] {
  switch (type) {
    case 'bigint':
      return values.map((v) => (v === null || v === undefined ? null : BigInt(v as number | bigint)));
    case 'double':
      return values.map((v) => (v === null || v === undefined ? null : Number(v)));
    case 'json':
      return values.map((v) => (v === null || v === undefined ? null : JSON.stringify(v)));
    default:
      return values.map((v) => (v === undefined ? null : v));
  }
}

/** One Parquet file (SNAPPY-compressed) of `rows` with `schema`; every column nullable. */
export function encodeParquet(rows: readonly Record<string, unknown>[], schema: ParquetSchema): Uint8Array {
  const names = Object.keys(schema);
  const columnData = names.map((name) => ({
    name,
    data: column(
      schema[name]!,
      rows.map((r) => r[name]),
    ),
  }));
  const buffer = parquetWriteBuffer({
    columnData: columnData as any,
    schema: [
      { name: 'root', num_children: names.length },
      ...names.map((name) => ({ name, repetition_type: 'OPTIONAL' as const, ...ELEMENT[schema[name]!] })),
    ],
    createdBy: 'sluice',
  });
  return new Uint8Array(buffer);
}

/**
 * A part file of a partition's records: the declared schema or one taken from the records, the
 * records that do not fit given to `onBad`.
 */
export function parquetPart(
  records: readonly unknown[],
  declared: ParquetSchema | undefined,
  onBad: (record: unknown, reason: string) => void,
): { encoded: Uint8Array; kept: number } {
  if (declared) {
    const rows = rowsFitting(records, declared, onBad);
    return { encoded: encodeParquet(rows, declared), kept: rows.length };
  }
  const { schema, rows } = inferParquetSchema(records, onBad);
  // no rows and no declared schema: no columns, and readers refuse a Parquet file without any
  if (Object.keys(schema).length === 0) return { encoded: new Uint8Array(0), kept: 0 };
  return { encoded: encodeParquet(rows, schema), kept: rows.length };
}
