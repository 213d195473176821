/**
 * The AWS runner end to end against LocalStack's S3 and SQS: the bundled scheduler handler runs
 * the engine's driver, which polls SQS, writes input blocks to S3, and invokes the bundled
 * partition handler through the real @aws-sdk/client-lambda code path (a local endpoint that
 * speaks Lambda's Invoke API, since LocalStack runs Lambda code only in Docker).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqsProducer } from '../../aws/producer.ts';
import { S3ObjectStore } from '../../aws/s3-object-store.ts';
import { SqsSource } from '../../aws/sqs-source.ts';
import { profileOf } from '../../cli/cost.ts';
import wordCount, { generate } from '../../examples/wordcount.ts';
import { catalog } from '../../shared/core/catalog.ts';
import { readLineage } from '../../shared/core/lineage-store.ts';
import { type BatchManifest, runPipeline, type Source } from '../../shared/index.ts';
import { bundleHandler, importBundle } from './bundle.ts';
import { type LocalLambdaEndpoint, startLocalLambdaEndpoint } from './local-lambda-endpoint.ts';
import { createBucket, createQueue, LOCALSTACK_URL, queueDepth, requireLocalStack } from './localstack.ts';

type Handler = (event: unknown, context?: unknown) => Promise<unknown>;
interface PartitionBundle {
  createPartitionHandler(deps: unknown): Handler;
  partitionDepsFromEnv(env: NodeJS.ProcessEnv): unknown;
}
interface SchedulerBundle {
  createSchedulerHandler(deps: unknown): (event: unknown, ctx: unknown) => Promise<Record<string, unknown>>;
  schedulerDepsFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown>;
}

let partitionBundle: PartitionBundle;
let schedulerBundle: SchedulerBundle;

beforeAll(async () => {
  await requireLocalStack();
  const [p, s] = await Promise.all([
    bundleHandler('partition', 'examples/wordcount.ts'),
    bundleHandler('scheduler', 'examples/wordcount.ts'),
  ]);
  partitionBundle = await importBundle<PartitionBundle>(p);
  schedulerBundle = await importBundle<SchedulerBundle>(s);
});

interface Deployment {
  bucket: string;
  queueUrl: string;
  env: NodeJS.ProcessEnv;
  endpoint: LocalLambdaEndpoint;
  invocations: { n: number; failed: number };
}

const deployments: Deployment[] = [];
afterAll(async () => {
  for (const d of deployments) await d.endpoint.close();
});

/** A bucket, a queue, and the partition function behind a local Lambda endpoint. */
async function deploy(
  options: { failFirstInvocation?: boolean; visibilityTimeout?: number } = {},
): Promise<Deployment> {
  const bucket = await createBucket();
  const queueUrl = await createQueue(undefined, {
    VisibilityTimeout: String(options.visibilityTimeout ?? 30),
  });
  const env: NodeJS.ProcessEnv = {
    SLUICE_BUCKET: bucket,
    SLUICE_PREFIX: 'pipeline',
    SLUICE_BATCH_INTERVAL_MS: '1000',
    SLUICE_PARTITIONS: '2',
    SLUICE_PIPELINE_NAME: 'wordcount-it',
    SLUICE_QUEUE_URL: queueUrl,
    SLUICE_PARTITION_FUNCTION: 'partition',
    SLUICE_TASK_CONCURRENCY: '8',
    SLUICE_RUN_MS_BEFORE_TIMEOUT: '1500',
  };
  const partition = partitionBundle.createPartitionHandler(partitionBundle.partitionDepsFromEnv(env));
  const invocations = { n: 0, failed: 0 };
  const endpoint = await startLocalLambdaEndpoint({
    functions: {
      partition: async (event: unknown) => {
        invocations.n++;
        if (options.failFirstInvocation && invocations.failed === 0) {
          invocations.failed++;
          throw new Error('injected: the first partition invocation fails');
        }
        return partition(event);
      },
    },
  });
  const d = { bucket, queueUrl, env, endpoint, invocations };
  deployments.push(d);
  return d;
}

/** Runs the bundled scheduler handler as Lambda would, for about `runMs`. */
async function runScheduler(d: Deployment, runMs: number, overrides: Record<string, unknown> = {}) {
  process.env.AWS_ENDPOINT_URL_LAMBDA = d.endpoint.url;
  const deps = { ...schedulerBundle.schedulerDepsFromEnv(d.env), ...overrides };
  const handler = schedulerBundle.createSchedulerHandler(deps);
  const deadline = Date.now() + runMs;
  return handler(
    { source: 'aws.events', 'detail-type': 'Scheduled Event' },
    {
      awsRequestId: `it-${Date.now()}`,
      getRemainingTimeInMillis: () => deadline - Date.now(),
    },
  );
}

async function committedManifests(store: S3ObjectStore): Promise<BatchManifest[]> {
  const keys = await store.list('manifests/');
  return Promise.all(
    keys.map(async (k) => JSON.parse(Buffer.from((await store.get(k))!).toString()) as BatchManifest),
  );
}

/** Sums the per-batch word counts saved under outputs/wordcount-<t>.jsonl/ of a store. */
async function totalCounts(store: {
  list(prefix: string): Promise<string[]>;
  get(key: string): Promise<Uint8Array | undefined>;
}): Promise<Map<string, number>> {
  const totals = new Map<string, number>();
  for (const key of await store.list('outputs/')) {
    if (!key.endsWith('.jsonl')) continue;
    for (const line of Buffer.from((await store.get(key))!)
      .toString()
      .split('\n')) {
      if (!line) continue;
      const [word, n] = JSON.parse(line) as [string, number];
      totals.set(word, (totals.get(word) ?? 0) + n);
    }
  }
  return totals;
}

/** What the embedded runner computes over the same events, summed over its batches. */
async function referenceCounts(lines: string[]): Promise<Map<string, number>> {
  const { store } = await runPipeline(wordCount, { input: [lines.slice(0, 100), lines.slice(100)] });
  return totalCounts(store);
}

function phaseTable(manifests: BatchManifest[]): string {
  const rows = manifests
    .filter((m) => m.input.records > 0)
    .map((m) => {
      const p = m.phases;
      return `  ${m.batchTimeMs}  in=${String(m.input.records).padStart(4)}  poll=${p.receive ?? 0}ms writeInput=${p.writeInput ?? 0}ms tasks=${p.tasks ?? 0}ms outputs=${p.outputs ?? 0}ms commit=${p.commit ?? 0}ms  processing=${m.processingMs}ms  S3 get/put/list/delete=${m.requests.get}/${m.requests.put}/${m.requests.list}/${m.requests.delete}`;
    });
  return rows.join('\n');
}

describe('the AWS runner on LocalStack', () => {
  it('turns events sent to SQS into the same results in S3 as the embedded runner', async () => {
    const d = await deploy();
    const lines = Array.from({ length: 300 }, (_, i) => generate(i));
    const producer = new SqsProducer({ queueUrl: d.queueUrl, maxEventsPerMessage: 25 });
    await producer.send(lines);
    const result = await runScheduler(d, 9_000);
    expect(result.status).toBe('handed-over');
    const store = new S3ObjectStore({ bucket: d.bucket, prefix: 'pipeline' });
    const manifests = await committedManifests(store);
    // several batches committed: batches with data by a manifest, empty ones inside idle spans
    // (issue 11's fast path: no manifest, no task), which every reader counts as committed
    expect((await catalog.committed(store)).length).toBeGreaterThanOrEqual(3);
    expect(manifests.length).toBeGreaterThanOrEqual(1);
    expect(manifests.reduce((n, m) => n + m.input.records, 0)).toBe(lines.length);
    expect(await totalCounts(store)).toEqual(await referenceCounts(lines));
    expect((await queueDepth(d.queueUrl)).visible + (await queueDepth(d.queueUrl)).inFlight).toBe(0);
    // issue 11: batches this small run inside the scheduler function, no partition invoked (the
    // cost model's invocations say the same), at most 8 PUTs each
    expect(d.invocations.n).toBe(manifests.reduce((n, m) => n + profileOf(m).invocations, 0));
    expect(d.invocations.n).toBe(0);
    for (const m of manifests) if (m.input.records > 0) expect(m.requests.put).toBeLessThanOrEqual(8);
    // every stored partition still kept carries its lineage (retention may already have dropped
    // some), none beside it; the saved outputs' lineage is in the manifests
    const rdd = await store.list('rdd/');
    expect(rdd.filter((k) => k.endsWith('.lineage.json'))).toEqual([]);
    for (const k of rdd) expect(await readLineage(store, k)).toMatchObject({ key: k });
    expect(manifests.some((m) => (m.outputLineage ?? []).length > 0)).toBe(true);
    expect(await store.list('lineage/')).toEqual([]);
    console.log(`LocalStack phases per batch (wall clock, 1 s interval):\n${phaseTable(manifests)}`);
  });

  it('retries a partition task that fails once, with the same results', async () => {
    const d = await deploy({ failFirstInvocation: true });
    const lines = Array.from({ length: 120 }, (_, i) => generate(1000 + i));
    await new SqsProducer({ queueUrl: d.queueUrl }).send(lines);
    await runScheduler(d, 6_000, { tinyBatch: false }); // the partition function is the subject
    const store = new S3ObjectStore({ bucket: d.bucket, prefix: 'pipeline' });
    const manifests = await committedManifests(store);
    expect(d.invocations.failed).toBe(1);
    expect(manifests.reduce((n, m) => n + m.tasks.retries, 0)).toBe(1);
    expect(await totalCounts(store)).toEqual(await referenceCounts(lines));
  });

  it('does not count a redelivered message twice', async () => {
    const d = await deploy({ visibilityTimeout: 2 });
    const lines = Array.from({ length: 50 }, (_, i) => generate(5000 + i));
    await new SqsProducer({ queueUrl: d.queueUrl }).send(lines);
    // The first batches "lose" their acknowledgements (as if the deletes never reached SQS), so
    // SQS delivers the same messages again once their visibility timeout of 2 s has passed.
    const sqs = new SqsSource({ queueUrl: d.queueUrl });
    let dropAcks = true;
    let redelivered = 0;
    const forgetful: Source<unknown> = {
      polls: true,
      start: () => sqs.start(),
      receive: async (r) => {
        const batch = await sqs.receive(r);
        redelivered += sqs.receiveStats()?.redelivered ?? 0;
        return batch;
      },
      ack: async (token) => {
        if (!dropAcks) return sqs.ack(token);
      },
      describe: () => 'sqs with lost acks',
    };
    setTimeout(() => {
      dropAcks = false;
    }, 1_500);
    await runScheduler(d, 9_000, { source: forgetful });
    const store = new S3ObjectStore({ bucket: d.bucket, prefix: 'pipeline' });
    const manifests = await committedManifests(store);
    expect(redelivered).toBeGreaterThan(0);
    expect(manifests.reduce((n, m) => n + m.input.records, 0)).toBe(lines.length);
    expect(await totalCounts(store)).toEqual(await referenceCounts(lines));
    const depth = await queueDepth(d.queueUrl);
    expect(depth.visible + depth.inFlight).toBe(0);
  });

  it('hands over: a second scheduler waits for the lease, then resumes after the last batch', async () => {
    const d = await deploy();
    const first = runScheduler(d, 4_000);
    await new Promise((r) => setTimeout(r, 500));
    const second = await runScheduler(d, 2_000);
    expect(second.status).toBe('lease-held');
    const done = await first;
    expect(done.status).toBe('handed-over');
    const lines = Array.from({ length: 40 }, (_, i) => generate(9000 + i));
    await new SqsProducer({ queueUrl: d.queueUrl }).send(lines);
    const third = await runScheduler(d, 4_000);
    expect(third.status).toBe('handed-over');
    const store = new S3ObjectStore({ bucket: d.bucket, prefix: 'pipeline' });
    const times = (await committedManifests(store)).map((m) => m.batchTimeMs);
    // consecutive batch times across the hand-over: no batch skipped, none twice
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(1000);
    expect(await totalCounts(store)).toEqual(await referenceCounts(lines));
  });
});

void LOCALSTACK_URL;
