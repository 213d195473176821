/**
 * The windowed operators of DStream besides `window` itself (Spark's `reduceByWindow`,
 * `countByWindow`, `countByValueAndWindow`, `groupByKeyAndWindow`, `reduceByKeyAndWindow`), built
 * on `window` and the pair operators, or on the incremental window (`stateful-streams.ts`) when an
 * inverse is given. Declared on `DStream` here and added to it when `streams.ts` loads this module.
 *
 * @module
 */
import { addOperators, checkWindow, type DStream, type WindowOptions } from './dstream.ts';
import { checkPartitions, type Pair } from './rdd.ts';
import { invertibleWindow } from './stateful-streams.ts';

declare module './dstream.ts' {
  interface DStream<T> {
    reduceByWindow(
      fn: (a: T, b: T) => T,
      options: WindowOptions & { inverse?: (a: T, b: T) => T },
    ): DStream<T>;
    countByWindow(options: WindowOptions): DStream<number>;
    countByValueAndWindow(options: WindowOptions & { partitions?: number }): DStream<[T, number]>;
    groupByKeyAndWindow<K, V>(
      this: DStream<Pair<K, V>>,
      options: WindowOptions & { partitions?: number },
    ): DStream<[K, V[]]>;
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
    ): DStream<[K, V]>;
  }
}

addOperators({
  reduceByWindow<T>(
    this: DStream<T>,
    fn: (a: T, b: T) => T,
    options: WindowOptions & { inverse?: (a: T, b: T) => T },
  ): DStream<T> {
    const slideMs = options.slideMs ?? this.slideMs;
    checkWindow(this, 'reduceByWindow', options.windowMs, slideMs);
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
  },
  countByWindow<T>(this: DStream<T>, options: WindowOptions): DStream<number> {
    return this.map(() => 1).reduceByWindow((a, b) => a + b, { ...options, inverse: (a, b) => a - b });
  },
  countByValueAndWindow<T>(
    this: DStream<T>,
    options: WindowOptions & { partitions?: number },
  ): DStream<[T, number]> {
    return this.map((x) => [x, 1] as [T, number]).reduceByKeyAndWindow((a, b) => a + b, {
      ...options,
      inverse: (a, b) => a - b,
      filter: (kv) => kv[1] !== 0,
    });
  },
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
  },
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
    checkWindow(this, 'reduceByKeyAndWindow', windowMs, slideMs);
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
  },
} satisfies Pick<
  DStream<any>,
  | 'reduceByWindow'
  | 'countByWindow'
  | 'countByValueAndWindow'
  | 'groupByKeyAndWindow'
  | 'reduceByKeyAndWindow'
>);
