/**
 * RDDs: immutable, partitioned datasets with explicit dependencies (see rdd-core.ts). This module
 * is where every RDD is imported from: it loads the base class first, then the RDDs in their own
 * modules, and registers those for the base class (`rddClasses`).
 *
 * @module
 */
import { UnionRDD } from './collection-rdds.ts';
import { rddClasses } from './rdd-core.ts';
import { CoGroupedRDD, LocalCombineRDD, ShuffledRDD } from './shuffled-rdds.ts';

export * from './collection-rdds.ts';
export * from './rdd-core.ts';
export * from './shuffled-rdds.ts';

Object.assign(rddClasses, { ShuffledRDD, CoGroupedRDD, LocalCombineRDD, UnionRDD });
