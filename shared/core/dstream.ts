/**
 * DStream, the discretized stream: its core (identity, shape, retention, `compute`) and the
 * operators built directly on its RDDs. The families of operators built on these live in their
 * own modules and are declared on `DStream` there (module augmentation) and added to its
 * prototype when loaded (`addOperators`): windows (`dstream-windows.ts`), joins
 * (`dstream-joins.ts`), state (`stateful-streams.ts`), outputs (`dstream-outputs.ts`).
 * `streams.ts` loads them all: import DStream from there (this module imports none of them, so
 * there is no import cycle).
 *
 * @module
 */
import { GraphError } from '../errors.ts';
import type { StreamingContext } from './context.ts';
import { FoldRDD } from './fold.ts';
import type { BatchGeneration, Shape } from './generation.ts';
import type { OutputFormat, ParquetSchema } from './parquet.ts';
import { checkPartitions, MapPartitionsRDD, type Pair, type RDD, UnionRDD } from './rdd.ts';

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
    checkWindow(this, 'window', windowMs, slideMs);
    this.persisted = true;
    return this.derive<T>(
      'window',
      (t, g) => new UnionRDD<T>(g, g.slice(this, t - windowMs + this.slideMs, t)),
      { params: { windowMs, slideMs }, slideMs, storageName: name, lookBackMs: windowMs },
    );
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

/** Checks a window's duration and slide against the stream's slide (a positive multiple of it). */
export function checkWindow(stream: DStream<any>, op: string, windowMs: number, slideMs: number): void {
  const check = (what: string, value: number) => {
    if (!Number.isFinite(value) || value <= 0 || value % stream.slideMs !== 0) {
      const unit = stream.slideMs === stream.ctx.batchIntervalMs ? 'batch interval' : "parent stream's slide";
      throw new GraphError(
        `${op}: the ${what} duration (${value} ms) must be a positive multiple of the ${unit} (${stream.slideMs} ms)`,
      );
    }
  };
  check('window', windowMs);
  check('slide', slideMs);
}

/**
 * Adds an operator family's methods to `DStream` (declared on it by module augmentation in the
 * family's module), as the class's own methods are: not enumerable.
 */
export function addOperators(methods: object): void {
  for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(methods))) {
    Object.defineProperty(DStream.prototype, name, { ...d, enumerable: false });
  }
}
