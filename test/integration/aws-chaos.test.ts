/**
 * A few fault schedules on the AWS runner against LocalStack (the full randomized suite runs on
 * the embedded runner, test/unit/chaos.test.ts): failed and slow partition tasks, and stored
 * window partitions deleted or corrupted in S3 between batches. The committed outputs must equal
 * a fault-free run of the same batches.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqsProducer } from '../../aws/producer.ts';
import { S3ObjectStore } from '../../aws/s3-object-store.ts';
import pageviews, { generate } from '../../examples/pageviews.ts';
import { decodeBlock, type FaultOptions, runPipeline } from '../../shared/engine.ts';
import { batchDirOf } from '../output-keys.ts';
import { bundleHandler, importBundle } from './bundle.ts';
import { type LocalLambdaEndpoint, startLocalLambdaEndpoint } from './local-lambda-endpoint.ts';
import { createBucket, createQueue, requireLocalStack } from './localstack.ts';

type Handler = (event: unknown, context?: unknown) => Promise<unknown>;
let partitionBundle: {
  createPartitionHandler(d: unknown): Handler;
  partitionDepsFromEnv(e: NodeJS.ProcessEnv): unknown;
};
let schedulerBundle: {
  createSchedulerHandler(d: unknown): (e: unknown, c: unknown) => Promise<Record<string, unknown>>;
  schedulerDepsFromEnv(e: NodeJS.ProcessEnv): Record<string, unknown>;
};
const endpoints: LocalLambdaEndpoint[] = [];

beforeAll(async () => {
  await requireLocalStack();
  partitionBundle = await importBundle(await bundleHandler('partition', 'examples/pageviews.ts'));
  schedulerBundle = await importBundle(await bundleHandler('scheduler', 'examples/pageviews.ts'));
});
afterAll(async () => {
  for (const e of endpoints) await e.close();
});

/** The saved outputs of a store, one sorted list of lines per batch, in time order. */
async function outputsByBatch(store: {
  list(p: string): Promise<string[]>;
  get(k: string): Promise<Uint8Array | undefined>;
}) {
  const byDir = new Map<string, string[]>();
  for (const key of await store.list('outputs/')) {
    if (!key.endsWith('.jsonl') || key.endsWith('.lineage.json')) continue;
    const dir = batchDirOf(key);
    const lines = Buffer.from((await store.get(key))!)
      .toString()
      .split('\n')
      .filter(Boolean);
    byDir.set(dir, [...(byDir.get(dir) ?? []), ...lines]);
  }
  const time = (dir: string) => Number(/-(\d+)\.jsonl$/.exec(dir)?.[1]);
  return [...byDir.entries()].sort((a, b) => time(a[0]) - time(b[0])).map(([, lines]) => lines.sort());
}

describe.each([
  { seed: 31, failTasks: 0.3, slowTasks: 0.2, slowFactor: 3, deletePartitions: 0.3 },
  { seed: 47, failTasks: 0.2, corruptBlocks: 0.3, deletePartitions: 0.2 },
] satisfies FaultOptions[])('the AWS runner under faults %o', (faults) => {
  it('commits the same outputs as a fault-free run of the same batches', async () => {
    const bucket = await createBucket();
    const queueUrl = await createQueue();
    const env: NodeJS.ProcessEnv = {
      SLUICE_BUCKET: bucket,
      SLUICE_BATCH_INTERVAL_MS: '1000',
      SLUICE_PARTITIONS: '2',
      SLUICE_QUEUE_URL: queueUrl,
      SLUICE_PARTITION_FUNCTION: 'partition',
      SLUICE_RUN_MS_BEFORE_TIMEOUT: '1500',
      SLUICE_FAULTS: JSON.stringify(faults),
    };
    const partition = partitionBundle.createPartitionHandler(partitionBundle.partitionDepsFromEnv(env));
    const endpoint = await startLocalLambdaEndpoint({ functions: { partition } });
    endpoints.push(endpoint);
    process.env.AWS_ENDPOINT_URL_LAMBDA = endpoint.url;
    const producer = new SqsProducer({ queueUrl });
    const sending = (async () => {
      for (let i = 0; i < 6; i++) {
        await producer.send(Array.from({ length: 30 }, (_, j) => generate(i * 30 + j)));
        await new Promise((r) => setTimeout(r, 900));
      }
    })();
    const handler = schedulerBundle.createSchedulerHandler(schedulerBundle.schedulerDepsFromEnv(env));
    const deadline = Date.now() + 12_000;
    const result = await handler(
      {},
      { awsRequestId: `chaos-${faults.seed}`, getRemainingTimeInMillis: () => deadline - Date.now() },
    );
    await sending;
    expect(result.status).toBe('handed-over');

    // the batches as the AWS run closed them, replayed fault-free on the embedded runner
    const store = new S3ObjectStore({ bucket });
    const manifests = (await store.list('manifests/')).sort();
    const batches: string[][] = [];
    for (const key of manifests) {
      const t = key.slice('manifests/'.length, -'.json'.length);
      const records: string[] = [];
      for (let p = 0; p < 2; p++)
        records.push(...decodeBlock<string>((await store.get(`inputs/${t}/input/${p}.blk`))!));
      batches.push(records);
    }
    expect(batches.flat().length).toBeGreaterThan(0);
    const reference = await runPipeline(pageviews, { input: batches }, { numBatches: batches.length });
    expect(await outputsByBatch(store)).toEqual(await outputsByBatch(reference.store));
    const m = await Promise.all(
      manifests.map(async (k) => JSON.parse(Buffer.from((await store.get(k))!).toString())),
    );
    const retries = m.reduce((n, x) => n + x.tasks.retries + x.tasks.speculative, 0);
    const recomputed = m.reduce((n, x) => n + x.tasks.recomputed, 0);
    expect(retries).toBeGreaterThan(0);
    console.log(
      `AWS chaos seed ${faults.seed}: ${manifests.length} batches, ${retries} retries/copies, ${recomputed} partitions recomputed`,
    );
  });
});
