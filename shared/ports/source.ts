/**
 * The source port: where a stream's records come from.
 *
 * A source is polled once per batch interval by the driver. It hands over the records of the
 * interval together with an opaque acknowledgement token; the driver writes the records to the
 * store (the write-ahead step) and only then calls `ack`, so nothing acknowledged is ever lost.
 *
 * @module
 */
export interface DeadLetter {
  /** What was received, as text (or base64 for binary data). */
  readonly raw: string;
  /** Why it could not be used. */
  readonly reason: string;
  /** Where it came from (a message id, a line number, ...). */
  readonly origin?: string;
  /** The operator that could not use it (`map`, `reduceByKey`, `encode`, ...), for records set aside by a task. */
  readonly operator?: string;
  /** The record's key (as text), when the operator works per key. */
  readonly key?: string;
}

export interface ReceivedBatch<T> {
  /** The decoded records, in arrival order. */
  readonly records: T[];
  /** Input that could not be decoded; the driver writes it to the dead-letter area of the batch. */
  readonly deadLetters: DeadLetter[];
  /**
   * Ids of delivery units (SQS message ids, file offsets) in this batch. The driver records them in
   * the batch's write-ahead entry so a redelivered unit is recognised and not counted twice.
   */
  readonly deliveryIds?: string[];
  /** Passed back to `ack` once the batch is durable. */
  readonly ackToken?: unknown;
  /** Opaque position to persist with the batch so a restarted source resumes after it. */
  readonly position?: unknown;
  /**
   * Delivery units received again and not counted (SQS at-least-once): `redelivered` were
   * committed by an earlier batch, `duplicates` came twice within this one. Recorded in the
   * manifest (`delivery`), the metrics and `sluice status`.
   */
  readonly delivery?: { readonly redelivered: number; readonly duplicates: number };
}

export interface ReceiveRequest {
  /** The batch time (end of the interval) being closed, in epoch milliseconds. */
  readonly batchTimeMs: number;
  /** The batch interval in milliseconds. */
  readonly intervalMs: number;
  /**
   * Wall-clock time by which `receive` should return: the end of the interval for a live batch,
   * about now for a batch that is already late (catch-up after a restart). Sources that poll
   * (SQS) poll until then; sources that buffer (HTTP, stdin) return at once.
   */
  readonly closeAtMs?: number;
  /** Backpressure: the most records this batch may take (undefined: no cap). */
  readonly maxRecords?: number;
  /** Delivery ids already committed by earlier batches (for de-duplication of redeliveries). */
  readonly seen?: (deliveryId: string) => boolean;
  /** The position persisted with the last committed batch, on the first receive after a restart. */
  readonly resumeFrom?: unknown;
  /**
   * Set when a block generator takes records during the interval (`Source.continuous`, issue 14):
   * the milliseconds since its previous take. A source paced by time (the generator) makes this
   * slice's records instead of a whole interval's.
   */
  readonly sliceMs?: number;
}

export interface Source<T = unknown> {
  /**
   * True for sources that must be polled during the interval (SQS): the driver calls `receive` at
   * the start of the interval with `closeAtMs` at its end, instead of after the interval.
   */
  readonly polls?: boolean;
  /**
   * True for sources that can hand over records several times per interval (they buffer, or make
   * records by time): on the wall clock the driver's block generator takes what they have every
   * block interval and writes it at once (shared/core/receiver/), so closing a batch only seals
   * its write-ahead entry. `receive` is then called with `sliceMs`; `ack` once per take, after the
   * entry listing it is stored.
   */
  readonly continuous?: boolean;
  /** Starts listening (opens a port, a file, a queue connection). */
  start?(): Promise<void>;
  /**
   * Called once after `start` with the position persisted with the last received batch (the same
   * value `resumeFrom` carries on the first receive). A source that cannot carry on from it (a
   * file source given another file's position) throws, so the run stops before any batch.
   */
  resume?(position: unknown): Promise<void>;
  /** Returns the records of one interval. Called once per batch, in time order. */
  receive(request: ReceiveRequest): Promise<ReceivedBatch<T>>;
  /**
   * Acknowledges a batch returned by `receive` once its write-ahead entry is stored. A token not
   * acknowledged by the next `receive` belongs to a batch that failed.
   */
  ack?(token: unknown): Promise<void>;
  /** Stops listening. */
  stop?(): Promise<void>;
  /** True once a finite source has nothing more to give (lets `sluice run` stop by itself). */
  exhausted?(): boolean;
  /** A description for logs. */
  describe(): string;
}
