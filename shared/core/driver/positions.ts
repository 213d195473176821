/**
 * Where the driver is in the stream, as Spark's `JobGenerator` keeps its last processed batch: the
 * next batch to close, the batches received and never committed (run first, oldest first) and the
 * last committed batch. The batch loop moves them, and so do the rooms that close or commit
 * batches beside it (the backlog, the idle path).
 *
 * @module
 */
export class BatchPositions {
  /** The next batch to close after the pending ones. */
  nextTimeMs = 0;
  lastCommittedMs: number | undefined;
  /** Received, never committed: run first, oldest first. */
  pending: number[] = [];
}
