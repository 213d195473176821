/**
 * The output operators of DStream besides `foreachRDD` itself: `print` and the saved outputs
 * (`saveAsTextFiles`, `saveAsJsonLines`, `saveAsParquet`), whose names are checked here when the
 * graph is built. Declared on `DStream` here and added to it when `streams.ts` loads this module.
 *
 * @module
 */
import { GraphError } from '../errors.ts';
import { addOperators, type DStream } from './dstream.ts';
import { checkParquetSchema, type OutputFormat, type ParquetSchema } from './parquet.ts';

declare module './dstream.ts' {
  interface DStream<T> {
    /** Prints the first `n` records of every RDD, as Spark's DStream.print. */
    print(n?: number): void;
    /**
     * Saves every RDD as text files, one record per line:
     * `outputs/<prefix>/dt=YYYY-MM-DD/hr=HH/batch=<time>/part-NNNNN[.<suffix>]` in the store.
     */
    saveAsTextFiles(prefix: string, suffix?: string): void;
    /** Saves every RDD as JSON lines, one record per line: `outputs/<prefix>/dt=.../part-NNNNN.jsonl`. */
    saveAsJsonLines(prefix: string, suffix?: string): void;
    /**
     * Saves every RDD as Parquet files, one row per record (an object whose fields are the
     * columns): `outputs/<name>/dt=.../part-NNNNN.parquet`. The schema is `options.schema` or
     * taken from each partition's records; records that do not fit it are dead letters (see
     * shared/core/parquet.ts).
     */
    saveAsParquet(
      name: string,
      options?: { readonly schema?: ParquetSchema; readonly suffix?: string },
    ): void;
  }
}

addOperators({
  print<T>(this: DStream<T>, n = 10): void {
    this.foreachRDD(async (rdd, timeMs) => {
      const first = await rdd.take(n + 1);
      const lines = [
        '-------------------------------------------',
        `Time: ${timeMs} ms`,
        '-------------------------------------------',
      ];
      for (const x of first.slice(0, n)) lines.push(formatRecord(x));
      if (first.length > n) lines.push('...');
      this.ctx.printer(`${lines.join('\n')}\n`);
    });
  },
  saveAsTextFiles<T>(this: DStream<T>, prefix: string, suffix?: string): void {
    addSave(this, prefix, suffix, 'text');
  },
  saveAsJsonLines<T>(this: DStream<T>, prefix: string, suffix = 'jsonl'): void {
    addSave(this, prefix, suffix, 'jsonl');
  },
  saveAsParquet<T>(
    this: DStream<T>,
    name: string,
    options: { readonly schema?: ParquetSchema; readonly suffix?: string } = {},
  ): void {
    let schema: ParquetSchema | undefined;
    if (options.schema !== undefined) {
      try {
        schema = checkParquetSchema(options.schema, `saveAsParquet('${name}')`);
      } catch (err) {
        throw new GraphError((err as Error).message);
      }
    }
    addSave(this, name, options.suffix ?? 'parquet', 'parquet', schema);
  },
} satisfies Pick<DStream<any>, 'print' | 'saveAsTextFiles' | 'saveAsJsonLines' | 'saveAsParquet'>);

function addSave<T>(
  stream: DStream<T>,
  prefix: string,
  suffix: string | undefined,
  format: OutputFormat,
  schema?: ParquetSchema,
): void {
  const label =
    format === 'text' ? 'saveAsTextFiles' : format === 'jsonl' ? 'saveAsJsonLines' : 'saveAsParquet';
  if (
    !prefix ||
    prefix.includes('..') ||
    prefix.startsWith('/') ||
    prefix.endsWith('/') ||
    prefix.includes('//') ||
    prefix.includes('=')
  ) {
    throw new GraphError(
      `${label}: invalid name '${prefix}' (use a relative name such as 'counts'; no '..', '=' or leading or trailing '/')`,
    );
  }
  if (suffix !== undefined && (suffix.includes('/') || suffix === '')) {
    throw new GraphError(
      `${label}('${prefix}'): invalid suffix '${suffix}' (a file extension such as 'jsonl')`,
    );
  }
  const clash = stream.ctx.graph.outputs.find(
    (o) =>
      o.save &&
      (o.save.prefix === prefix ||
        `${o.save.prefix}/`.startsWith(`${prefix}/`) ||
        `${prefix}/`.startsWith(`${o.save.prefix}/`)),
  );
  if (clash) {
    throw new GraphError(
      `${label}('${prefix}'): the output '${clash.save!.prefix}' (${clash.label}) is saved there already: give each saved output its own name`,
    );
  }
  stream.ctx.graph.addOutput({
    stream: stream as DStream<unknown>,
    kind: 'save',
    save: { prefix, suffix, format, ...(schema ? { schema } : {}) },
    label,
  });
}

function formatRecord(x: unknown): string {
  if (typeof x === 'string') return x;
  if (Array.isArray(x) && x.length === 2) return `(${formatRecord(x[0])},${formatRecord(x[1])})`;
  return JSON.stringify(x);
}
