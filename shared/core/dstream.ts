import { GraphError } from '../errors.ts';
import type { StreamingContext } from './context.ts';
import { FoldRDD } from './fold.ts';
import type { BatchGeneration, Shape } from './generation.ts';
import type { MapWithStateRecord } from './map-with-state-rdd.ts';
import { checkParquetSchema, type OutputFormat, type ParquetSchema } from './parquet.ts';
import { checkPartitions, MapPartitionsRDD, type Pair, type RDD, UnionRDD } from './rdd.ts';
import type { State } from './state.ts';
import { invertibleWindow, mapWithStateStream, updateStateStream } from './stateful-streams.ts';

export type Compute<T> = (timeMs: number, gen: BatchGeneration) => RDD<T>;

export interface WindowOptions {
  readonly windowMs: number;
  readonly slideMs?: number;
}

export interface OutputOperation {
  readonly stream: DStream<unknown>;
  readonly kind: 'foreach' | 'save';
  readonly fn?: (rdd: RDD<unknown>, timeMs: number) => void | Promise<void>;
  readonly save?: {
    readonly prefix: string;
    readonly suffix?: string;
    readonly format: OutputFormat;
    readonly schema?: ParquetSchema;
  };
  readonly label: string;
}

interface StreamOptions {
  readonly params?: Record<string, unknown>;
  readonly slideMs?: number;
  readonly fixedShape?: Shape;
  readonly isInput?: boolean;
  readonly storageName?: string;
  /**
   * How far before its batch time this stream reads RDDs of its parents beyond its own slide (a
   * window: its duration). Parents keep their RDDs that much longer (see `rememberMs`).
   */
  readonly lookBackMs?: number;
}

/**
 * A discretized stream: a sequence of RDDs, one per batch (or per slide, for windows).
 * Every operation of Spark Streaming's DStream is here under its Spark name; pair operations
 * are typed with a `this` parameter and available on `DStream<[K, V]>`.
 */
export class DStream<T> {
  readonly id: number;
  readonly ctx: StreamingContext;
  private kindValue: string;
  readonly parents: readonly DStream<any>[];
  readonly params: Record<string, unknown>;
  readonly slideMs: number;
  readonly isInput: boolean;
  private shapeValue: Shape | undefined;
  /** How far before its batch time this stream reads its parents' RDDs (see StreamOptions). */
  readonly lookBackMs: number;
  /** True when later batches read this stream's RDDs (window parents, state): they are materialized. */
  persisted = false;
  private readonly computeFn: Compute<T>;
  /** @internal set through options `name` of stateful operators. */
  explicitName: string | undefined;

  constructor(
    ctx: StreamingContext,
    kind: string,
    parents: readonly DStream<any>[],
    compute: Compute<T>,
    options: StreamOptions = {},
  ) {
    this.ctx = ctx;
    this.kindValue = kind;
    this.parents = parents;
    this.computeFn = compute;
    this.params = options.params ?? {};
    this.slideMs = options.slideMs ?? parents[0]?.slideMs ?? ctx.batchIntervalMs;
    this.shapeValue = options.fixedShape;
    this.lookBackMs = options.lookBackMs ?? 0;
    this.isInput = options.isInput ?? false;
    this.explicitName = options.storageName;
    this.id = ctx.graph.register(this as DStream<unknown>);
  }

  /** The operation that made this stream (`map`, `window`, `updateStateByKey`...). */
  get kind(): string {
    return this.kindValue;
  }

  /** Set for streams whose RDDs always have the same shape (state), so past RDDs need no probing. */
  get fixedShape(): Shape | undefined {
    return this.shapeValue;
  }

  /**
   * How far back from a batch this stream's RDDs must stay readable, as Spark's
   * `rememberDuration`: its own need (one slide; two for a materialized stream, which reads its
   * previous RDD) and what its children need of it: each child's own remember duration plus how
   * far back it reads (a window's duration and one interval of margin). Asked once the graph is
   * frozen (the driver's retention).
   */
  get rememberMs(): number {
    let ms = this.persisted ? 2 * this.slideMs : this.slideMs;
    for (const child of this.ctx.graph.streams) {
      if (!child.parents.includes(this)) continue;
      const reads = child.lookBackMs > 0 ? child.lookBackMs + this.ctx.batchIntervalMs : 0;
      ms = Math.max(ms, child.rememberMs + reads);
    }
    return ms;
  }

  /** `ds<N>`: stable while the pipeline's structure does not change. */
  get name(): string {
    return `ds${this.id}`;
  }

  /** Where materialized RDDs of this stream are stored: its explicit `name`, else `ds<N>`. */
  get storageName(): string {
    return this.explicitName ?? this.name;
  }

  describe(): string {
    return `${this.kind}[${this.storageName}]`;
  }

  compute(timeMs: number, gen: BatchGeneration): RDD<T> {
    return this.computeFn(timeMs, gen);
  }

  private derive<U>(
    kind: string,
    compute: Compute<U>,
    options: StreamOptions = {},
    others: DStream<any>[] = [],
  ) {
    return new DStream<U>(this.ctx, kind, [this, ...others], compute, options);
  }

  /** Applies an RDD-to-RDD function to every RDD of the stream. */
  private each<U>(kind: string, fn: (rdd: RDD<T>) => RDD<U>, params?: Record<string, unknown>): DStream<U> {
    return this.derive<U>(kind, (t, g) => fn(g.req(this, t)), { params });
  }

  // ---- transformations ---------------------------------------------------------------------

  map<U>(fn: (x: T) => U): DStream<U> {
    return this.each('map', (rdd) => rdd.map(fn));
  }
  flatMap<U>(fn: (x: T) => Iterable<U>): DStream<U> {
    return this.each('flatMap', (rdd) => rdd.flatMap(fn));
  }
  filter(fn: (x: T) => boolean): DStream<T> {
    return this.each('filter', (rdd) => rdd.filter(fn));
  }
  mapPartitions<U>(
    fn: (records: T[], partition: number) => Iterable<U>,
    preservesPartitioning = false,
  ): DStream<U> {
    return this.each('mapPartitions', (rdd) => rdd.mapPartitions(fn, preservesPartitioning));
  }
  glom(): DStream<T[]> {
    return this.each('glom', (rdd) => rdd.glom());
  }
  repartition(numPartitions: number): DStream<T> {
    checkPartitions(numPartitions, 'repartition');
    return this.each('repartition', (rdd) => rdd.repartition(numPartitions), { numPartitions });
  }
  union(...others: DStream<T>[]): DStream<T> {
    for (const o of others) {
      if (o.slideMs !== this.slideMs) {
        throw new GraphError(`union: slide durations differ (${this.slideMs} ms and ${o.slideMs} ms)`);
      }
    }
    return this.derive<T>(
      'union',
      (t, g) =>
        new UnionRDD<T>(
          g,
          [this, ...others].map((s) => g.req(s, t)),
        ),
      {},
      others,
    );
  }
  /** One element per batch: the number of records (0 for an empty batch), as Spark's DStream.count. */
  count(): DStream<number> {
    return this.each('count', (rdd) => countRDD(rdd));
  }
  countByValue(numPartitions?: number): DStream<[T, number]> {
    return this.each('countByValue', (rdd) =>
      rdd.map((x) => [x, 1] as [T, number]).reduceByKey((a, b) => a + b, numPartitions),
    );
  }
  /** One element per non-empty batch: all records combined with `fn`. */
  reduce(fn: (a: T, b: T) => T): DStream<T> {
    return this.each('reduce', (rdd) => reduceRDD(rdd, fn));
  }
  transform<U>(fn: (rdd: RDD<T>, timeMs: number) => RDD<U>): DStream<U> {
    return this.derive<U>('transform', (t, g) => fn(g.req(this, t), t));
  }
  transformWith<U, V>(other: DStream<U>, fn: (a: RDD<T>, b: RDD<U>, timeMs: number) => RDD<V>): DStream<V> {
    if (other.slideMs !== this.slideMs) {
      throw new GraphError(
        `transformWith: slide durations differ (${this.slideMs} ms and ${other.slideMs} ms)`,
      );
    }
    return this.derive<V>('transformWith', (t, g) => fn(g.req(this, t), g.req(other, t), t), {}, [other]);
  }

  // ---- windows -----------------------------------------------------------------------------

  window(windowMs: number, slideMs: number = this.slideMs, name?: string): DStream<T> {
    this.checkWindow('window', windowMs, slideMs);
    this.persisted = true;
    return this.derive<T>(
      'window',
      (t, g) => new UnionRDD<T>(g, g.slice(this, t - windowMs + this.slideMs, t)),
      { params: { windowMs, slideMs }, slideMs, storageName: name, lookBackMs: windowMs },
    );
  }
  reduceByWindow(
    fn: (a: T, b: T) => T,
    options: WindowOptions & { inverse?: (a: T, b: T) => T },
  ): DStream<T> {
    const slideMs = options.slideMs ?? this.slideMs;
    this.checkWindow('reduceByWindow', options.windowMs, slideMs);
    if (options.inverse) {
      return this.map((x) => [0, x] as [number, T])
        .reduceByKeyAndWindow(fn, {
          windowMs: options.windowMs,
          slideMs,
          inverse: options.inverse,
          partitions: 1,
        })
        .map((kv) => kv[1]);
    }
    return this.reduce(fn).window(options.windowMs, slideMs).reduce(fn);
  }
  countByWindow(options: WindowOptions): DStream<number> {
    return this.map(() => 1).reduceByWindow((a, b) => a + b, { ...options, inverse: (a, b) => a - b });
  }
  countByValueAndWindow(options: WindowOptions & { partitions?: number }): DStream<[T, number]> {
    return this.map((x) => [x, 1] as [T, number]).reduceByKeyAndWindow((a, b) => a + b, {
      ...options,
      inverse: (a, b) => a - b,
      filter: (kv) => kv[1] !== 0,
    });
  }

  private checkWindow(op: string, windowMs: number, slideMs: number): void {
    const check = (what: string, value: number) => {
      if (!Number.isFinite(value) || value <= 0 || value % this.slideMs !== 0) {
        const unit = this.slideMs === this.ctx.batchIntervalMs ? 'batch interval' : "parent stream's slide";
        throw new GraphError(
          `${op}: the ${what} duration (${value} ms) must be a positive multiple of the ${unit} (${this.slideMs} ms)`,
        );
      }
    };
    check('window', windowMs);
    check('slide', slideMs);
  }

  // ---- pair transformations ----------------------------------------------------------------

  mapValues<K, V, U>(this: DStream<Pair<K, V>>, fn: (v: V) => U): DStream<[K, U]> {
    return this.each('mapValues', (rdd) => rdd.mapValues(fn));
  }
  flatMapValues<K, V, U>(this: DStream<Pair<K, V>>, fn: (v: V) => Iterable<U>): DStream<[K, U]> {
    return this.each('flatMapValues', (rdd) => rdd.flatMapValues(fn));
  }
  reduceByKey<K, V>(this: DStream<Pair<K, V>>, fn: (a: V, b: V) => V, partitions?: number): DStream<[K, V]> {
    return this.each('reduceByKey', (rdd) => rdd.reduceByKey(fn, partitions), { partitions });
  }
  groupByKey<K, V>(this: DStream<Pair<K, V>>, partitions?: number): DStream<[K, V[]]> {
    return this.each('groupByKey', (rdd) => rdd.groupByKey(partitions), { partitions });
  }
  combineByKey<K, V, C>(
    this: DStream<Pair<K, V>>,
    createCombiner: (v: V) => C,
    mergeValue: (c: C, v: V) => C,
    mergeCombiners: (a: C, b: C) => C,
    partitions?: number,
  ): DStream<[K, C]> {
    return this.each(
      'combineByKey',
      (rdd) => rdd.combineByKey(createCombiner, mergeValue, mergeCombiners, partitions),
      { partitions },
    );
  }
  cogroup<K, V, W>(
    this: DStream<Pair<K, V>>,
    other: DStream<Pair<K, W>>,
    partitions?: number,
  ): DStream<[K, [V[], W[]]]> {
    return this.transformWith(other, (a, b) => a.cogroup(b, partitions)).rename('cogroup');
  }
  join<K, V, W>(
    this: DStream<Pair<K, V>>,
    other: DStream<Pair<K, W>>,
    partitions?: number,
  ): DStream<[K, [V, W]]> {
    return this.transformWith(other, (a, b) => a.join(b, partitions)).rename('join');
  }
  leftOuterJoin<K, V, W>(
    this: DStream<Pair<K, V>>,
    other: DStream<Pair<K, W>>,
    partitions?: number,
  ): DStream<[K, [V, W | undefined]]> {
    return this.transformWith(other, (a, b) => a.leftOuterJoin(b, partitions)).rename('leftOuterJoin');
  }
  rightOuterJoin<K, V, W>(
    this: DStream<Pair<K, V>>,
    other: DStream<Pair<K, W>>,
    partitions?: number,
  ): DStream<[K, [V | undefined, W]]> {
    return this.transformWith(other, (a, b) => a.rightOuterJoin(b, partitions)).rename('rightOuterJoin');
  }
  fullOuterJoin<K, V, W>(
    this: DStream<Pair<K, V>>,
    other: DStream<Pair<K, W>>,
    partitions?: number,
  ): DStream<[K, [V | undefined, W | undefined]]> {
    return this.transformWith(other, (a, b) => a.fullOuterJoin(b, partitions)).rename('fullOuterJoin');
  }

  groupByKeyAndWindow<K, V>(
    this: DStream<Pair<K, V>>,
    options: WindowOptions & { partitions?: number },
  ): DStream<[K, V[]]> {
    const n = options.partitions;
    return this.groupByKey(n)
      .window(options.windowMs, options.slideMs ?? this.slideMs)
      .combineByKey<K, V[], V[]>(
        (vs) => vs.slice(),
        (c, vs) => c.concat(vs),
        (a, b) => a.concat(b),
        n,
      )
      .rename('groupByKeyAndWindow');
  }

  /**
   * Reduces each key over a sliding window. With `inverse`, the window is updated incrementally
   * from the previous window (add what enters, subtract what leaves: Spark's
   * ReducedWindowedDStream); keys stay with their reduced value, e.g. 0, until `filter` drops them.
   */
  reduceByKeyAndWindow<K, V>(
    this: DStream<Pair<K, V>>,
    fn: (a: V, b: V) => V,
    options: WindowOptions & {
      inverse?: (a: V, b: V) => V;
      filter?: (kv: [K, V]) => boolean;
      partitions?: number;
      name?: string;
    },
  ): DStream<[K, V]> {
    const slideMs = options.slideMs ?? this.slideMs;
    const windowMs = options.windowMs;
    this.checkWindow('reduceByKeyAndWindow', windowMs, slideMs);
    const n = options.partitions ?? this.ctx.defaultPartitions;
    checkPartitions(n, 'reduceByKeyAndWindow');
    const filter = options.filter;
    if (!options.inverse) {
      const out = this.reduceByKey(fn, n).window(windowMs, slideMs).reduceByKey(fn, n);
      return (filter ? out.filter(filter as (kv: Pair<K, V>) => boolean) : out).rename(
        'reduceByKeyAndWindow',
      ) as DStream<[K, V]>;
    }
    return invertibleWindow(this, fn, options.inverse, {
      windowMs,
      slideMs,
      partitions: n,
      filter,
      name: options.name,
    });
  }

  // ---- state -------------------------------------------------------------------------------

  /**
   * Keeps a state per key across batches. Every existing key is updated each batch (with the
   * batch's values, possibly none); returning `undefined` removes the key.
   */
  updateStateByKey<K, V, S>(
    this: DStream<Pair<K, V>>,
    fn: (values: V[], state: S | undefined, key: K, timeMs: number) => S | undefined,
    options: { partitions?: number; initialState?: [K, S][]; name?: string } = {},
  ): DStream<[K, S]> {
    return updateStateStream(this, fn, options);
  }

  /**
   * Calls `fn` once per record with the key's state (and once more with `undefined` when a key
   * times out after `timeoutMs` without records); emits what `fn` returns, unless undefined.
   */
  mapWithState<K, V, S, U>(
    this: DStream<Pair<K, V>>,
    spec: {
      fn: (key: K, value: V | undefined, state: State<S>, timeMs: number) => U | undefined;
      timeoutMs?: number;
      initialState?: [K, S][];
      partitions?: number;
      name?: string;
    },
  ): MapWithStateDStream<U, K, S> {
    const n = spec.partitions ?? this.ctx.defaultPartitions;
    checkPartitions(n, 'mapWithState');
    const timeoutMs = spec.timeoutMs;
    if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs <= 0)) {
      throw new GraphError(
        `mapWithState: timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`,
      );
    }
    return mapWithStateStream(this, spec, n, timeoutMs);
  }

  // ---- output operations ---------------------------------------------------------------------

  /** Runs `fn` on the driver for every RDD (after the batch's tasks ran). */
  foreachRDD(fn: (rdd: RDD<T>, timeMs: number) => void | Promise<void>): void {
    this.ctx.graph.addOutput({
      stream: this as DStream<unknown>,
      kind: 'foreach',
      fn: fn as OutputOperation['fn'],
      label: 'foreachRDD',
    });
  }
  /** Prints the first `n` records of every RDD, as Spark's DStream.print. */
  print(n = 10): void {
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
  }
  /**
   * Saves every RDD as text files, one record per line:
   * `outputs/<prefix>/dt=YYYY-MM-DD/hr=HH/batch=<time>/part-NNNNN[.<suffix>]` in the store.
   */
  saveAsTextFiles(prefix: string, suffix?: string): void {
    this.addSave(prefix, suffix, 'text');
  }
  /** Saves every RDD as JSON lines, one record per line: `outputs/<prefix>/dt=.../part-NNNNN.jsonl`. */
  saveAsJsonLines(prefix: string, suffix = 'jsonl'): void {
    this.addSave(prefix, suffix, 'jsonl');
  }
  /**
   * Saves every RDD as Parquet files, one row per record (an object whose fields are the
   * columns): `outputs/<name>/dt=.../part-NNNNN.parquet`. The schema is `options.schema` or
   * taken from each partition's records; records that do not fit it are dead letters (see
   * shared/core/parquet.ts).
   */
  saveAsParquet(
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
    this.addSave(name, options.suffix ?? 'parquet', 'parquet', schema);
  }
  private addSave(
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
    const clash = this.ctx.graph.outputs.find(
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
    this.ctx.graph.addOutput({
      stream: this as DStream<unknown>,
      kind: 'save',
      save: { prefix, suffix, format, ...(schema ? { schema } : {}) },
      label,
    });
  }

  // ---- internals -----------------------------------------------------------------------------

  /** A stream with the same RDDs under another operation name (for plans and the UI). */
  rename(kind: string): DStream<T> {
    this.kindValue = kind;
    return this;
  }
  withShape(shape: Shape): DStream<T> {
    this.shapeValue = shape;
    return this;
  }
}

function formatRecord(x: unknown): string {
  if (typeof x === 'string') return x;
  if (Array.isArray(x) && x.length === 2) return `(${formatRecord(x[0])},${formatRecord(x[1])})`;
  return JSON.stringify(x);
}

function countRDD<T>(rdd: RDD<T>): RDD<number> {
  // Spark's RDD.count: a count per partition, summed on the driver (fold.ts)
  const partials = new MapPartitionsRDD<T, number>(rdd, 'count', (records) => [records.length], false);
  return new FoldRDD<number, number>(partials, 'count', (counts) => [counts.reduce((a, b) => a + b, 0)]);
}

function reduceRDD<T>(rdd: RDD<T>, fn: (a: T, b: T) => T): RDD<T> {
  // Spark's RDD.reduce: each partition reduced by its task, the partials combined on the driver
  // a record whose `fn` throws is left out of the partial and dead-lettered, as reduceByKey does
  const partials = new MapPartitionsRDD<T, T>(
    rdd,
    'reduce',
    (records, _p, tc) => {
      if (records.length === 0) return [];
      let acc: T = records[0] as T;
      for (let i = 1; i < records.length; i++) {
        try {
          acc = fn(acc, records[i] as T);
        } catch (err) {
          tc.recordError('reduce', err, records[i]);
        }
      }
      return [acc];
    },
    false,
  );
  return new FoldRDD<T, T>(partials, 'reduce', (values) => (values.length === 0 ? [] : [values.reduce(fn)]));
}

/** The result of mapWithState: the emitted values, and the whole state table via stateSnapshots(). */
export class MapWithStateDStream<U, K, S> extends DStream<U> {
  private readonly internal: DStream<MapWithStateRecord<K, S, U>>;
  constructor(internal: DStream<MapWithStateRecord<K, S, U>>) {
    super(internal.ctx, 'mapWithStateValues', [internal], (t, g) =>
      g.req(internal, t).flatMap((r) => (r[0] === 'e' ? [r[1]] : [])),
    );
    this.internal = internal;
  }
  /** The key -> state table after each batch. */
  stateSnapshots(): DStream<[K, S]> {
    const internal = this.internal;
    return new DStream<[K, S]>(this.ctx, 'stateSnapshots', [internal], (t, g) =>
      g.req(internal, t).flatMap((r) => (r[0] === 's' ? [[r[1], r[2]] as [K, S]] : [])),
    );
  }
}
