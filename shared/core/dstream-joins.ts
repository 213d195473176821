/**
 * The join operators of pair DStreams (`cogroup`, `join` and the outer joins), each the RDD join
 * of the two streams' RDDs of a batch (`transformWith`). Declared on `DStream` here and added to
 * it when `streams.ts` loads this module.
 *
 * @module
 */
import { addOperators, type DStream } from './dstream.ts';
import type { Pair } from './rdd.ts';

declare module './dstream.ts' {
  interface DStream<T> {
    cogroup<K, V, W>(
      this: DStream<Pair<K, V>>,
      other: DStream<Pair<K, W>>,
      partitions?: number,
    ): DStream<[K, [V[], W[]]]>;
    join<K, V, W>(
      this: DStream<Pair<K, V>>,
      other: DStream<Pair<K, W>>,
      partitions?: number,
    ): DStream<[K, [V, W]]>;
    leftOuterJoin<K, V, W>(
      this: DStream<Pair<K, V>>,
      other: DStream<Pair<K, W>>,
      partitions?: number,
    ): DStream<[K, [V, W | undefined]]>;
    rightOuterJoin<K, V, W>(
      this: DStream<Pair<K, V>>,
      other: DStream<Pair<K, W>>,
      partitions?: number,
    ): DStream<[K, [V | undefined, W]]>;
    fullOuterJoin<K, V, W>(
      this: DStream<Pair<K, V>>,
      other: DStream<Pair<K, W>>,
      partitions?: number,
    ): DStream<[K, [V | undefined, W | undefined]]>;
  }
}

addOperators({
  cogroup<K, V, W>(
    this: DStream<Pair<K, V>>,
    other: DStream<Pair<K, W>>,
    partitions?: number,
  ): DStream<[K, [V[], W[]]]> {
    return this.transformWith(other, (a, b) => a.cogroup(b, partitions)).rename('cogroup');
  },
  join<K, V, W>(
    this: DStream<Pair<K, V>>,
    other: DStream<Pair<K, W>>,
    partitions?: number,
  ): DStream<[K, [V, W]]> {
    return this.transformWith(other, (a, b) => a.join(b, partitions)).rename('join');
  },
  leftOuterJoin<K, V, W>(
    this: DStream<Pair<K, V>>,
    other: DStream<Pair<K, W>>,
    partitions?: number,
  ): DStream<[K, [V, W | undefined]]> {
    return this.transformWith(other, (a, b) => a.leftOuterJoin(b, partitions)).rename('leftOuterJoin');
  },
  rightOuterJoin<K, V, W>(
    this: DStream<Pair<K, V>>,
    other: DStream<Pair<K, W>>,
    partitions?: number,
  ): DStream<[K, [V | undefined, W]]> {
    return this.transformWith(other, (a, b) => a.rightOuterJoin(b, partitions)).rename('rightOuterJoin');
  },
  fullOuterJoin<K, V, W>(
    this: DStream<Pair<K, V>>,
    other: DStream<Pair<K, W>>,
    partitions?: number,
  ): DStream<[K, [V | undefined, W | undefined]]> {
    return this.transformWith(other, (a, b) => a.fullOuterJoin(b, partitions)).rename('fullOuterJoin');
  },
} satisfies Pick<DStream<any>, 'cogroup' | 'join' | 'leftOuterJoin' | 'rightOuterJoin' | 'fullOuterJoin'>);
