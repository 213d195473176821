import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack, Tags, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ASLEEP_KEY, STORE_TAG } from '../aws/asleep-marker.ts';
import { DEFAULT_PARTITION_TIMEOUT_MS, LAMBDA_ENV } from '../functions/lib/env-names.ts';
import { SluiceCatalog, type SluiceCatalogOptions } from './catalog.ts';
import { SluicePipelinePropsError } from './errors.ts';

/**
 * Where this file runs from: `infra/sluice-pipeline.ts` in this repository (through tsx), or
 * `dist/infra/sluice-pipeline.js` in the installed package. The handlers sit beside it in
 * `../functions/`, as `.ts` or `.js` the same way, so the construct finds them in either place.
 */
const HERE = path.dirname(fileURLToPath(import.meta.url));
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ENTRY_EXT = FROM_SOURCE ? '.ts' : '.js';
/** The repository root, when run from the sources. */
const REPO_ROOT = path.resolve(HERE, '..');

/** The three Lambda handlers (`<name>.ts`, each exporting `handler`). */
export const FUNCTION_ENTRIES = ['scheduler', 'partition', 'recovery'] as const;

/** The module specifier the handlers import the user's pipeline from; an esbuild alias resolves it. */
export const PIPELINE_MODULE_ALIAS = 'sluice-pipeline';

/** Namespace of the metrics the scheduler emits in CloudWatch embedded metric format. */
export const METRICS_NAMESPACE = 'Sluice';

/**
 * ESM bundles have no `require`; some CommonJS dependencies call it. The banner gives them one.
 * `createRequire` is imported under a private name: a bundled module (msgpackr) imports
 * `createRequire` itself, and esbuild does not rename around banner text, so the plain name
 * fails at load time with "Identifier 'createRequire' has already been declared".
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __sluiceCreateRequire } from 'node:module'; const require = __sluiceCreateRequire(import.meta.url);";

/** The environment variables the construct sets; `environment` may not override them. */
const RESERVED_ENV: readonly string[] = Object.values(LAMBDA_ENV);

/**
 * Props of {@link SluicePipeline}.
 */
export interface SluicePipelineProps {
  /**
   * The pipeline module: a file whose default export builds the DStream graph
   * (`export default function (ctx: StreamingContext) { ... }`), e.g. `examples/wordcount.ts`.
   * Absolute, or relative to the current directory (the project root when run by `cdk`).
   * It is bundled into every function, so the driver and the workers run the same code.
   */
  readonly pipeline: string;

  /**
   * The wire format of the input queue's message bodies (docs/DEPLOY.md, "Wire format"): `json`, a
   * JSON value is one event and a JSON array is many; `lines`, plain text, each line one string
   * event. The queue is tagged `sluice:format`, which `sluice send` reads for its default.
   * @default 'json'
   */
  readonly format?: 'json' | 'lines';

  /**
   * Name of the pipeline: the `Pipeline` dimension of its metrics and the `SLUICE_PIPELINE_NAME`
   * of its functions. Letters, digits, `.`, `_` and `-`, at most 64 characters.
   * @default - the pipeline file's base name without extension, e.g. `wordcount`
   */
  readonly pipelineName?: string;

  /**
   * The batch interval: the stream is cut into batches of this length. At least 100 ms, in whole
   * milliseconds.
   * @default Duration.seconds(1)
   */
  readonly batchInterval?: Duration;

  /**
   * Number of partitions of every RDD (input blocks, shuffles, state), hence of parallel tasks per
   * stage. From 1 to 1000. Unset, the pipeline module's `options.partitions` decides, as in
   * `sluice run`, and 8 when it says nothing.
   * @default the module's options.partitions, else 8
   */
  readonly partitions?: number;

  /**
   * Key prefix of everything the pipeline stores in its bucket (`SLUICE_PREFIX`), without leading or
   * trailing slash; the lifecycle rules follow it.
   * @default '' (the bucket root)
   */
  readonly prefix?: string;

  /**
   * How long received input (`inputs/`) and the batches' write-ahead entries (`batches/`) are kept:
   * the window in which a past batch can be replayed or recovered. Whole days.
   * @default Duration.days(7)
   */
  readonly retainInputs?: Duration;

  /**
   * How long shuffle objects (`shuffle/`) are kept. The driver deletes a batch's shuffle data right
   * after the batch and keeps only its lineage records, as long as the RDDs they fed; this rule is
   * the backstop for what a dead driver left behind. Whole days.
   * @default - the same as `retainRdds`
   */
  readonly retainShuffle?: Duration;

  /**
   * How long materialized RDD partitions (`rdd/`) are kept. State and windows read earlier batches'
   * RDDs, so this must exceed the longest window and the longest pause of a stateful pipeline
   * (a paused stateful pipeline whose last state has expired cannot resume it). Whole days.
   * @default Duration.days(2)
   */
  readonly retainRdds?: Duration;

  /**
   * What happens to the bucket and the log groups when the stack is deleted. The queues are always
   * deleted. `RemovalPolicy.DESTROY` fails on a non-empty bucket: empty it first (there is
   * deliberately no auto-delete custom resource).
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Timeout of the scheduler function: how long one invocation holds the driver lease and runs
   * consecutive batches before handing over. From 1 to 15 minutes.
   * @default Duration.minutes(15)
   */
  readonly schedulerTimeout?: Duration;

  /**
   * The scheduler starts no new batch this close to its timeout (`SLUICE_RUN_MS_BEFORE_TIMEOUT`),
   * so the batch in flight can finish. Less than `schedulerTimeout` minus `batchInterval`.
   * @default - `partitionTimeout` plus 10 seconds
   */
  readonly runMarginBeforeTimeout?: Duration;

  /**
   * Memory of the scheduler function, in MiB.
   * @default 1024
   */
  readonly schedulerMemorySize?: number;

  /**
   * The scheduler sleeps once the stream has been idle this long (no input, no state, no window
   * data: docs/ARCHITECTURE.md, "The idle fast path"); each minute tick then asks the queue only
   * (`SLUICE_IDLE_AFTER_MS`, functions/lib/sleep.ts). The first event after a sleep waits up to
   * one tick plus one interval. Ignored with `alwaysOn`.
   * @default Duration.minutes(2)
   */
  readonly idleAfter?: Duration;

  /**
   * Keep the scheduler running batches however long the stream is idle (today's behaviour, for
   * latency-critical pipelines): no sleep.
   * @default false
   */
  readonly alwaysOn?: boolean;

  /**
   * A batch with at most this input runs its tasks inside the scheduler function, its shuffle in
   * memory (no partition invocation; `SLUICE_TINY_BATCH`, shared/core/driver/tiny-batch.ts): the
   * same keys and commits, fewer requests. `false` sends every task to the partition function (for
   * heavy user code that needs the partition function's memory or time).
   * @default { maxRecords: 10_000, maxBytes: 4 MiB }
   */
  readonly tinyBatch?: false | { readonly maxRecords?: number; readonly maxBytes?: number };

  /**
   * Timeout of one partition task. From 1 second to 15 minutes.
   * @default Duration.seconds(60)
   */
  readonly partitionTimeout?: Duration;

  /**
   * Memory of the partition function, in MiB (1769 MiB is one full vCPU).
   * @default 1769
   */
  readonly partitionMemorySize?: number;

  /**
   * How many partition tasks the scheduler runs at once (`SLUICE_TASK_CONCURRENCY`). From 1 to 1000.
   * @default 32
   */
  readonly taskConcurrency?: number;

  /**
   * Visibility timeout of the input queue: how long a received message stays hidden while the
   * scheduler writes it to S3 before deleting it. At least twice the batch interval, at most 12 hours.
   * @default Duration.minutes(5)
   */
  readonly queueVisibilityTimeout?: Duration;

  /**
   * Receives after which a message that never made it into a batch goes to the dead-letter queue.
   * From 1 to 1000.
   * @default 5
   */
  readonly maxReceiveCount?: number;

  /**
   * Instruction set of the functions. The bundles are plain JavaScript, so either works.
   * @default lambda.Architecture.ARM_64 (about 20% cheaper per GB-second)
   */
  readonly architecture?: lambda.Architecture;

  /**
   * Extra environment for all three functions, e.g. the pipeline's own settings
   * (`SLUICE_GREP_PATTERN` of `examples/grep.ts`): the driver and the workers must see the same
   * values. May not set the variables the construct sets.
   * @default - none
   */
  readonly environment?: Record<string, string>;

  /**
   * Whether the EventBridge rules that wake the scheduler (every minute) and the recovery function
   * (every 5 minutes) are enabled. Disable to deploy a stopped pipeline.
   * @default true
   */
  readonly scheduleEnabled?: boolean;

  /**
   * SNS topic notified when an alarm fires or recovers.
   * @default - alarms have no actions
   */
  readonly alarmTopic?: sns.ITopic;

  /**
   * Whether to create a CloudWatch dashboard, the counterpart of Spark's Streaming tab: input rate,
   * scheduling delay, processing time, total delay, failures and the functions' health.
   * @default true
   */
  readonly dashboard?: boolean;

  /**
   * Whether the scheduler also publishes the metrics its alarms watch (SchedulingDelayMs,
   * FailedBatches; namespace Sluice, dimension Pipeline) with CloudWatch PutMetricData, besides the
   * embedded-metric-format log lines. For LocalStack, which turns no log line into a metric, so
   * that its alarms' metrics move there; on AWS it only adds one PutMetricData request per batch.
   * @default false
   */
  readonly metricsViaApi?: boolean;

  /**
   * Retention of the functions' log groups (the batch and task logs, and the metrics' source).
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Bucket that receives S3 server access logs of the pipeline's bucket.
   * @default - no server access logs (a 1 s pipeline makes thousands of requests a minute; the
   * manifests already count every request per batch)
   */
  readonly serverAccessLogsBucket?: s3.IBucket;

  /**
   * Directory holding `scheduler`, `partition` and `recovery` (`.ts` or `.js`), each exporting `handler`.
   * @default - the package's own handlers (`functions/` in this repository, `dist/functions/` installed)
   */
  readonly functionsDir?: string;

  /**
   * A Glue database with a table per saved output in `tables` (partition projection on the
   * output layout's `dt` and `hr`, so `SELECT ... WHERE dt = '2026-11-29'` works right after
   * deploy) and an Athena workgroup writing results to `athena-results/` in the bucket. `true`
   * makes the database and the workgroup only. See docs/DEPLOY.md, "Query results with Athena".
   * @default false
   */
  readonly catalog?: boolean | SluiceCatalogOptions;
}

/**
 * A Sluice pipeline on AWS: D-Streams as serverless micro-batches.
 *
 * Producers send events to `inputQueue`. Every minute an EventBridge rule wakes the scheduler
 * function; the invocation that takes the driver lease (in S3) closes one batch per
 * `batchInterval`: it writes the interval's messages to `bucket` as input blocks, records the batch,
 * deletes the messages, then runs the batch's tasks on the partition function and commits the
 * manifest, until close to its timeout, when it hands over. Every 5 minutes the recovery function
 * re-runs batches that a dead scheduler left uncommitted.
 *
 * @example
 * const wordCount = new SluicePipeline(this, 'WordCount', {
 *   pipeline: 'examples/wordcount.ts',
 *   batchInterval: Duration.seconds(1),
 *   partitions: 8,
 * });
 * wordCount.grantSend(producerRole);
 */
export class SluicePipeline extends Construct {
  /** The pipeline's store: input blocks, write-ahead entries, RDDs, shuffles, manifests, outputs. */
  readonly bucket: s3.Bucket;
  /** Producers send events here (one message may carry many). */
  readonly inputQueue: sqs.Queue;
  /** Messages received `maxReceiveCount` times without making it into a batch. */
  readonly deadLetterQueue: sqs.Queue;
  /** The scheduler also calls PutMetricData (`metricsViaApi`): its wildcard resource is acknowledged for cdk-nag. */
  private readonly metricsViaApi: boolean;
  /** The driver: closes batches, plans them, fans out tasks, commits manifests. */
  readonly schedulerFunction: nodejs.NodejsFunction;
  /** Runs one task (or a pack of tasks) of a batch: computes and commits RDD partitions. */
  readonly partitionFunction: nodejs.NodejsFunction;
  /** Re-runs batches that were received but never committed when no scheduler holds the lease. */
  readonly recoveryFunction: nodejs.NodejsFunction;
  /** Wakes the scheduler every minute. */
  readonly schedulerRule: events.Rule;
  /** Wakes the recovery function every 5 minutes. */
  readonly recoveryRule: events.Rule;
  /** Scheduling delay (Maximum) above twice the batch interval in 3 of 5 minutes: falling behind. */
  readonly schedulingDelayAlarm: cloudwatch.Alarm;
  /** At least one failed batch in a minute. */
  readonly failedBatchesAlarm: cloudwatch.Alarm;
  /** Messages are waiting in the dead-letter queue. */
  readonly deadLetterAlarm: cloudwatch.Alarm;
  /** Lambda `Errors` of each function, by function role. */
  readonly functionErrorAlarms: Readonly<Record<'scheduler' | 'partition' | 'recovery', cloudwatch.Alarm>>;
  /** Every alarm above. */
  readonly alarms: readonly cloudwatch.Alarm[];
  /** The dashboard, unless `dashboard: false`. */
  readonly dashboard?: cloudwatch.Dashboard;
  /** The Glue database and tables and the Athena workgroup, with `catalog`. */
  readonly catalog?: SluiceCatalog;

  /** `SLUICE_PIPELINE_NAME`, the `Pipeline` metric dimension. */
  readonly pipelineName: string;
  /** The batch interval in milliseconds. */
  readonly batchIntervalMs: number;
  /** Partitions of every RDD. */
  readonly partitions: number;
  /** Normalized key prefix (no leading or trailing slash; '' for the bucket root). */
  readonly prefix: string;
  /** Absolute path of the bundled pipeline module. */
  readonly pipelinePath: string;

  constructor(scope: Construct, id: string, props: SluicePipelineProps) {
    super(scope, id);
    const config = resolveProps(`SluicePipeline '${this.node.path}'`, props);
    this.pipelineName = config.pipelineName;
    this.batchIntervalMs = config.batchIntervalMs;
    this.partitions = config.partitions;
    this.prefix = config.prefix;
    this.pipelinePath = config.pipelinePath;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    // ---- storage --------------------------------------------------------------------------------
    // SSE-S3 rather than KMS: a 1 s pipeline makes thousands of GETs and PUTs a minute, each of which
    // would be a KMS request (cost, and request quotas) for no gain in who can read the data: access
    // is governed by IAM and the bucket policy either way.
    const keyPrefix = (folder: string) => (config.prefix ? `${config.prefix}/${folder}/` : `${folder}/`);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      // Every key is written once (or rewritten with identical bytes), so versions would only
      // double the storage of the intermediate data.
      versioned: false,
      removalPolicy,
      serverAccessLogsBucket: props.serverAccessLogsBucket,
      serverAccessLogsPrefix: props.serverAccessLogsBucket ? `${Stack.of(this).stackName}/${id}/` : undefined,
      lifecycleRules: [
        { id: 'expire-inputs', prefix: keyPrefix('inputs'), expiration: config.retainInputs },
        { id: 'expire-batches', prefix: keyPrefix('batches'), expiration: config.retainInputs },
        { id: 'expire-shuffle', prefix: keyPrefix('shuffle'), expiration: config.retainShuffle },
        { id: 'expire-rdd', prefix: keyPrefix('rdd'), expiration: config.retainRdds },
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });

    if (props.catalog) {
      this.catalog = new SluiceCatalog(this, 'Catalog', {
        ...(props.catalog === true ? {} : props.catalog),
        bucket: this.bucket,
        keyPrefix: keyPrefix('x').slice(0, -2),
        pipelineName: config.pipelineName,
        fail: (prop, message) => {
          throw new SluicePipelinePropsError(`SluicePipeline '${this.node.path}'`, prop, message);
        },
      });
    }

    // ---- input ----------------------------------------------------------------------------------
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.inputQueue = new sqs.Queue(this, 'InputQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: config.queueVisibilityTimeout,
      // A stopped pipeline resumes from the queue: keep events as long as SQS allows.
      retentionPeriod: Duration.days(14),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: config.maxReceiveCount },
    });

    // ---- functions ------------------------------------------------------------------------------
    const common: Record<string, string> = {
      ...props.environment,
      [LAMBDA_ENV.bucket]: this.bucket.bucketName,
      [LAMBDA_ENV.prefix]: config.prefix,
      [LAMBDA_ENV.batchIntervalMs]: String(config.batchIntervalMs),
      // the module's options.partitions is honoured unless the prop says otherwise (as sluice run does)
      ...(props.partitions !== undefined ? { [LAMBDA_ENV.partitions]: String(config.partitions) } : {}),
      [LAMBDA_ENV.defaultPartitions]: String(config.partitions),
      [LAMBDA_ENV.pipelineName]: config.pipelineName,
      [LAMBDA_ENV.nodeOptions]: '--enable-source-maps',
    };
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const makeFunction = (
      name: (typeof FUNCTION_ENTRIES)[number],
      options: { description: string; timeout: Duration; memorySize: number; retryAttempts?: number },
    ) =>
      new nodejs.NodejsFunction(this, `${capitalize(name)}Function`, {
        entry: functionEntry(config.functionsDir, name)!,
        handler: 'handler',
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: props.architecture ?? lambda.Architecture.ARM_64,
        description: `Sluice ${config.pipelineName}: ${options.description}`,
        timeout: options.timeout,
        memorySize: options.memorySize,
        retryAttempts: options.retryAttempts,
        environment: { ...common },
        // An explicit log group, so that retention and removal follow the props (the implicit one
        // would keep logs forever and outlive the stack).
        logGroup: new logs.LogGroup(this, `${capitalize(name)}Logs`, {
          retention: logRetention,
          removalPolicy,
        }),
        // In this repository: its root and lock file. Installed: CDK's default, the lock file found
        // upwards from the current directory (the user's CDK app), whose node_modules holds sluice.
        ...(FROM_SOURCE
          ? { projectRoot: REPO_ROOT, depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json') }
          : {}),
        bundling: bundlingOptions(config.pipelinePath),
      });

    this.partitionFunction = makeFunction('partition', {
      description: 'runs the tasks of a batch (one RDD partition each)',
      timeout: config.partitionTimeout,
      memorySize: config.partitionMemorySize,
    });
    // Scheduler and recovery are woken by EventBridge (asynchronous invocations): Lambda's own
    // retries would only pile up behind the driver lease; the next tick is the retry.
    this.schedulerFunction = makeFunction('scheduler', {
      description: 'the driver: closes batches, runs their tasks, commits manifests',
      timeout: config.schedulerTimeout,
      memorySize: config.schedulerMemorySize,
      retryAttempts: 0,
    });
    this.recoveryFunction = makeFunction('recovery', {
      description: 're-runs batches left uncommitted by a dead scheduler',
      timeout: Duration.minutes(5),
      memorySize: config.schedulerMemorySize,
      retryAttempts: 0,
    });
    this.schedulerFunction.addEnvironment(LAMBDA_ENV.queueUrl, this.inputQueue.queueUrl);
    this.schedulerFunction.addEnvironment(LAMBDA_ENV.taskConcurrency, String(config.taskConcurrency));
    this.schedulerFunction.addEnvironment(LAMBDA_ENV.runMsBeforeTimeout, String(config.runMarginMs));
    // the sleeping scheduler (issue 11): 0 keeps it always on
    this.schedulerFunction.addEnvironment(
      LAMBDA_ENV.idleAfterMs,
      String(props.alwaysOn ? 0 : (props.idleAfter?.toMilliseconds() ?? 120_000)),
    );
    this.schedulerFunction.addEnvironment(LAMBDA_ENV.format, config.format);
    this.metricsViaApi = props.metricsViaApi === true;
    if (props.metricsViaApi) {
      this.schedulerFunction.addEnvironment(LAMBDA_ENV.metricsViaApi, '1');
      // PutMetricData has no resources to name: the statement is limited to Sluice's namespace
      this.schedulerFunction.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['cloudwatch:PutMetricData'],
          resources: ['*'],
          conditions: { StringEquals: { 'cloudwatch:namespace': 'Sluice' } },
        }),
      );
    }
    Tags.of(this.inputQueue).add('sluice:format', config.format);
    // where producers find the sleeping scheduler's marker to nudge it (aws/nudge.ts)
    Tags.of(this.inputQueue).add(
      STORE_TAG,
      `s3://${this.bucket.bucketName}${config.prefix ? `/${config.prefix}` : ''}`,
    );
    for (const driver of [this.schedulerFunction, this.recoveryFunction]) {
      driver.addEnvironment(LAMBDA_ENV.partitionFunction, this.partitionFunction.functionName);
      // The drivers wait for a task as long as the partition function may run (not a fixed 2 minutes),
      // so they never re-invoke a task that is still running.
      driver.addEnvironment(LAMBDA_ENV.partitionTimeoutMs, String(config.partitionTimeout.toMilliseconds()));
      // The drivers' own clean-up of old inputs must not undercut the lifecycle rule (replay window).
      driver.addEnvironment(LAMBDA_ENV.retainInputsMs, String(config.retainInputs.toMilliseconds()));
      if (props.tinyBatch !== undefined)
        driver.addEnvironment(LAMBDA_ENV.tinyBatch, JSON.stringify(props.tinyBatch));
    }

    // ---- least privilege ------------------------------------------------------------------------
    // Drivers (scheduler, recovery) read, write, list and delete: they clean up finished shuffles,
    // RDDs and inputs past their retention, and old lease epochs.
    this.bucket.grantReadWrite(this.schedulerFunction);
    this.bucket.grantReadWrite(this.recoveryFunction);
    // Workers read and put, never delete. grantRead includes s3:ListBucket, without which S3
    // answers 403 instead of 404 for a missing key, and a missing input would look like a denial.
    this.bucket.grantRead(this.partitionFunction);
    this.bucket.grantPut(this.partitionFunction);
    // Exactly what the SQS source needs (no GetQueueUrl: the URL is in the environment).
    this.inputQueue.grant(
      this.schedulerFunction,
      'sqs:ReceiveMessage',
      'sqs:DeleteMessage',
      'sqs:ChangeMessageVisibility',
      'sqs:GetQueueAttributes',
    );
    this.partitionFunction.grantInvoke(this.schedulerFunction);
    this.partitionFunction.grantInvoke(this.recoveryFunction);

    // ---- schedule -------------------------------------------------------------------------------
    // EventBridge rules rather than EventBridge Scheduler: LocalStack fires rules, not schedules.
    // A tick older than a minute is worthless (the next one is coming), so it is not retried long.
    const enabled = props.scheduleEnabled ?? true;
    this.schedulerRule = new events.Rule(this, 'SchedulerTick', {
      description: `Sluice ${config.pipelineName}: wakes the scheduler; the lease holder runs batches, others return`,
      schedule: events.Schedule.rate(Duration.minutes(1)),
      enabled,
      targets: [
        new eventsTargets.LambdaFunction(this.schedulerFunction, {
          maxEventAge: Duration.minutes(1),
          retryAttempts: 2,
        }),
      ],
    });
    this.recoveryRule = new events.Rule(this, 'RecoveryTick', {
      description: `Sluice ${config.pipelineName}: wakes the recovery of uncommitted batches`,
      schedule: events.Schedule.rate(Duration.minutes(5)),
      enabled,
      targets: [
        new eventsTargets.LambdaFunction(this.recoveryFunction, {
          maxEventAge: Duration.minutes(5),
          retryAttempts: 2,
        }),
      ],
    });

    // ---- alarms ---------------------------------------------------------------------------------
    const metric = (metricName: string, statistic: string) =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { Pipeline: config.pipelineName },
        statistic,
        period: Duration.minutes(1),
      });
    this.schedulingDelayAlarm = new cloudwatch.Alarm(this, 'SchedulingDelayAlarm', {
      alarmDescription: `Sluice ${config.pipelineName}: batches start more than ${2 * config.batchIntervalMs} ms (2 batch intervals) late; processing falls behind the input`,
      metric: metric('SchedulingDelayMs', cloudwatch.Stats.MAXIMUM),
      threshold: 2 * config.batchIntervalMs,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.failedBatchesAlarm = new cloudwatch.Alarm(this, 'FailedBatchesAlarm', {
      alarmDescription: `Sluice ${config.pipelineName}: a batch failed (see the scheduler's batch.failed log lines)`,
      metric: metric('FailedBatches', cloudwatch.Stats.SUM),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.deadLetterAlarm = new cloudwatch.Alarm(this, 'DeadLetterAlarm', {
      alarmDescription: `Sluice ${config.pipelineName}: input messages were moved to the dead-letter queue`,
      // SQS publishes its metrics every 5 minutes.
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const errorAlarm = (role: string, fn: lambda.IFunction) =>
      new cloudwatch.Alarm(this, `${capitalize(role)}ErrorsAlarm`, {
        alarmDescription: `Sluice ${config.pipelineName}: the ${role} function failed`,
        metric: fn.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.functionErrorAlarms = {
      scheduler: errorAlarm('scheduler', this.schedulerFunction),
      partition: errorAlarm('partition', this.partitionFunction),
      recovery: errorAlarm('recovery', this.recoveryFunction),
    };
    this.alarms = [
      this.schedulingDelayAlarm,
      this.failedBatchesAlarm,
      this.deadLetterAlarm,
      ...Object.values(this.functionErrorAlarms),
    ];
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }

    if (props.dashboard ?? true) this.dashboard = this.createDashboard(metric);

    this.acknowledgeNagFindings(config);
  }

  /**
   * Lets `grantee` send events to the pipeline (the producer side: `sluice send`, `SqsProducer`):
   * SendMessage and ListQueueTags on the queue, and for the nudge of a sleeping scheduler
   * (docs/DEPLOY.md) GetObject of its marker `meta/asleep.json` only and InvokeFunction of the
   * scheduler function.
   */
  grantSend(grantee: iam.IGrantable): iam.Grant {
    const grant = this.inputQueue.grantSendMessages(grantee);
    // `sluice send` reads the queue's `sluice:format` and `sluice:store` tags
    this.inputQueue.grant(grantee, 'sqs:ListQueueTags');
    // the nudge (aws/nudge.ts): read the sleeping scheduler's marker, and nothing else of the
    // bucket (ListBucket only for that key, so that a missing marker reads as 404, not 403) ...
    const marker = this.prefix ? `${this.prefix}/${ASLEEP_KEY}` : ASLEEP_KEY;
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject'],
      resourceArns: [this.bucket.arnForObjects(marker)],
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
      conditions: { StringEquals: { 's3:prefix': marker } },
    });
    // ... and wake the scheduler with an asynchronous invoke
    this.schedulerFunction.grantInvoke(grantee);
    return grant;
  }

  private createDashboard(
    metric: (name: string, statistic: string) => cloudwatch.Metric,
  ): cloudwatch.Dashboard {
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
    });
    const graph = (title: string, left: cloudwatch.IMetric[], leftYAxis?: cloudwatch.YAxisProps) =>
      new cloudwatch.GraphWidget({ title, left, leftYAxis, width: 8, height: 6 });
    const functions = [this.schedulerFunction, this.partitionFunction, this.recoveryFunction];
    dashboard.addWidgets(
      graph('Input records per minute', [metric('InputRecords', cloudwatch.Stats.SUM)]),
      graph('Scheduling delay (ms)', [
        metric('SchedulingDelayMs', cloudwatch.Stats.AVERAGE),
        metric('SchedulingDelayMs', cloudwatch.Stats.MAXIMUM),
      ]),
      graph('Processing time and total delay (ms)', [
        metric('ProcessingTimeMs', cloudwatch.Stats.AVERAGE),
        metric('TotalDelayMs', cloudwatch.Stats.AVERAGE),
      ]),
    );
    dashboard.addWidgets(
      graph('Batches per minute', [metric('ProcessingTimeMs', cloudwatch.Stats.SAMPLE_COUNT)]),
      graph('Failures', [
        metric('FailedBatches', cloudwatch.Stats.SUM),
        metric('TaskRetries', cloudwatch.Stats.SUM),
        metric('DeadLetters', cloudwatch.Stats.SUM),
      ]),
      graph('S3 requests per minute', [metric('S3Requests', cloudwatch.Stats.SUM)]),
    );
    dashboard.addWidgets(
      graph(
        'Function errors',
        functions.map((fn) => fn.metricErrors({ period: Duration.minutes(1) })),
      ),
      graph(
        'Function duration (p99, ms)',
        functions.map((fn) => fn.metricDuration({ period: Duration.minutes(1), statistic: 'p99' })),
      ),
      graph('Queue backlog', [
        this.inputQueue.metricApproximateNumberOfMessagesVisible(),
        this.inputQueue.metricApproximateAgeOfOldestMessage(),
        this.deadLetterQueue.metricApproximateNumberOfMessagesVisible(),
      ]),
    );
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: [...this.alarms], width: 24 }),
    );
    return dashboard;
  }

  /**
   * cdk-nag (AwsSolutions) findings that are deliberate, each with its reason. cdk-nag 3 reads
   * CDK's own acknowledgements (`Validations.of(...).acknowledge`), one per finding.
   */
  private acknowledgeNagFindings(config: ResolvedProps): void {
    const stack = Stack.of(this);
    const ack = (scope: Construct, id: string, reason: string) =>
      Validations.of(scope).acknowledge({ id, reason });
    const bucketArn = `Resource::<${stack.getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/*`;
    const partitionArn = `Resource::<${stack.getLogicalId(this.partitionFunction.node.defaultChild as lambda.CfnFunction)}.Arn>:*`;

    if (!config.hasAccessLogs) {
      ack(
        this.bucket,
        'AwsSolutions-S1',
        'Server access logs are off by default: a 1 s pipeline makes thousands of requests a minute, and every ' +
          'batch manifest already records its S3 requests. Pass serverAccessLogsBucket to turn them on.',
      );
    }

    const functions = [this.schedulerFunction, this.partitionFunction, this.recoveryFunction];
    for (const fn of functions) {
      ack(
        fn,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        'AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch logs (which also carry its ' +
          'embedded-format metrics); it is the AWS-maintained minimum for a Lambda function.',
      );
      ack(
        fn,
        'AwsSolutions-L1',
        'nodejs22.x is deliberate: the project builds and tests on Node 20/22 (vitest 4.1, commander 14), and ' +
          'the bundles target node22; move to a newer runtime together with the toolchain.',
      );
    }

    const objectWildcard =
      'Sluice writes and reads one object per (batch time, stage, partition) under keys derived at run time ' +
      '(inputs/, batches/, rdd/, shuffle/, manifests/, outputs/, deadletter/, leases), so object actions need ' +
      "the bucket's object wildcard; the grant is scoped to this pipeline's bucket only.";
    const actionWildcard =
      'Wildcard action families come from the CDK grant (grantRead/grantReadWrite/grantPut) on this one bucket: ' +
      'GetObject* covers GetObject and its attribute/version reads, GetBucket* bucket metadata reads, List* ' +
      'the ListBucket the store needs to tell a missing key (404) from a denied one (403), DeleteObject* the ' +
      "drivers' clean-up of finished shuffles, expired RDDs and inputs and old lease epochs, Abort* the " +
      'clean-up of failed multipart uploads.';
    if (this.metricsViaApi) {
      const policy = this.schedulerFunction.role?.node.tryFindChild('DefaultPolicy');
      if (policy) {
        ack(
          policy,
          'AwsSolutions-IAM5[Resource::*]',
          'cloudwatch:PutMetricData has no resource ARNs (it only accepts "*"); the statement is limited to the ' +
            "Sluice namespace by its cloudwatch:namespace condition. Only with metricsViaApi (LocalStack's alarms).",
        );
      }
    }
    const drivers = [this.schedulerFunction, this.recoveryFunction];
    for (const fn of functions) {
      const policy = fn.role?.node.tryFindChild('DefaultPolicy');
      if (!policy) continue;
      ack(policy, `AwsSolutions-IAM5[${bucketArn}]`, objectWildcard);
      for (const action of ['s3:GetObject*', 's3:GetBucket*', 's3:List*']) {
        ack(policy, `AwsSolutions-IAM5[Action::${action}]`, actionWildcard);
      }
      ack(policy, 'AwsSolutions-IAM5[Action::s3:Abort*]', actionWildcard);
      if (drivers.includes(fn)) {
        ack(policy, 'AwsSolutions-IAM5[Action::s3:DeleteObject*]', actionWildcard);
        ack(
          policy,
          `AwsSolutions-IAM5[${partitionArn}]`,
          'lambda:InvokeFunction on the partition function and its versions/aliases (<arn>:*), as CDK grantInvoke ' +
            'renders it; no other function can be invoked.',
        );
      }
    }
  }
}

// ---- props --------------------------------------------------------------------------------------

interface ResolvedProps {
  readonly format: 'json' | 'lines';
  readonly pipelinePath: string;
  readonly pipelineName: string;
  readonly batchIntervalMs: number;
  readonly partitions: number;
  readonly prefix: string;
  readonly retainInputs: Duration;
  readonly retainShuffle: Duration;
  readonly retainRdds: Duration;
  readonly schedulerTimeout: Duration;
  readonly runMarginMs: number;
  readonly schedulerMemorySize: number;
  readonly partitionTimeout: Duration;
  readonly partitionMemorySize: number;
  readonly taskConcurrency: number;
  readonly queueVisibilityTimeout: Duration;
  readonly maxReceiveCount: number;
  readonly functionsDir: string;
  readonly hasAccessLogs: boolean;
}

/** Validates the props (every check names the prop) and fills in the defaults. */
function resolveProps(where: string, props: SluicePipelineProps): ResolvedProps {
  const fail = (prop: string, message: string): never => {
    throw new SluicePipelinePropsError(where, prop, message);
  };

  if (typeof props.pipeline !== 'string' || props.pipeline.trim() === '') {
    fail('pipeline', 'give the path of the pipeline module, e.g. examples/wordcount.ts');
  }
  const pipelinePath = path.resolve(props.pipeline);
  if (!existsSync(pipelinePath) || !statSync(pipelinePath).isFile()) {
    fail('pipeline', `no such file: ${props.pipeline} (resolved to ${pipelinePath})`);
  }

  const format = props.format ?? 'json';
  if (format !== 'json' && format !== 'lines') fail('format', `must be 'json' or 'lines', got '${format}'`);

  const tiny: unknown = props.tinyBatch;
  if (tiny !== undefined && tiny !== false) {
    if (typeof tiny !== 'object' || tiny === null)
      fail('tinyBatch', 'must be false or { maxRecords, maxBytes }');
    for (const [k, v] of Object.entries(tiny as object)) {
      if (k !== 'maxRecords' && k !== 'maxBytes')
        fail(`tinyBatch.${k}`, 'is not a field (maxRecords, maxBytes)');
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
        fail(`tinyBatch.${k}`, `must be a whole number of 0 or more, got ${JSON.stringify(v)}`);
    }
  }

  const pipelineName = props.pipelineName ?? path.basename(pipelinePath).replace(/\.[^.]*$/, '');
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(pipelineName)) {
    fail(
      props.pipelineName === undefined ? 'pipelineName (from the pipeline file name)' : 'pipelineName',
      `'${pipelineName}' must be 1 to 64 letters, digits, '.', '_' or '-'`,
    );
  }

  const batchIntervalMs = millis('batchInterval', props.batchInterval ?? Duration.seconds(1), fail);
  if (!Number.isInteger(batchIntervalMs))
    fail('batchInterval', `must be whole milliseconds, got ${batchIntervalMs} ms`);
  if (batchIntervalMs < 100) fail('batchInterval', `must be at least 100 ms, got ${batchIntervalMs} ms`);

  const partitions = integer('partitions', props.partitions ?? 8, 1, 1000, fail);
  const taskConcurrency = integer('taskConcurrency', props.taskConcurrency ?? 32, 1, 1000, fail);
  const maxReceiveCount = integer('maxReceiveCount', props.maxReceiveCount ?? 5, 1, 1000, fail);
  const schedulerMemorySize = integer(
    'schedulerMemorySize',
    props.schedulerMemorySize ?? 1024,
    128,
    10240,
    fail,
  );
  const partitionMemorySize = integer(
    'partitionMemorySize',
    props.partitionMemorySize ?? 1769,
    128,
    10240,
    fail,
  );

  const prefix = (props.prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (!/^[A-Za-z0-9!_.*'()/-]{0,200}$/.test(prefix) || prefix.includes('//')) {
    fail(
      'prefix',
      `'${props.prefix}' must be at most 200 characters of letters, digits and !_.*'()/- (no '//')`,
    );
  }

  const retainInputs = wholeDays('retainInputs', props.retainInputs ?? Duration.days(7), fail);
  const retainRdds = wholeDays('retainRdds', props.retainRdds ?? Duration.days(2), fail);
  const retainShuffle = wholeDays('retainShuffle', props.retainShuffle ?? retainRdds, fail);

  const schedulerTimeout = props.schedulerTimeout ?? Duration.minutes(15);
  const schedulerTimeoutMs = millis('schedulerTimeout', schedulerTimeout, fail);
  if (schedulerTimeoutMs < 60_000 || schedulerTimeoutMs > 900_000 || schedulerTimeoutMs % 1000 !== 0) {
    fail(
      'schedulerTimeout',
      `must be whole seconds from 1 to 15 minutes (it is woken every minute), got ${schedulerTimeout.toHumanString()}`,
    );
  }
  const partitionTimeout = props.partitionTimeout ?? Duration.millis(DEFAULT_PARTITION_TIMEOUT_MS);
  const partitionTimeoutMs = millis('partitionTimeout', partitionTimeout, fail);
  if (partitionTimeoutMs < 1000 || partitionTimeoutMs > 900_000 || partitionTimeoutMs % 1000 !== 0) {
    fail(
      'partitionTimeout',
      `must be whole seconds from 1 s to 15 minutes, got ${partitionTimeout.toHumanString()}`,
    );
  }
  const runMarginMs = millis(
    'runMarginBeforeTimeout',
    props.runMarginBeforeTimeout ?? Duration.millis(partitionTimeoutMs + 10_000),
    fail,
  );
  if (
    !Number.isInteger(runMarginMs) ||
    runMarginMs < 0 ||
    runMarginMs + batchIntervalMs >= schedulerTimeoutMs
  ) {
    fail(
      'runMarginBeforeTimeout',
      `must be whole milliseconds, less than schedulerTimeout (${schedulerTimeoutMs} ms) minus batchInterval ` +
        `(${batchIntervalMs} ms), got ${runMarginMs} ms` +
        (props.runMarginBeforeTimeout
          ? ''
          : ' (the default, partitionTimeout + 10 s): shorten partitionTimeout'),
    );
  }

  const queueVisibilityTimeout = props.queueVisibilityTimeout ?? Duration.minutes(5);
  const visibilityMs = millis('queueVisibilityTimeout', queueVisibilityTimeout, fail);
  if (visibilityMs < 2 * batchIntervalMs || visibilityMs > 43_200_000 || visibilityMs % 1000 !== 0) {
    fail(
      'queueVisibilityTimeout',
      `must be whole seconds, at least twice the batch interval (${2 * batchIntervalMs} ms) and at most 12 hours, ` +
        `got ${queueVisibilityTimeout.toHumanString()}`,
    );
  }

  for (const key of Object.keys(props.environment ?? {})) {
    if (RESERVED_ENV.includes(key))
      fail('environment', `${key} is set by the construct and cannot be overridden`);
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(key)) fail('environment', `'${key}' is not a valid variable name`);
    if (key.startsWith('AWS_')) fail('environment', `${key}: AWS_* names are reserved by Lambda`);
  }

  const functionsDir = path.resolve(props.functionsDir ?? path.join(HERE, '..', 'functions'));
  for (const name of FUNCTION_ENTRIES) {
    if (!functionEntry(functionsDir, name)) {
      fail(
        'functionsDir',
        `${path.join(functionsDir, `${name}${ENTRY_EXT}`)} does not exist (expected ${FUNCTION_ENTRIES.join(', ')}, ` +
          'as .ts or .js files)',
      );
    }
  }

  return {
    format,
    pipelinePath,
    pipelineName,
    batchIntervalMs,
    partitions,
    prefix,
    retainInputs,
    retainShuffle,
    retainRdds,
    schedulerTimeout,
    runMarginMs,
    schedulerMemorySize,
    partitionTimeout,
    partitionMemorySize,
    taskConcurrency,
    queueVisibilityTimeout,
    maxReceiveCount,
    functionsDir,
    hasAccessLogs: props.serverAccessLogsBucket !== undefined,
  };
}

type Fail = (prop: string, message: string) => never;

function millis(prop: string, duration: Duration, fail: Fail): number {
  if (duration.isUnresolved()) fail(prop, 'must be a concrete duration, not a token');
  return duration.toMilliseconds({ integral: false });
}

function integer(prop: string, value: number, min: number, max: number, fail: Fail): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    fail(prop, `must be a whole number from ${min} to ${max}, got ${value}`);
  }
  return value;
}

function wholeDays(prop: string, duration: Duration, fail: Fail): Duration {
  const days = millis(prop, duration, fail) / 86_400_000;
  if (!Number.isInteger(days) || days < 1) {
    fail(
      prop,
      `must be a whole number of days (S3 lifecycle rules count days), got ${duration.toHumanString()}`,
    );
  }
  return Duration.days(days);
}

/** `<dir>/<name>.ts` or `.js` (the one this file's own extension prefers first), if either exists. */
function functionEntry(dir: string, name: string): string | undefined {
  const exts = FROM_SOURCE ? ['.ts', '.js'] : ['.js', '.ts'];
  return exts.map((ext) => path.join(dir, `${name}${ext}`)).find((file) => existsSync(file));
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function bundlingOptions(pipelinePath: string): nodejs.BundlingOptions {
  return {
    format: nodejs.OutputFormat.ESM,
    target: 'node22',
    mainFields: ['module', 'main'],
    banner: ESM_REQUIRE_BANNER,
    sourceMap: true,
    // Stack traces only need the mappings; the sources themselves would double the zip.
    sourcesContent: false,
    minify: false,
    logLevel: nodejs.LogLevel.WARNING,
    // The AWS SDK is bundled at the versions the lock file pins (S3 conditional writes need a
    // recent one), not taken from whatever the runtime ships.
    bundleAwsSDK: true,
    // msgpackr's optional native accelerator cannot be bundled (a .node addon found at run time);
    // msgpackr falls back to its pure JavaScript codec when it is absent.
    externalModules: ['msgpackr-extract'],
    // The user's pipeline module becomes `sluice-pipeline` for the handlers' import.
    esbuildArgs: { '--alias': [`${PIPELINE_MODULE_ALIAS}=${pipelinePath}`] },
    // Bundle with the local esbuild (a devDependency); there is no Docker here, and never force it.
    forceDockerBundling: false,
  };
}
