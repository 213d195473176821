/**
 * The names of the environment variables through which the CDK construct (`infra/`) configures
 * the Lambda functions (`functions/`), defined once and imported by both sides, so that a name
 * can never be written one way by the construct and read another way by a handler.
 *
 * This module imports nothing: the construct loads it without loading the engine.
 *
 * @module
 */

/** Every variable the construct sets on the functions (`environment` may not override them). */
export const LAMBDA_ENV = {
  /** The pipeline's bucket (all functions). */
  bucket: 'SLUICE_BUCKET',
  /** Key prefix inside the bucket (all functions). */
  prefix: 'SLUICE_PREFIX',
  /** The batch interval in milliseconds (all functions). */
  batchIntervalMs: 'SLUICE_BATCH_INTERVAL_MS',
  /** Partitions of every RDD, when the construct's `partitions` prop is set (all functions). */
  partitions: 'SLUICE_PARTITIONS',
  /** Partitions when neither the prop nor the module's `options.partitions` says (all functions). */
  defaultPartitions: 'SLUICE_DEFAULT_PARTITIONS',
  /** The `Pipeline` metric dimension (all functions). */
  pipelineName: 'SLUICE_PIPELINE_NAME',
  /** URL of the input queue (scheduler). */
  queueUrl: 'SLUICE_QUEUE_URL',
  /** Name of the partition function (scheduler, recovery). */
  partitionFunction: 'SLUICE_PARTITION_FUNCTION',
  /**
   * Timeout of the partition function in milliseconds (scheduler, recovery): the drivers give a
   * task up only after Lambda itself would have ended it, never while it may still be running.
   */
  partitionTimeoutMs: 'SLUICE_PARTITION_TIMEOUT_MS',
  /** Wire format of the queue's message bodies, json or lines (scheduler; docs/DEPLOY.md). */
  format: 'SLUICE_FORMAT',
  /** Partition tasks in flight at once (scheduler). */
  taskConcurrency: 'SLUICE_TASK_CONCURRENCY',
  /**
   * Sleep after the stream has been idle this long, in ms (scheduler; functions/lib/sleep.ts).
   * 0 or absent: never sleep (the construct's `alwaysOn`).
   */
  idleAfterMs: 'SLUICE_IDLE_AFTER_MS',
  /** `tinyBatch` of the driver (JSON: false, or { maxRecords, maxBytes }); unset: the defaults (issue 11). */
  tinyBatch: 'SLUICE_TINY_BATCH',
  /** The scheduler starts no batch this close to its timeout (scheduler). */
  runMsBeforeTimeout: 'SLUICE_RUN_MS_BEFORE_TIMEOUT',
  /** How long input blocks and write-ahead entries are kept (scheduler, recovery). */
  retainInputsMs: 'SLUICE_RETAIN_INPUTS_MS',
  /**
   * `1`: the scheduler also publishes the alarms' metrics (SchedulingDelayMs, FailedBatches) with
   * CloudWatch PutMetricData, besides the embedded-metric-format log lines. For LocalStack, which
   * turns no log line into a metric; on AWS it costs one PutMetricData per batch (construct prop
   * `metricsViaApi`, functions/lib/metrics-api.ts).
   */
  metricsViaApi: 'SLUICE_METRICS_API',
  /** Node's options (all functions: source maps). */
  nodeOptions: 'NODE_OPTIONS',
} as const;

/** The construct's default `partitionTimeout`, and the drivers' when the variable is absent. */
export const DEFAULT_PARTITION_TIMEOUT_MS = 60_000;

/**
 * How much longer than the partition function's timeout the driver waits for a task: Lambda's
 * init phase (up to 10 s) does not count against the function's timeout, and the answer still has
 * to travel back. A task that hangs is ended by Lambda (a function error, retried by the driver);
 * the driver's own timer only covers an answer lost on the way.
 */
export const TASK_TIMEOUT_SLACK_MS = 15_000;

/** The driver's task timeout for a partition function with this timeout. */
export function driverTaskTimeoutMs(partitionTimeoutMs: number): number {
  return partitionTimeoutMs + TASK_TIMEOUT_SLACK_MS;
}
