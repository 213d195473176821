/**
 * Task specs, task results and lineage records: plain data that crosses process boundaries
 * (worker threads, Lambda payloads, JSON files in the store). Nothing here holds a closure.
 *
 * @module
 */
import type { OutputFormat, ParquetSchema } from './parquet.ts';

/** What a worker needs to rebuild the same graph as the driver (the pipeline module is loaded there too). */
export interface GraphContext {
  readonly batchIntervalMs: number;
  readonly zeroTimeMs: number;
  readonly defaultPartitions: number;
  /** Fingerprint of the DStream graph; a worker whose graph differs refuses the task. */
  readonly fingerprint: string;
}

/** What a task reads, besides what it can derive from the graph. */
export type InputRef =
  /** A block read by key: an input block or a partition stored by an earlier batch. */
  | {
      readonly kind: 'block';
      readonly key: string;
      /**
       * An input partition written during the interval (issue 14): the blocks that make it, read
       * in order instead of `key` (absent: `key` is the one block).
       */
      readonly blocks?: readonly string[];
    }
  /** A partition of an RDD materialized earlier in this batch (a stage boundary). */
  | {
      readonly kind: 'materialized';
      readonly rddId: string;
      readonly name: string;
      readonly partition: number;
    }
  /** One map task's bucket of a shuffle, as a byte range of that map task's object. */
  | {
      readonly kind: 'shuffle';
      readonly shuffleId: string;
      readonly map: number;
      readonly key: string;
      readonly start: number;
      readonly end: number;
    };

export type TaskOutput =
  /** A shuffle map task writes one object holding every reduce bucket, and an index of byte ranges. */
  | { readonly kind: 'shuffle'; readonly shuffleId: string; readonly key: string; readonly buckets: number }
  /** A result task writes one partition of a materialized RDD. */
  | { readonly kind: 'rdd'; readonly key: string }
  /** A save task writes one part file of an output's batch folder (text, JSON lines or Parquet). */
  | {
      readonly kind: 'file';
      readonly key: string;
      readonly format: OutputFormat;
      /** Parquet: the declared column types (otherwise taken from the partition's records). */
      readonly schema?: ParquetSchema;
    };

export interface TaskSpec {
  readonly graph: GraphContext;
  readonly batchTimeMs: number;
  readonly stageId: number;
  readonly partition: number;
  readonly attempt: number;
  /** The RDD whose partition this task computes (the last operator of the stage). */
  readonly rddId: string;
  /** The name the output is stored under (`ds<N>` for a DStream's RDD). */
  readonly name: string;
  /** Operator ids pipelined in this task, from the stage's inputs to its output. */
  readonly operators: readonly string[];
  /** What this task reads (input blocks, stored RDD partitions, shuffle buckets). */
  readonly inputs: readonly InputRef[];
  readonly output: TaskOutput;
  /**
   * Where the lineage record went before issue 11 (read for stores written then). Now a stored
   * partition carries it in its own object (`lineage-store.ts`) and an output part's is in the
   * batch's manifest; nothing is written here.
   */
  readonly commitKey: string;
  /** Ask the worker to misbehave (fault injection; off unless the runner enables it). */
  readonly inject?: {
    /** Throw a retryable error before doing anything. */
    readonly fail?: boolean;
    /** Die (exit the worker thread or process) after writing the output, before committing it. */
    readonly exit?: boolean;
    /** Take this many times as long as the work did (a straggler). */
    readonly slowFactor?: number;
    /** Wait this long before starting. */
    readonly delayMs?: number;
  };
  /** A speculative copy of a straggling task (first commit wins). */
  readonly speculative?: boolean;
  /** The batch is skipped (`sluice run --skip-batch`): its input blocks are read as empty. */
  readonly skipInput?: boolean;
  /** Idle spans (issue 11) the task may read back over: their batches stored nothing, read as empty. */
  readonly idleSpans?: readonly (readonly [number, number])[];
}

export interface ParentRef {
  readonly rddId: string;
  readonly batchTimeMs: number;
  readonly partition: number;
  readonly key: string;
  /** The parent's batch was idle (issue 11): nothing stored, read as empty. */
  readonly idle?: true;
}

export interface LineageRecord {
  readonly rddId: string;
  readonly batchTimeMs: number;
  readonly partition: number;
  readonly operator: string;
  readonly operators: readonly string[];
  readonly stageId: number;
  readonly parents: readonly ParentRef[];
  readonly records: number;
  readonly bytes: number;
  /** CRC-32 of the stored bytes, hex. */
  readonly checksum: string;
  readonly attempt: number;
  readonly durationMs: number;
  readonly fingerprint: string;
  readonly key: string;
  /** For shuffle outputs: byte range of each reduce bucket inside `key`, as [start, end) pairs. */
  readonly index?: readonly (readonly [number, number])[];
  /** A shuffle map output whose every bucket is empty: no object was written (issue 11). */
  readonly empty?: true;
  readonly committedAtMs: number;
}

export interface TaskMetrics {
  readonly readRequests: number;
  readonly writeRequests: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly recordsIn: number;
  readonly recordsOut: number;
  /** Records that made user code throw and went to the dead-letter area. */
  readonly deadLettered: number;
}

export interface TaskResult {
  readonly lineage: LineageRecord;
  /** True when this attempt's commit won; false when an earlier attempt had already committed. */
  readonly committed: boolean;
  /**
   * Set when this attempt lost the commit and its output differs from the committed one: the
   * operator's functions are not deterministic (see "Records" in docs/API.md).
   */
  readonly nondeterministic?: boolean;
  readonly metrics: TaskMetrics;
}
