import { GraphError } from '../errors.ts';
import type { StreamingContext } from './context.ts';
import type { BatchGeneration, Shape } from './generation.ts';
import { KeyMap } from './keys.ts';
import { checkParquetSchema, type OutputFormat, type ParquetSchema } from './parquet.ts';
import {
  CoGroupedRDD,
  checkPartitions,
  type Dependency,
  hashPartitioner,
  MapPartitionsRDD,
  type Pair,
  ParallelCollectionRDD,
  RDD,
  type Sink,
  UnionRDD,
} from './rdd.ts';
import { type State, StateImpl } from './state.ts';
import type { TaskContext } from './task-context.ts';

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
}

/**
 * A discretized stream: a sequence of RDDs, one per batch (or per slide, for windows).
 * Every operation of Spark Streaming's DStream is here under its Spark name; pair operations
 * are typed with a `this` parameter and available on `DStream<[K, V]>`.
 */
export class DStream<T> {
  readonly id: number;
  readonly ctx: StreamingContext;
  readonly kind: string;
  readonly parents: readonly DStream<any>[];
  readonly params: Record<string, unknown>;
  readonly slideMs: number;
  readonly isInput: boolean;
  /** Set for streams whose RDDs always have the same shape (state), so past RDDs need no probing. */
  readonly fixedShape: Shape | undefined;
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
    this.kind = kind;
    this.parents = parents;
    this.computeFn = compute;
    this.params = options.params ?? {};
    this.slideMs = options.slideMs ?? parents[0]?.slideMs ?? ctx.batchIntervalMs;
    this.fixedShape = options.fixedShape;
    this.isInput = options.isInput ?? false;
    this.explicitName = options.storageName;
    this.id = ctx.graph.register(this as DStream<unknown>);
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
      { params: { windowMs, slideMs }, slideMs, storageName: name },
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
    const inverse = options.inverse;
    const partitioner = hashPartitioner(n);
    const reduced = this.reduceByKey(fn, n).withShape({ numPartitions: n, partitioner });
    if (options.name) reduced.explicitName = `${options.name}.reduced`;
    reduced.persisted = true;
    const self: DStream<[K, V]> = new DStream<[K, V]>(
      this.ctx,
      'reduceByKeyAndWindow',
      [reduced],
      (t, g) => {
        const ps = reduced.slideMs;
        const oldRdds = g.slice(reduced, t - slideMs - windowMs + ps, t - windowMs);
        const newRdds = g.slice(reduced, t - slideMs + ps, t);
        const prev =
          g.rddOf(self, t - slideMs) ?? new ParallelCollectionRDD<[K, V]>(g, [], n, true, 'emptyWindow');
        const cogrouped = new CoGroupedRDD<K>(g, [prev, ...oldRdds, ...newRdds], partitioner);
        const nOld = oldRdds.length;
        return cogrouped.mapPartitions((groups) => {
          const out: [K, V][] = [];
          for (const [k, arrays] of groups) {
            const prevValues = arrays[0] as V[];
            let newValue: V | undefined;
            let hasNew = false;
            for (let i = 1 + nOld; i < arrays.length; i++) {
              for (const v of arrays[i] as V[]) {
                newValue = hasNew ? fn(newValue as V, v) : v;
                hasNew = true;
              }
            }
            let value: V;
            if (prevValues.length === 0) {
              // A key with neither a previous value nor new values has left the window (Spark throws here).
              if (!hasNew) continue;
              value = newValue as V;
            } else {
              value = prevValues[0] as V;
              let oldValue: V | undefined;
              let hasOld = false;
              for (let i = 1; i <= nOld; i++) {
                for (const v of arrays[i] as V[]) {
                  oldValue = hasOld ? fn(oldValue as V, v) : v;
                  hasOld = true;
                }
              }
              if (hasOld) value = inverse(value, oldValue as V);
              if (hasNew) value = fn(value, newValue as V);
            }
            const kv: [K, V] = [k, value];
            if (!filter || filter(kv)) out.push(kv);
          }
          return out;
        }, true);
      },
      {
        params: { windowMs, slideMs, partitions: n, inverse: true, filter: !!filter },
        slideMs,
        fixedShape: { numPartitions: n, partitioner },
        storageName: options.name,
      },
    );
    self.persisted = true;
    return self;
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
    const n = options.partitions ?? this.ctx.defaultPartitions;
    checkPartitions(n, 'updateStateByKey');
    const partitioner = hashPartitioner(n);
    const self: DStream<[K, S]> = new DStream<[K, S]>(
      this.ctx,
      'updateStateByKey',
      [this],
      (t, g) => {
        const data = g.req(this, t);
        const prev =
          g.rddOf(self, t - self.slideMs) ??
          (options.initialState
            ? new ParallelCollectionRDD<[K, S]>(g, options.initialState, n, true, 'initialState')
            : undefined);
        // A key whose fn throws keeps its previous state (none for a new key); its values of
        // this batch go to the dead letters with the key (or the batch fails with onRecordError 'fail').
        const update = (out: [K, S][], k: K, vs: V[], old: S | undefined, tc: TaskContext) => {
          let s: S | undefined;
          try {
            s = fn(vs, old, k, t);
          } catch (err) {
            tc.recordError('updateStateByKey', err, { values: vs, state: old ?? null }, k);
            s = old;
          }
          if (s !== undefined) out.push([k, s]);
        };
        if (!prev) {
          return new MapPartitionsRDD<[K, V[]], [K, S]>(
            data.groupByKey(n),
            'mapPartitions',
            (groups, _p, tc) => {
              const out: [K, S][] = [];
              for (const [k, vs] of groups) update(out, k, vs, undefined, tc);
              return out;
            },
            true,
          );
        }
        const cogrouped = new CoGroupedRDD<K>(g, [data, prev], partitioner);
        return new MapPartitionsRDD<[K, unknown[][]], [K, S]>(
          cogrouped,
          'mapPartitions',
          (groups, _p, tc) => {
            const out: [K, S][] = [];
            for (const [k, [vs, ss]] of groups as [K, [V[], S[]]][]) {
              update(out, k, vs, ss.length > 0 ? ss[0] : undefined, tc);
            }
            return out;
          },
          true,
        );
      },
      { params: { partitions: n }, fixedShape: { numPartitions: n, partitioner }, storageName: options.name },
    );
    self.persisted = true;
    return self;
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
    const partitioner = hashPartitioner(n);
    const internal: DStream<MapWithStateRecord<K, S, U>> = new DStream<MapWithStateRecord<K, S, U>>(
      this.ctx,
      'mapWithState',
      [this],
      (t, g) => {
        // values grouped per key on the map side: one shuffle record per key, order kept per key
        const data = g.req(this, t).groupByKey(n);
        let prev = g.rddOf(internal, t - internal.slideMs);
        if (!prev) {
          prev = new ParallelCollectionRDD<[K, S]>(g, spec.initialState ?? [], n, true, 'initialState').map(
            ([k, s]) => ['s', k, s, t] as MapWithStateRecord<K, S, U>,
          );
        }
        return new MapWithStateRDD<K, V, S, U>(prev, data, spec.fn, t, timeoutMs);
      },
      {
        params: { partitions: n, timeoutMs: timeoutMs ?? null },
        fixedShape: { numPartitions: n, partitioner },
        storageName: spec.name,
      },
    );
    internal.persisted = true;
    return new MapWithStateDStream<U, K, S>(internal);
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
    (this as { kind: string }).kind = kind;
    return this;
  }
  withShape(shape: Shape): DStream<T> {
    (this as { fixedShape: Shape | undefined }).fixedShape = shape;
    return this;
  }
}

function formatRecord(x: unknown): string {
  if (typeof x === 'string') return x;
  if (Array.isArray(x) && x.length === 2) return `(${formatRecord(x[0])},${formatRecord(x[1])})`;
  return JSON.stringify(x);
}

function countRDD<T>(rdd: RDD<T>): RDD<number> {
  const partial = rdd.mapPartitions((records) => [[0, records.length] as [number, number]]);
  const zero = new ParallelCollectionRDD<[number, number]>(rdd.scope, [[0, 0]], 1, false, 'zero');
  return new UnionRDD<[number, number]>(rdd.scope, [partial, zero])
    .reduceByKey((a, b) => a + b, 1)
    .map((kv) => kv[1]);
}

function reduceRDD<T>(rdd: RDD<T>, fn: (a: T, b: T) => T): RDD<T> {
  return rdd
    .map((x) => [0, x] as [number, T])
    .reduceByKey(fn, 1)
    .map((kv) => kv[1]);
}

/** Records of mapWithState's internal stream: a key's state, or an emitted value. */
export type MapWithStateRecord<K, S, U> = ['s', K, S, number] | ['e', U];

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

class MapWithStateRDD<K, V, S, U> extends RDD<MapWithStateRecord<K, S, U>> {
  readonly operator = 'mapWithState';
  readonly deps: readonly Dependency[];
  readonly numPartitions: number;
  private readonly prev: RDD<MapWithStateRecord<K, S, U>>;
  private readonly data: RDD<Pair<K, V[]>>;

  constructor(
    prev: RDD<MapWithStateRecord<K, S, U>>,
    data: RDD<Pair<K, V[]>>,
    private readonly fn: (key: K, value: V | undefined, state: State<S>, timeMs: number) => U | undefined,
    private readonly timeMs: number,
    private readonly timeoutMs: number | undefined,
  ) {
    super(data.scope, data.partitioner);
    this.prev = prev;
    this.data = data;
    this.numPartitions = data.numPartitions;
    this.deps = [
      { kind: 'narrow', rdd: prev, parents: (p) => [p] },
      { kind: 'narrow', rdd: data, parents: (p) => [p] },
    ];
  }

  async iterate(p: number, tc: TaskContext, sink: Sink<MapWithStateRecord<K, S, U>>): Promise<void> {
    const states = new KeyMap<{ key: K; state: S; updated: number }>();
    await tc.iterate(this.prev, p, (r) => {
      if (r[0] === 's') states.set(r[1], { key: r[1], state: r[2], updated: r[3] });
    });
    const t = this.timeMs;
    const state = new StateImpl<S>();
    const hasTimeout = this.timeoutMs !== undefined;
    // A record whose call throws leaves its key's state as it was before the call and emits
    // nothing; it goes to the dead letters with its key (or fails the batch with onRecordError 'fail').
    await tc.iterate(this.data, p, ([k, values]) => {
      for (const v of values) {
        const current = states.get(k);
        state.reset(current !== undefined, current?.state, false);
        let out: U | undefined;
        try {
          out = this.fn(k, v, state, t);
        } catch (err) {
          tc.recordError('mapWithState', err, v, k);
          continue;
        }
        if (state.removed) states.delete(k);
        // As in Spark, with a timeout any record for an existing key refreshes its time.
        else if (state.updated || (hasTimeout && state.exists())) {
          states.set(k, { key: k, state: state.value as S, updated: t });
        }
        if (out !== undefined) sink(['e', out]);
      }
    });
    if (this.timeoutMs !== undefined) {
      const threshold = t - this.timeoutMs;
      for (const [k, entry] of [...states.entries()]) {
        if (entry.updated >= threshold) continue;
        state.reset(true, entry.state, true);
        let out: U | undefined;
        try {
          out = this.fn(entry.key, undefined, state, t);
        } catch (err) {
          // the key times out all the same
          tc.recordError(
            'mapWithState',
            `mapWithState threw while timing the key out: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
            { state: entry.state },
            entry.key,
          );
        }
        states.delete(k);
        if (out !== undefined) sink(['e', out]);
      }
    }
    for (const [, entry] of states.entries()) sink(['s', entry.key, entry.state, entry.updated]);
  }
}
