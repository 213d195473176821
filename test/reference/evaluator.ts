/**
 * A reference evaluator of Spark Streaming (D-Stream) semantics, for tests only.
 *
 * It interprets a pipeline batch by batch, in memory, with no partitions, no planner and no store,
 * and it imports nothing from the engine (`shared/`). Its API mirrors the engine's DStream API so a
 * test can hand the very same pipeline to both and compare:
 *
 * ```ts
 * const want = ref.run(input, (s) => s.flatMap((l) => l.split(' ')).map((w) => [w, 1]).reduceByKey((a, b) => a + b));
 * ```
 *
 * Semantics follow Spark's DStream classes (MappedDStream, WindowedDStream, ReducedWindowedDStream,
 * StateDStream, MapWithStateDStream, ...): zero time 0, the first batch at `batchIntervalMs`, a
 * stream produces an RDD at time t only when t is a positive multiple of its slide, and a window of
 * length W at t holds the parent's RDDs at times in (t - W, t]. Every RDD is computed once and
 * memoized, as Spark's generatedRDDs, so stateful streams read their own previous RDD.
 *
 * Partition-dependent operations (glom) are not modelled: they throw. mapPartitions treats each
 * batch as one partition, so use it only with partition-independent functions.
 */
import { ValueMap } from './keys.ts';

export interface RefOptions {
  batchIntervalMs?: number;
  /** Number of batches to run; batches after the input runs out are empty. Default: input length. */
  numBatches?: number;
  /** Accepted for symmetry with runBatches; the reference has no partitions. */
  partitions?: number;
}

export interface WindowOptions {
  windowMs: number;
  slideMs?: number;
  partitions?: number;
}

export interface ReduceWindowOptions<V> extends WindowOptions {
  inverse?: (a: V, b: V) => V;
}

export interface ReduceByKeyWindowOptions<K, V> extends ReduceWindowOptions<V> {
  filter?: (kv: [K, V]) => boolean;
}

export interface UpdateStateOptions<K, S> {
  partitions?: number;
  initialState?: [K, S][];
}

export interface MapWithStateSpec<K, V, S, U> {
  fn: (key: K, value: V | undefined, state: RefState<S>, timeMs: number) => U | undefined;
  timeoutMs?: number;
  initialState?: [K, S][];
  partitions?: number;
}

// ---------------------------------------------------------------------------------------------
// Batch operations on plain arrays, shared by RefStream and RefRDD.

function groupValues<K, V>(items: readonly [K, V][]): ValueMap<K, V[]> {
  const groups = new ValueMap<K, V[]>();
  for (const [k, v] of items) groups.upsert(k, () => []).push(v);
  return groups;
}

function reduceByKeyArr<K, V>(items: readonly [K, V][], fn: (a: V, b: V) => V): [K, V][] {
  const out: [K, V][] = [];
  for (const [k, vs] of groupValues(items)) out.push([k, vs.reduce(fn)]);
  return out;
}

function groupByKeyArr<K, V>(items: readonly [K, V][]): [K, V[]][] {
  return [...groupValues(items)];
}

function combineByKeyArr<K, V, C>(
  items: readonly [K, V][],
  create: (v: V) => C,
  mergeValue: (c: C, v: V) => C,
): [K, C][] {
  const out: [K, C][] = [];
  for (const [k, vs] of groupValues(items)) {
    let c = create(vs[0] as V);
    for (let i = 1; i < vs.length; i++) c = mergeValue(c, vs[i] as V);
    out.push([k, c]);
  }
  return out;
}

function cogroupArr<K, V, W>(a: readonly [K, V][], b: readonly [K, W][]): [K, [V[], W[]]][] {
  const groups = new ValueMap<K, [V[], W[]]>();
  for (const [k, v] of a) groups.upsert(k, () => [[], []])[0].push(v);
  for (const [k, w] of b) groups.upsert(k, () => [[], []])[1].push(w);
  return [...groups];
}

function product<A, B>(as: readonly A[], bs: readonly B[]): [A, B][] {
  const out: [A, B][] = [];
  for (const a of as) for (const b of bs) out.push([a, b]);
  return out;
}

type JoinKind = 'inner' | 'left' | 'right' | 'full';

function joinArr<K, V, W>(a: readonly [K, V][], b: readonly [K, W][], kind: JoinKind): [K, [any, any]][] {
  const out: [K, [any, any]][] = [];
  for (const [k, [vs, ws]] of cogroupArr(a, b)) {
    let pairs: [V | undefined, W | undefined][];
    if (vs.length > 0 && ws.length > 0) pairs = product(vs, ws);
    else if (vs.length > 0) pairs = kind === 'left' || kind === 'full' ? vs.map((v) => [v, undefined]) : [];
    else pairs = kind === 'right' || kind === 'full' ? ws.map((w) => [undefined, w]) : [];
    for (const p of pairs) out.push([k, p]);
  }
  return out;
}

function distinctArr<T>(items: readonly T[]): T[] {
  const seen = new ValueMap<T, true>();
  for (const x of items) seen.set(x, true);
  return [...seen].map(([x]) => x);
}

function countByValueArr<T>(items: readonly T[]): [T, number][] {
  const counts = new ValueMap<T, number>();
  for (const x of items) counts.set(x, (counts.get(x) ?? 0) + 1);
  return [...counts];
}

function flatMapArr<T, U>(items: readonly T[], fn: (x: T) => Iterable<U>): U[] {
  const out: U[] = [];
  for (const x of items) for (const y of fn(x)) out.push(y);
  return out;
}

// ---------------------------------------------------------------------------------------------
// State handle for mapWithState, with Spark's StateImpl checks.

export class RefState<S> {
  private defined: boolean;
  private value: S | undefined;
  private updated = false;
  private removed = false;

  constructor(
    existing: { state: S } | undefined,
    private readonly timingOut: boolean,
  ) {
    this.defined = existing !== undefined;
    this.value = existing?.state;
  }

  exists(): boolean {
    return this.defined;
  }

  get(): S {
    if (!this.defined) throw new Error('State is not set');
    return this.value as S;
  }

  getOption(): S | undefined {
    return this.defined ? this.value : undefined;
  }

  update(newState: S): void {
    if (this.removed) throw new Error('Cannot update the state after it has been removed');
    if (this.timingOut) throw new Error('Cannot update the state that is timing out');
    this.value = newState;
    this.defined = true;
    this.updated = true;
  }

  remove(): void {
    if (this.timingOut) throw new Error('Cannot remove the state that is timing out');
    if (this.removed) throw new Error('Cannot remove the state that has already been removed');
    this.defined = false;
    this.updated = false;
    this.removed = true;
    this.value = undefined;
  }

  isTimingOut(): boolean {
    return this.timingOut;
  }

  /** @internal */ get wasUpdated(): boolean {
    return this.updated;
  }

  /** @internal */ get wasRemoved(): boolean {
    return this.removed;
  }
}

// ---------------------------------------------------------------------------------------------
// RDD: what transform / transformWith functions receive.

export class RefRDD<T> {
  constructor(readonly items: readonly T[]) {}

  map<U>(fn: (x: T) => U): RefRDD<U> {
    return new RefRDD(this.items.map((x) => fn(x)));
  }

  filter(fn: (x: T) => boolean): RefRDD<T> {
    return new RefRDD(this.items.filter((x) => fn(x)));
  }

  flatMap<U>(fn: (x: T) => Iterable<U>): RefRDD<U> {
    return new RefRDD(flatMapArr(this.items, fn));
  }

  mapPartitions<U>(fn: (items: T[], partition: number) => Iterable<U>): RefRDD<U> {
    return new RefRDD([...fn([...this.items], 0)]);
  }

  union(...others: RefRDD<T>[]): RefRDD<T> {
    return new RefRDD([...this.items, ...others.flatMap((o) => o.items)]);
  }

  distinct(): RefRDD<T> {
    return new RefRDD(distinctArr(this.items));
  }

  reduceByKey<K, V>(this: RefRDD<[K, V]>, fn: (a: V, b: V) => V, _partitions?: number): RefRDD<[K, V]> {
    return new RefRDD(reduceByKeyArr(this.items, fn));
  }

  groupByKey<K, V>(this: RefRDD<[K, V]>, _partitions?: number): RefRDD<[K, V[]]> {
    return new RefRDD(groupByKeyArr(this.items));
  }

  mapValues<K, V, U>(this: RefRDD<[K, V]>, fn: (v: V) => U): RefRDD<[K, U]> {
    return new RefRDD(this.items.map(([k, v]): [K, U] => [k, fn(v)]));
  }

  join<K, V, W>(this: RefRDD<[K, V]>, other: RefRDD<[K, W]>, _partitions?: number): RefRDD<[K, [V, W]]> {
    return new RefRDD(joinArr(this.items, other.items, 'inner'));
  }

  leftOuterJoin<K, V, W>(this: RefRDD<[K, V]>, other: RefRDD<[K, W]>): RefRDD<[K, [V, W | undefined]]> {
    return new RefRDD(joinArr(this.items, other.items, 'left'));
  }

  rightOuterJoin<K, V, W>(this: RefRDD<[K, V]>, other: RefRDD<[K, W]>): RefRDD<[K, [V | undefined, W]]> {
    return new RefRDD(joinArr(this.items, other.items, 'right'));
  }

  fullOuterJoin<K, V, W>(
    this: RefRDD<[K, V]>,
    other: RefRDD<[K, W]>,
  ): RefRDD<[K, [V | undefined, W | undefined]]> {
    return new RefRDD(joinArr(this.items, other.items, 'full'));
  }

  cogroup<K, V, W>(this: RefRDD<[K, V]>, other: RefRDD<[K, W]>): RefRDD<[K, [V[], W[]]]> {
    return new RefRDD(cogroupArr(this.items, other.items));
  }

  async count(): Promise<number> {
    return this.items.length;
  }

  async collect(): Promise<T[]> {
    return [...this.items];
  }
}

// ---------------------------------------------------------------------------------------------
// Streams.

export class RefContext {
  constructor(readonly batchIntervalMs: number) {
    if (!(Number.isInteger(batchIntervalMs) && batchIntervalMs > 0)) {
      throw new Error(`reference: batch interval must be a positive integer, got ${batchIntervalMs}`);
    }
  }

  /** One array per batch: batches[i] is the batch at time (i + 1) * interval; empty afterwards. */
  queueStream<T>(batches: readonly (readonly T[])[]): RefStream<T> {
    return new RefStream<T>(this, this.batchIntervalMs, (t) => [
      ...(batches[t / this.batchIntervalMs - 1] ?? []),
    ]);
  }
}

function checkMultiple(what: string, value: number, parentSlideMs: number): void {
  if (!(Number.isFinite(value) && value > 0 && value % parentSlideMs === 0)) {
    throw new Error(
      `${what} ${value} ms must be a positive multiple of the batch interval / parent slide ${parentSlideMs} ms`,
    );
  }
}

export class RefStream<T> {
  private readonly generated = new Map<number, T[] | undefined>();

  constructor(
    readonly ctx: RefContext,
    readonly slideMs: number,
    private readonly computeFn: (timeMs: number) => T[] | undefined,
  ) {}

  /** Spark's DStream.isTimeValid with zero time 0. */
  isTimeValid(timeMs: number): boolean {
    return timeMs > 0 && timeMs % this.slideMs === 0;
  }

  /** The RDD at `timeMs` (memoized), or undefined when this stream produces none then. */
  getOrCompute(timeMs: number): T[] | undefined {
    if (!this.isTimeValid(timeMs)) return undefined;
    if (!this.generated.has(timeMs)) this.generated.set(timeMs, this.computeFn(timeMs));
    return this.generated.get(timeMs);
  }

  /** Spark's DStream.slice: the RDDs at times from..to (inclusive), stepping by this stream's slide. */
  slice(fromMs: number, toMs: number): T[][] {
    const align = (t: number) => t - (((t % this.slideMs) + this.slideMs) % this.slideMs);
    const out: T[][] = [];
    for (let t = align(fromMs); t <= align(toMs); t += this.slideMs) {
      const rdd = this.getOrCompute(t);
      if (rdd) out.push(rdd);
    }
    return out;
  }

  private derive<U>(compute: (timeMs: number) => U[] | undefined, slideMs = this.slideMs): RefStream<U> {
    return new RefStream<U>(this.ctx, slideMs, compute);
  }

  /** A stream computing each RDD from this stream's RDD at the same time. */
  private narrow<U>(fn: (items: T[], timeMs: number) => U[]): RefStream<U> {
    return this.derive((t) => {
      const parent = this.getOrCompute(t);
      return parent === undefined ? undefined : fn(parent, t);
    });
  }

  // --- Transformations on DStream<T> ----------------------------------------------------------

  map<U>(fn: (x: T) => U): RefStream<U> {
    return this.narrow((items) => items.map((x) => fn(x)));
  }

  flatMap<U>(fn: (x: T) => Iterable<U>): RefStream<U> {
    return this.narrow((items) => flatMapArr(items, fn));
  }

  filter(fn: (x: T) => boolean): RefStream<T> {
    return this.narrow((items) => items.filter((x) => fn(x)));
  }

  /** Treats the whole batch as one partition: only for partition-independent functions. */
  mapPartitions<U>(fn: (items: T[], partition: number) => Iterable<U>): RefStream<U> {
    return this.narrow((items) => [...fn(items, 0)]);
  }

  glom(): RefStream<T[]> {
    throw new Error(
      'reference: glom depends on partitioning and is not modelled; test it with explicit expectations',
    );
  }

  repartition(_partitions: number): RefStream<T> {
    return this.narrow((items) => [...items]);
  }

  union(...others: RefStream<T>[]): RefStream<T> {
    for (const o of others) {
      if (o.slideMs !== this.slideMs) throw new Error('reference: union of streams with different slides');
    }
    const all = [this, ...others];
    return this.derive((t) => {
      const rdds = all.map((s) => s.getOrCompute(t));
      if (rdds.some((r) => r === undefined)) return undefined;
      return rdds.flatMap((r) => r as T[]);
    });
  }

  /** Spark: map to (null, 1), union a (null, 0), reduceByKey: always exactly one element. */
  count(): RefStream<number> {
    return this.narrow((items) => [items.length]);
  }

  countByValue(_partitions?: number): RefStream<[T, number]> {
    return this.narrow((items) => countByValueArr(items));
  }

  /** Spark: map to (null, x), reduceByKey, map to the value: an empty batch gives an empty RDD. */
  reduce(fn: (a: T, b: T) => T): RefStream<T> {
    return this.narrow((items) => (items.length === 0 ? [] : [items.reduce(fn)]));
  }

  transform<U>(fn: (rdd: RefRDD<T>, timeMs: number) => RefRDD<U>): RefStream<U> {
    return this.narrow((items, t) => [...fn(new RefRDD(items), t).items]);
  }

  transformWith<W, U>(
    other: RefStream<W>,
    fn: (a: RefRDD<T>, b: RefRDD<W>, timeMs: number) => RefRDD<U>,
  ): RefStream<U> {
    if (other.slideMs !== this.slideMs)
      throw new Error('reference: transformWith of streams with different slides');
    return this.derive((t) => {
      const a = this.getOrCompute(t);
      const b = other.getOrCompute(t);
      if (a === undefined || b === undefined) return undefined;
      return [...fn(new RefRDD(a), new RefRDD(b), t).items];
    });
  }

  window(windowMs: number, slideMs: number = this.slideMs): RefStream<T> {
    checkMultiple('window duration', windowMs, this.slideMs);
    checkMultiple('slide duration', slideMs, this.slideMs);
    return this.derive((t) => this.slice(t - windowMs + this.slideMs, t).flat(), slideMs);
  }

  reduceByWindow(fn: (a: T, b: T) => T, options: ReduceWindowOptions<T>): RefStream<T> {
    const { windowMs, slideMs = this.slideMs, inverse } = options;
    if (inverse) {
      return this.map((x): [number, T] => [1, x])
        .reduceByKeyAndWindow(fn, { windowMs, slideMs, inverse })
        .map(([, v]) => v);
    }
    return this.reduce(fn).window(windowMs, slideMs).reduce(fn);
  }

  /** Spark: map to 1, reduceByWindow(+, -): empty until the first element, then 0 when the window empties. */
  countByWindow(options: { windowMs: number; slideMs?: number }): RefStream<number> {
    return this.map(() => 1).reduceByWindow((a, b) => a + b, { ...options, inverse: (a, b) => a - b });
  }

  /** Spark: map to (x, 1), reduceByKeyAndWindow(+, -, filter count != 0). */
  countByValueAndWindow(options: WindowOptions): RefStream<[T, number]> {
    return this.map((x): [T, number] => [x, 1]).reduceByKeyAndWindow((a, b) => a + b, {
      ...options,
      inverse: (a, b) => a - b,
      filter: ([, n]) => n !== 0,
    });
  }

  // --- Pair transformations on DStream<[K, V]> -------------------------------------------------

  reduceByKey<K, V>(this: RefStream<[K, V]>, fn: (a: V, b: V) => V, _partitions?: number): RefStream<[K, V]> {
    return this.narrow((items) => reduceByKeyArr(items, fn));
  }

  groupByKey<K, V>(this: RefStream<[K, V]>, _partitions?: number): RefStream<[K, V[]]> {
    return this.narrow((items) => groupByKeyArr(items));
  }

  combineByKey<K, V, C>(
    this: RefStream<[K, V]>,
    create: (v: V) => C,
    mergeValue: (c: C, v: V) => C,
    _mergeCombiners: (a: C, b: C) => C,
    _partitions?: number,
  ): RefStream<[K, C]> {
    return this.narrow((items) => combineByKeyArr(items, create, mergeValue));
  }

  mapValues<K, V, U>(this: RefStream<[K, V]>, fn: (v: V) => U): RefStream<[K, U]> {
    return this.narrow((items) => items.map(([k, v]): [K, U] => [k, fn(v)]));
  }

  flatMapValues<K, V, U>(this: RefStream<[K, V]>, fn: (v: V) => Iterable<U>): RefStream<[K, U]> {
    return this.narrow((items) => flatMapArr(items, ([k, v]) => [...fn(v)].map((u): [K, U] => [k, u])));
  }

  private zipWith<W, U>(other: RefStream<W>, fn: (a: T[], b: W[]) => U[]): RefStream<U> {
    if (other.slideMs !== this.slideMs)
      throw new Error('reference: binary operation on streams with different slides');
    return this.derive((t) => {
      const a = this.getOrCompute(t);
      const b = other.getOrCompute(t);
      return a === undefined || b === undefined ? undefined : fn(a, b);
    });
  }

  join<K, V, W>(
    this: RefStream<[K, V]>,
    other: RefStream<[K, W]>,
    _partitions?: number,
  ): RefStream<[K, [V, W]]> {
    return this.zipWith(other, (a, b) => joinArr(a, b, 'inner'));
  }

  leftOuterJoin<K, V, W>(
    this: RefStream<[K, V]>,
    other: RefStream<[K, W]>,
    _partitions?: number,
  ): RefStream<[K, [V, W | undefined]]> {
    return this.zipWith(other, (a, b) => joinArr(a, b, 'left'));
  }

  rightOuterJoin<K, V, W>(
    this: RefStream<[K, V]>,
    other: RefStream<[K, W]>,
    _partitions?: number,
  ): RefStream<[K, [V | undefined, W]]> {
    return this.zipWith(other, (a, b) => joinArr(a, b, 'right'));
  }

  fullOuterJoin<K, V, W>(
    this: RefStream<[K, V]>,
    other: RefStream<[K, W]>,
    _partitions?: number,
  ): RefStream<[K, [V | undefined, W | undefined]]> {
    return this.zipWith(other, (a, b) => joinArr(a, b, 'full'));
  }

  cogroup<K, V, W>(
    this: RefStream<[K, V]>,
    other: RefStream<[K, W]>,
    _partitions?: number,
  ): RefStream<[K, [V[], W[]]]> {
    return this.zipWith(other, (a, b) => cogroupArr(a, b));
  }

  /** Spark: groupByKey, window, then concatenate the groups of each key. */
  groupByKeyAndWindow<K, V>(this: RefStream<[K, V]>, options: WindowOptions): RefStream<[K, V[]]> {
    const { windowMs, slideMs = this.slideMs } = options;
    return this.window(windowMs, slideMs).groupByKey();
  }

  reduceByKeyAndWindow<K, V>(
    this: RefStream<[K, V]>,
    fn: (a: V, b: V) => V,
    options: ReduceByKeyWindowOptions<K, V>,
  ): RefStream<[K, V]> {
    const { windowMs, slideMs = this.slideMs, inverse, filter } = options;
    checkMultiple('window duration', windowMs, this.slideMs);
    checkMultiple('slide duration', slideMs, this.slideMs);
    if (!inverse) {
      const reduced = this.reduceByKey(fn).window(windowMs, slideMs).reduceByKey(fn);
      return filter ? reduced.filter(filter) : reduced;
    }
    return reducedWindowed(this, fn, inverse, filter, windowMs, slideMs);
  }

  updateStateByKey<K, V, S>(
    this: RefStream<[K, V]>,
    fn: (values: V[], state: S | undefined, key: K, timeMs: number) => S | undefined,
    options: UpdateStateOptions<K, S> = {},
  ): RefStream<[K, S]> {
    const initial = options.initialState;
    const self: RefStream<[K, S]> = this.derive((t) => {
      const prev = self.getOrCompute(t - self.slideMs);
      const parent = this.getOrCompute(t);
      if (prev === undefined && parent === undefined) return undefined;
      const previous = prev ?? initial ?? [];
      const groups = new ValueMap<K, { values: V[]; state: { s: S } | undefined }>();
      for (const [k, s] of previous) groups.upsert(k, () => ({ values: [], state: undefined })).state = { s };
      for (const [k, v] of parent ?? [])
        groups.upsert(k, () => ({ values: [], state: undefined })).values.push(v);
      const out: [K, S][] = [];
      for (const [k, { values, state }] of groups) {
        const next = fn(values, state?.s, k, t);
        if (next !== undefined) out.push([k, next]);
      }
      return out;
    });
    return self;
  }

  mapWithState<K, V, S, U>(
    this: RefStream<[K, V]>,
    spec: MapWithStateSpec<K, V, S, U>,
  ): RefMapWithStateStream<K, S, U> {
    return new RefMapWithStateStream(this, spec);
  }
}

/** Spark's ReducedWindowedDStream, with a dropped key where Spark would throw (see below). */
function reducedWindowed<K, V>(
  parent: RefStream<[K, V]>,
  fn: (a: V, b: V) => V,
  inverse: (a: V, b: V) => V,
  filter: ((kv: [K, V]) => boolean) | undefined,
  windowMs: number,
  slideMs: number,
): RefStream<[K, V]> {
  const p = parent.slideMs;
  const reduced = parent.reduceByKey(fn);
  const self: RefStream<[K, V]> = new RefStream(parent.ctx, slideMs, (t) => {
    const currentBegin = t - windowMs + p;
    const previousBegin = currentBegin - slideMs;
    const previousEnd = t - slideMs;
    const oldRdds = reduced.slice(previousBegin, currentBegin - p);
    const newRdds = reduced.slice(previousEnd + p, t);
    const previousWindow = self.getOrCompute(previousEnd) ?? [];

    const cells = new ValueMap<K, { prev: V[]; old: V[]; fresh: V[] }>();
    const cell = (k: K) => cells.upsert(k, () => ({ prev: [], old: [], fresh: [] }));
    for (const [k, v] of previousWindow) cell(k).prev.push(v);
    for (const rdd of oldRdds) for (const [k, v] of rdd) cell(k).old.push(v);
    for (const rdd of newRdds) for (const [k, v] of rdd) cell(k).fresh.push(v);

    const out: [K, V][] = [];
    for (const [k, { prev, old, fresh }] of cells) {
      let value: V;
      if (prev.length === 0) {
        // Spark throws here ("Neither previous window has value for key, nor new values found");
        // it happens when a filter removed the key from the previous window: the key is dropped.
        if (fresh.length === 0) continue;
        value = fresh.reduce(fn);
      } else {
        value = prev[0] as V;
        if (old.length > 0) value = inverse(value, old.reduce(fn));
        if (fresh.length > 0) value = fn(value, fresh.reduce(fn));
      }
      if (!filter || filter([k, value])) out.push([k, value]);
    }
    return out;
  });
  return self;
}

interface MapWithStateRecord<K, S, U> {
  table: ValueMap<K, { state: S; updatedMs: number }>;
  mapped: U[];
}

/** The result of mapWithState: the mapped records, and stateSnapshots() for the state table. */
export class RefMapWithStateStream<K, S, U> extends RefStream<U> {
  private readonly internal: RefStream<MapWithStateRecord<K, S, U>>;

  constructor(parent: RefStream<[K, any]>, spec: MapWithStateSpec<K, any, S, U>) {
    const internal: RefStream<MapWithStateRecord<K, S, U>> = new RefStream(
      parent.ctx,
      parent.slideMs,
      (t) => {
        const prevMs = t - internal.slideMs;
        let table: ValueMap<K, { state: S; updatedMs: number }>;
        const prev = internal.getOrCompute(prevMs);
        if (prev?.[0]) {
          table = prev[0].table.clone();
        } else {
          // Spark's MapWithStateRDD.createFromPairRDD: initial states are stamped with this batch time.
          table = new ValueMap();
          for (const [k, s] of spec.initialState ?? []) table.set(k, { state: s, updatedMs: t });
        }
        const mapped: U[] = [];
        const timeout = spec.timeoutMs;
        for (const [k, v] of parent.getOrCompute(t) ?? []) {
          const entry = table.get(k);
          const state = new RefState<S>(entry, false);
          const result = spec.fn(k, v, state, t);
          if (state.wasRemoved) table.delete(k);
          else if (state.wasUpdated || (state.exists() && timeout !== undefined)) {
            table.set(k, { state: state.get(), updatedMs: t });
          }
          if (result !== undefined) mapped.push(result);
        }
        if (timeout !== undefined) {
          const threshold = t - timeout;
          for (const [k, entry] of [...table]) {
            if (entry.updatedMs < threshold) {
              const result = spec.fn(k, undefined, new RefState<S>(entry, true), t);
              if (result !== undefined) mapped.push(result);
              table.delete(k);
            }
          }
        }
        return [{ table, mapped }];
      },
    );
    super(parent.ctx, parent.slideMs, (t) => {
      const rec = internal.getOrCompute(t);
      return rec?.[0] ? [...rec[0].mapped] : undefined;
    });
    this.internal = internal;
  }

  /** The whole key -> state table after each batch. */
  stateSnapshots(): RefStream<[K, S]> {
    return new RefStream(this.ctx, this.slideMs, (t) => {
      const rec = this.internal.getOrCompute(t);
      return rec?.[0] ? [...rec[0].table].map(([k, e]): [K, S] => [k, e.state]) : undefined;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Drivers, mirroring runBatches / runBatches2.

function drive<V>(out: RefStream<V>, ctx: RefContext, numBatches: number): V[][] {
  const results: V[][] = [];
  for (let i = 1; i <= numBatches; i++) {
    const t = i * ctx.batchIntervalMs;
    if (!out.isTimeValid(t)) continue;
    const rdd = out.getOrCompute(t);
    if (rdd !== undefined) results.push([...rdd]);
  }
  return results;
}

/** Runs a one-input pipeline: one array per RDD the output stream produced, in time order. */
export function refRun<T, V>(
  input: readonly (readonly T[])[],
  build: (stream: RefStream<T>, ctx: RefContext) => RefStream<V>,
  options: RefOptions = {},
): V[][] {
  const ctx = new RefContext(options.batchIntervalMs ?? 1000);
  const out = build(ctx.queueStream(input), ctx);
  return drive(out, ctx, options.numBatches ?? input.length);
}

/** Runs a two-input pipeline (joins, cogroup, union, transformWith). */
export function refRun2<A, B, V>(
  input1: readonly (readonly A[])[],
  input2: readonly (readonly B[])[],
  build: (a: RefStream<A>, b: RefStream<B>, ctx: RefContext) => RefStream<V>,
  options: RefOptions = {},
): V[][] {
  const ctx = new RefContext(options.batchIntervalMs ?? 1000);
  const out = build(ctx.queueStream(input1), ctx.queueStream(input2), ctx);
  return drive(out, ctx, options.numBatches ?? Math.max(input1.length, input2.length));
}

export const ref = { run: refRun, run2: refRun2 };
