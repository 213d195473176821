/**
 * The sleeping scheduler on LocalStack's S3 and SQS (issue 11, item 2): the bundled scheduler
 * handler, driven in-process as aws-runner.test.ts does, goes to sleep after `idleAfter`; a
 * sleeping tick asks the queue first (one GetQueueAttributes) and returns with no lease and no S3
 * request; messages wake it (the next tick, or a producer's nudge: an asynchronous invoke through
 * the Lambda API), and the woken scheduler commits the batches it slept through as an idle span
 * and counts exactly. Everything is asserted through request counters, not timing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLambdaClient } from '../../aws/clients.ts';
import { SqsProducer } from '../../aws/producer.ts';
import { S3ObjectStore } from '../../aws/s3-object-store.ts';
import { SqsSource } from '../../aws/sqs-source.ts';
import wordCount, { generate } from '../../examples/wordcount.ts';
import { SleepMemory } from '../../functions/lib/sleep.ts';
import { catalog } from '../../shared/core/catalog.ts';
import { CountingObjectStore, type RequestCounts } from '../../shared/core/counting-store.ts';
import { layout } from '../../shared/core/layout.ts';
import { type BatchManifest, listIdleSpans, runPipeline, type Source } from '../../shared/index.ts';
import { bundleHandler, importBundle } from './bundle.ts';
import { type LocalLambdaEndpoint, startLocalLambdaEndpoint } from './local-lambda-endpoint.ts';
import { createBucket, createQueue, queueDepth, requireLocalStack, uniqueName } from './localstack.ts';

type Handler = (event: unknown, context?: unknown) => Promise<unknown>;
type Result = Record<string, unknown>;
interface PartitionBundle {
  createPartitionHandler(deps: unknown): Handler;
  partitionDepsFromEnv(env: NodeJS.ProcessEnv): unknown;
}
interface SchedulerBundle {
  createSchedulerHandler(deps: unknown): (event: unknown, ctx: unknown) => Promise<Result>;
  schedulerDepsFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown>;
}

let partitionBundle: PartitionBundle;
let schedulerBundle: SchedulerBundle;
let endpoint: LocalLambdaEndpoint | undefined;

beforeAll(async () => {
  await requireLocalStack();
  const [p, s] = await Promise.all([
    bundleHandler('partition', 'examples/wordcount.ts'),
    bundleHandler('scheduler', 'examples/wordcount.ts'),
  ]);
  partitionBundle = await importBundle<PartitionBundle>(p);
  schedulerBundle = await importBundle<SchedulerBundle>(s);
});
afterAll(async () => {
  await endpoint?.close();
});

const TICK = { source: 'aws.events', 'detail-type': 'Scheduled Event' };
const PREFIX = 'pipeline';
const SCHEDULER = uniqueName('sluice-sleep-scheduler');

/** What one invocation asked of S3 (through the store), of SQS's queue depth and of the source. */
interface Asked {
  s3: RequestCounts;
  depth: number;
  receives: number;
}

function counting(queueUrl: string) {
  const asked: Asked = {
    s3: { get: 0, put: 0, list: 0, delete: 0, bytesRead: 0, bytesWritten: 0 },
    depth: 0,
    receives: 0,
  };
  const store = new CountingObjectStore(new S3ObjectStore({ bucket: bucketName, prefix: PREFIX }));
  const sqs = new SqsSource({ queueUrl });
  const source: Source<unknown> = {
    polls: true,
    start: () => sqs.start(),
    receive: (r) => {
      asked.receives++;
      return sqs.receive(r);
    },
    ack: (token) => sqs.ack(token),
    describe: () => 'counted sqs',
  };
  const depthOf = async () => {
    asked.depth++; // one GetQueueAttributes, as the handler's own
    const d = await queueDepth(queueUrl);
    return d.visible + d.inFlight;
  };
  return {
    asked,
    store,
    source,
    depthOf,
    done: (): Asked => {
      Object.assign(asked.s3, store.snapshot());
      return asked;
    },
  };
}

let bucketName = '';

describe('the sleeping scheduler on LocalStack (issue 11)', () => {
  it('sleeps after idleAfter; a sleeping tick is one GetQueueAttributes; messages or a nudge wake it and it counts exactly', async () => {
    bucketName = await createBucket();
    const queueUrl = await createQueue();
    const env: NodeJS.ProcessEnv = {
      SLUICE_BUCKET: bucketName,
      SLUICE_PREFIX: PREFIX,
      SLUICE_BATCH_INTERVAL_MS: '1000',
      SLUICE_PARTITIONS: '2',
      SLUICE_PIPELINE_NAME: 'sleep-it',
      SLUICE_QUEUE_URL: queueUrl,
      SLUICE_PARTITION_FUNCTION: 'partition',
      SLUICE_TASK_CONCURRENCY: '8',
      SLUICE_RUN_MS_BEFORE_TIMEOUT: '1500',
      SLUICE_IDLE_AFTER_MS: '2000',
    };
    const partition = partitionBundle.createPartitionHandler(partitionBundle.partitionDepsFromEnv(env));
    // one container's memory, and a cold one per "new container"
    const warm = new SleepMemory();
    const invoke = (event: unknown, runMs: number, memory: SleepMemory) => {
      const c = counting(queueUrl);
      const handler = schedulerBundle.createSchedulerHandler({
        ...schedulerBundle.schedulerDepsFromEnv(env),
        store: c.store,
        source: c.source,
        queueDepth: c.depthOf,
        functionName: SCHEDULER,
        sleepMemory: memory,
      });
      const deadline = Date.now() + runMs;
      const result = handler(event, {
        awsRequestId: `it-${Date.now()}`,
        getRemainingTimeInMillis: () => deadline - Date.now(),
      });
      return result.then((r) => ({ result: r, asked: c.done() }));
    };
    const nudged: Promise<{ result: Result; asked: Asked }>[] = [];
    endpoint = await startLocalLambdaEndpoint({
      functions: {
        partition: (event: unknown) => partition(event),
        [SCHEDULER]: (event: unknown) => {
          const run = invoke(event, 12_000, new SleepMemory());
          nudged.push(run);
          return run.then((r) => r.result);
        },
      },
    });
    process.env.AWS_ENDPOINT_URL_LAMBDA = endpoint.url;
    const store = new S3ObjectStore({ bucket: bucketName, prefix: PREFIX });
    const marker = async () => {
      const bytes = await store.get('meta/asleep.json');
      return bytes ? (JSON.parse(Buffer.from(bytes).toString()) as Record<string, unknown>) : undefined;
    };

    // a nudge while the pipeline is awake (no marker): one GET, no lease, no SQS request
    const awake = await invoke({ sluice: 'nudge' }, 5_000, new SleepMemory());
    expect(awake.result).toEqual({ status: 'awake', reason: 'nudge' });
    expect(awake.asked).toMatchObject({ depth: 0, receives: 0, s3: { get: 1, put: 0, list: 0, delete: 0 } });

    // 1. data, then idle for idleAfter: the scheduler commits and goes to sleep
    const first = Array.from({ length: 60 }, (_, i) => generate(i));
    await new SqsProducer({ queueUrl, nudge: false }).send(first);
    const run1 = await invoke(TICK, 15_000, warm);
    expect(run1.result).toMatchObject({ status: 'asleep', reason: 'idle' });
    expect(await marker()).toMatchObject({ functionName: SCHEDULER, wakeAtMs: null });

    // 2. sleeping ticks: the queue first, and nothing else
    const cold = await invoke(TICK, 5_000, new SleepMemory());
    expect(cold.result).toEqual({ status: 'asleep', reason: 'marker' });
    // a container that knows nothing reads the marker once (no lease, no list, no write)
    expect(cold.asked).toMatchObject({ depth: 1, receives: 0, s3: { get: 1, put: 0, list: 0, delete: 0 } });
    for (let i = 0; i < 3; i++) {
      const tick = await invoke(TICK, 5_000, warm);
      expect(tick.result).toEqual({ status: 'asleep', reason: 'remembered' });
      // one GetQueueAttributes, no lease, no S3 request at all
      expect(tick.asked).toMatchObject({ depth: 1, receives: 0, s3: { get: 0, put: 0, list: 0, delete: 0 } });
    }

    // 3. messages arrive; the next tick (a cold container) wakes, commits the slept batches as
    // an idle span without polling for them, runs the new data and sleeps again
    const lastBeforeSleep = (await catalog.committed(store)).at(-1)!;
    await new Promise((r) => setTimeout(r, 4_000)); // asleep for a few batch intervals
    const second = Array.from({ length: 40 }, (_, i) => generate(1000 + i));
    await new SqsProducer({ queueUrl, nudge: false }).send(second);
    const run2 = await invoke(TICK, 15_000, new SleepMemory());
    expect(run2.result).toMatchObject({ status: 'asleep', reason: 'idle' });
    // the first batch it slept through is committed in an idle span (no manifest, no input)
    const slept = lastBeforeSleep + 1000;
    expect((await listIdleSpans(store)).some((s) => s.fromMs <= slept && s.toMs >= slept)).toBe(true);
    expect(await store.get(layout.manifest(slept))).toBeUndefined();
    // it ran the messages it woke for before sleeping again
    const records = async () => (await manifestsOf(store)).reduce((n, m) => n + m.input.records, 0);
    expect(await records()).toBe(first.length + second.length);
    // it polled only for the batches after it woke, not for each one it slept through
    const committedByRun2 = (await catalog.committed(store)).filter((t) => t > lastBeforeSleep).length;
    expect(run2.asked.receives).toBeLessThan(committedByRun2);

    // 4. a producer's nudge: it sees the marker and invokes the scheduler asynchronously
    const third = Array.from({ length: 30 }, (_, i) => generate(2000 + i));
    const producer = new SqsProducer({
      queueUrl,
      nudge: { bucket: bucketName, prefix: PREFIX, lambda: createLambdaClient({ endpoint: endpoint.url }) },
    });
    const sent = await producer.send(third);
    expect(sent.nudge).toEqual({ asleep: true, nudged: SCHEDULER });
    // a second send right after makes no request for the nudge (checked at most every 10 s)
    expect((await producer.send([generate(3000)])).nudge).toBeUndefined();
    expect(nudged.length).toBe(1);
    const woken = await nudged[0]!;
    expect(woken.result).toMatchObject({ status: 'asleep', reason: 'idle' });
    expect(await marker()).toBeDefined();

    // exactly once: every interval from the first batch to the last committed once, every
    // event counted once, the same counts as the embedded runner
    const committed = await catalog.committed(store);
    for (let i = 1; i < committed.length; i++) expect(committed[i]! - committed[i - 1]!).toBe(1000);
    const manifests = await manifestsOf(store);
    const all = [...first, ...second, ...third, generate(3000)];
    expect(manifests.reduce((n, m) => n + m.input.records, 0)).toBe(all.length);
    expect(await totalCounts(store)).toEqual(await referenceCounts(all));
    const depth = await queueDepth(queueUrl);
    expect(depth.visible + depth.inFlight).toBe(0);
  });
});

async function manifestsOf(store: S3ObjectStore): Promise<BatchManifest[]> {
  return Promise.all(
    (await store.list('manifests/')).map(
      async (k) => JSON.parse(Buffer.from((await store.get(k))!).toString()) as BatchManifest,
    ),
  );
}

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
  return new Map([...totals].sort());
}

async function referenceCounts(lines: string[]): Promise<Map<string, number>> {
  const { store } = await runPipeline(wordCount, { input: [lines] });
  return totalCounts(store);
}
