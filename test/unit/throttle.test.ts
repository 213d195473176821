/**
 * Throttling is not failure (issue 8): a refused invocation is retried with backoff and jitter
 * without using up the task's failure attempts; the invoker concurrency adapts (AIMD); a batch that
 * failed transiently is run again by the same driver; the scheduler Lambda returns on a transient
 * failure; the S3 client retries SlowDown; `sluice run --faults throttleTasks=0.6` is exact.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { describe, expect, it, vi } from 'vitest';
import { createS3Client } from '../../aws/clients.ts';
import { LambdaThrottledError } from '../../aws/errors.ts';
import { LambdaInvoker } from '../../aws/lambda-invoker.ts';
import { S3ObjectStore } from '../../aws/s3-object-store.ts';
import { AdaptiveLimiter } from '../../shared/core/adaptive-limiter.ts';
import { BatchRetriesExhaustedError, isTransientFailure } from '../../shared/core/driver/batch-retry.ts';
import { FaultyObjectStore, StoreTimeoutError } from '../../shared/core/driver/faulty-store.ts';
import { FaultInjector } from '../../shared/core/faults.ts';
import type { TaskResult, TaskSpec } from '../../shared/core/task.ts';
import { TaskRunner } from '../../shared/core/task-runner.ts';
import {
  BatchFailedError,
  errorFromJson,
  errorToJson,
  isThrottle,
  SluiceError,
  ThrottledError,
} from '../../shared/errors.ts';
import {
  arraySource,
  BatchScheduler,
  InProcessInvoker,
  MemoryObjectStore,
  StreamingContext,
} from '../../shared/index.ts';
import type { Invoker } from '../../shared/ports/invoker.ts';
import { inProcessScheduler } from '../../shared/testing.ts';
import { batchDirOf } from '../output-keys.ts';

vi.mock('sluice-pipeline', () => ({ default: () => {} }));

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tick = () => new Promise((r) => setTimeout(r, 0));

function result(spec: TaskSpec): TaskResult {
  return {
    committed: true,
    lineage: { partition: spec.partition } as unknown as TaskResult['lineage'],
    metrics: {} as TaskResult['metrics'],
  };
}

function base(partition: number): Omit<TaskSpec, 'attempt'> {
  return {
    graph: { batchIntervalMs: 1000, zeroTimeMs: 0, defaultPartitions: 2, fingerprint: 'fp' },
    batchTimeMs: 1000,
    stageId: 0,
    partition,
    rddId: 1,
    name: 'r',
    operators: [],
    inputs: [],
    output: { kind: 'shuffle' },
    commitKey: `k${partition}`,
  } as unknown as Omit<TaskSpec, 'attempt'>;
}

function runner(invoker: Invoker, maxTaskAttempts = 2) {
  const events: Record<string, unknown>[] = [];
  const r = new TaskRunner({
    invoker,
    maxTaskAttempts,
    taskTimeoutMs: 5_000,
    retryBackoffMs: 1,
    throttleBackoffCapMs: 4,
    speculation: { enabled: false },
    recover: async () => false,
    log: (e) => events.push(e),
  });
  return { r, events };
}

describe('AdaptiveLimiter (AIMD)', () => {
  it('halves on a throttle, once per burst, and climbs back additively to the maximum', async () => {
    const limiter = new AdaptiveLimiter({ max: 8 });
    expect(limiter.limit).toBe(8);
    // a burst: 4 invocations in flight all throttled -> one decrease, not four
    const refused = Array.from({ length: 4 }, () =>
      limiter.run(async () => {
        await tick();
        throw new ThrottledError('busy');
      }),
    );
    await Promise.allSettled(refused);
    expect(limiter.limit).toBe(4);
    expect(limiter.stats).toMatchObject({ throttles: 4, decreases: 1 });
    // a throttle of an invocation started after the decrease lowers it again
    await limiter.run(async () => Promise.reject(new ThrottledError('busy'))).catch(() => {});
    expect(limiter.limit).toBe(2);
    // successes: +1/limit each, so one slot per round of `limit` successes
    for (let i = 0; i < 2; i++) await limiter.run(async () => 1);
    expect(limiter.limit).toBe(3);
    for (let i = 0; i < 100; i++) await limiter.run(async () => 1);
    expect(limiter.limit).toBe(8);
    // an ordinary failure does not change the limit
    await limiter.run(async () => Promise.reject(new Error('bug'))).catch(() => {});
    expect(limiter.limit).toBe(8);
  });

  it('never lets more than the current limit run, and never goes below min', async () => {
    const limiter = new AdaptiveLimiter({ max: 4, min: 2 });
    for (let i = 0; i < 3; i++)
      await limiter.run(async () => Promise.reject(new ThrottledError('busy'))).catch(() => {});
    expect(limiter.limit).toBe(2);
    let running = 0;
    const over: number[] = [];
    const starts: number[] = [];
    const stop = limiter.watch();
    await Promise.all(
      Array.from({ length: 12 }, () =>
        limiter.run(async () => {
          running++;
          starts.push(running);
          if (running > limiter.limit) over.push(running);
          await tick();
          running--;
        }),
      ),
    );
    expect(over).toEqual([]);
    expect(starts.slice(0, 2)).toEqual([1, 2]); // the first round runs 2 at once, not 4
    expect(Math.max(...starts)).toBeGreaterThan(2); // successes raised the limit
    expect(stop()).toEqual({ min: 2, max: 4 });
  });
});

describe('TaskRunner: throttling is not failure', () => {
  it('a task throttled 5 times then run succeeds with its failure attempts unused', async () => {
    const seen: number[] = [];
    let calls = 0;
    const invoker: Invoker = {
      concurrency: 4,
      invoke: async (spec) => {
        seen.push(spec.attempt);
        if (++calls <= 5) throw new ThrottledError('429');
        return result(spec);
      },
      close: async () => {},
      describe: () => 'throttling',
    };
    const { r } = runner(invoker, 2);
    const outcome = await r.runStage([base(0)]);
    expect(outcome.results).toHaveLength(1);
    expect(outcome.throttled).toBe(5);
    expect(outcome.attempts).toBe(1);
    expect(outcome.retries).toBe(0);
    expect(seen).toEqual([0, 0, 0, 0, 0, 0]); // the same attempt, tried again
    expect(outcome.concurrency.min).toBeLessThan(4);
  });

  it('the same number of ordinary failures uses up the attempts and fails the batch', async () => {
    let calls = 0;
    const invoker: Invoker = {
      concurrency: 4,
      invoke: async (spec) => {
        if (++calls <= 5) throw new SluiceError('flaky', { retryable: true });
        return result(spec);
      },
      close: async () => {},
      describe: () => 'failing',
    };
    const { r } = runner(invoker, 2);
    await expect(r.runStage([base(0)])).rejects.toThrow(/failed 2 times \(maxTaskAttempts 2\)/);
  });

  it('a throttle keeps its kind across a worker boundary; an AWS throttle is one too', () => {
    const back = errorFromJson(errorToJson(new ThrottledError('busy')));
    expect(isThrottle(back)).toBe(true);
    expect(isThrottle(new LambdaThrottledError('fn', 3))).toBe(true);
    expect(isThrottle(new SluiceError('x', { retryable: true }))).toBe(false);
  });
});

describe('LambdaInvoker: 409 busy and 429 are throttles', () => {
  function fakeClient(answers: (() => unknown)[]) {
    let i = 0;
    return {
      calls: () => i,
      client: {
        send: async () => {
          const answer = answers[Math.min(i++, answers.length - 1)]!;
          return answer();
        },
        destroy: () => {},
      } as unknown as LambdaClient,
    };
  }
  const busy = () => {
    throw Object.assign(new Error('busy'), {
      name: 'ResourceConflictException',
      $metadata: { httpStatusCode: 409 },
    });
  };
  const ok = () => ({
    Payload: new TextEncoder().encode(JSON.stringify(result({ partition: 1 } as TaskSpec))),
  });

  it('retries a busy executor and succeeds', async () => {
    const fake = fakeClient([busy, busy, ok]);
    const inv = new LambdaInvoker({ functionName: 'p', client: fake.client });
    const r = await inv.invoke({ ...base(1), attempt: 0 } as TaskSpec, { timeoutMs: 10_000 });
    expect(r.committed).toBe(true);
    expect(inv.invocationStats().throttled).toBe(2);
    await inv.close();
  });

  it('a persistently busy executor ends as a retryable throttle, not a failure', async () => {
    const fake = fakeClient([busy]);
    const inv = new LambdaInvoker({ functionName: 'p', client: fake.client, throttleRetries: 2 });
    const err = await inv
      .invoke({ ...base(1), attempt: 0 } as TaskSpec, { timeoutMs: 10_000 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(LambdaThrottledError);
    expect(isThrottle(err)).toBe(true);
    expect(fake.calls()).toBe(3);
    await inv.close();
  });
});

describe('faults: throttleTasks and slowStore', () => {
  it('throttleTasks refuses retries too, deterministically per seed, task, attempt and try', () => {
    const a = new FaultInjector({ seed: 5, throttleTasks: 0.6 });
    const b = new FaultInjector({ seed: 5, throttleTasks: 0.6 });
    const decisions = (f: FaultInjector) =>
      Array.from({ length: 200 }, (_, i) => f.throttles(1000, 0, i % 4, i % 3, Math.floor(i / 12)));
    const da = decisions(a);
    expect(decisions(b)).toEqual(da);
    const share = da.filter(Boolean).length / da.length;
    expect(share).toBeGreaterThan(0.45);
    expect(share).toBeLessThan(0.75);
    // later attempts and later tries are refused too
    expect(da.some((d, i) => d && i % 3 > 0)).toBe(true);
    expect(da.some((d, i) => d && i >= 12)).toBe(true);
  });

  it('slowStore times a request out only on its first try; the retry reaches the store', async () => {
    const faults = new FaultInjector({ seed: 1, slowStore: 1, slowStoreMs: 0 });
    const inner = new MemoryObjectStore();
    const store = new FaultyObjectStore(inner, faults);
    let timedOut: string | undefined;
    for (let i = 0; i < 50 && !timedOut; i++) {
      const key = `k${i}`;
      const err = await store.put(key, new Uint8Array([1])).catch((e) => e);
      if (err) {
        expect(err).toBeInstanceOf(StoreTimeoutError);
        expect(err.retryable).toBe(true);
        expect(await inner.get(key)).toBeUndefined(); // never reached the store
        await store.put(key, new Uint8Array([1]));
        expect(await inner.get(key)).toEqual(new Uint8Array([1]));
        timedOut = key;
      }
    }
    expect(timedOut).toBeDefined();
    expect(faults.counts.storeTimeouts).toBe(1);
  });
});

function wordCount(ctx: StreamingContext) {
  ctx
    .inputStream<string>()
    .flatMap((l) => l.split(' '))
    .map((w): [string, number] => [w, 1])
    .reduceByKey((a, b) => a + b)
    .saveAsJsonLines('counts');
}
const input = [['a b', 'b c'], ['c c a'], ['a'], ['b b b']];

async function saved(store: MemoryObjectStore): Promise<string[]> {
  const out: string[] = [];
  for (const key of (await store.list('outputs/')).filter((k) => /part-\d+\.jsonl$/.test(k)).sort())
    out.push(`${batchDirOf(key)}: ${new TextDecoder().decode(await store.get(key))}`);
  return out;
}

function flaky(store: MemoryObjectStore, fail: (spec: TaskSpec) => Error | undefined) {
  const ctx = new StreamingContext({ batchIntervalMs: 1000, partitions: 2, printer: () => {} });
  wordCount(ctx);
  const events: Record<string, unknown>[] = [];
  let calls = 0;
  const holder: { s?: BatchScheduler } = {};
  const inner = new InProcessInvoker({ pipeline: () => holder.s!.pipeline, store });
  const invoker: Invoker = {
    concurrency: 2,
    invoke: async (spec, o) => {
      calls++;
      const err = fail(spec);
      if (err) throw err;
      return inner.invoke(spec, o);
    },
    close: async () => {},
    describe: () => 'flaky',
  };
  holder.s = new BatchScheduler(ctx, {
    store,
    invoker,
    sources: { input: arraySource(input) },
    clock: 'manual',
    zeroTimeMs: 0,
    lease: false,
    retryBackoffMs: 1,
    maxTaskAttempts: 2,
    batchRetry: { attempts: 3, backoffMs: 2 },
    log: (e) => events.push(e),
    tinyBatch: false, // the invoker's failures are the subject: no batch runs in the driver (issue 11)
  });
  return { scheduler: holder.s, events, calls: () => calls };
}

describe('driver: a failed batch is retried by the same driver', () => {
  it('re-runs a batch that failed transiently and commits every batch with exact outputs', async () => {
    const reference = new MemoryObjectStore();
    await flaky(reference, () => undefined).scheduler.run({ numBatches: 4 });
    const store = new MemoryObjectStore();
    let failures = 0;
    // every attempt of batch 2000's tasks fails on the batch's first run (4 = 2 tasks x 2 attempts)
    const run = flaky(store, (spec) =>
      spec.batchTimeMs === 2000 && failures++ < 4
        ? new SluiceError('store hiccup', { retryable: true })
        : undefined,
    );
    const manifests = await run.scheduler.run({ numBatches: 4 });
    expect(manifests.map((m) => m.batchTimeMs)).toEqual([1000, 2000, 3000, 4000]);
    expect(run.events.filter((e) => e.event === 'batch.retry')).toHaveLength(1);
    expect(await saved(store)).toEqual(await saved(reference));
  });

  it('stops at once, reporting once, for a non-retryable cause', async () => {
    const store = new MemoryObjectStore();
    const run = flaky(store, (spec) =>
      spec.batchTimeMs === 2000 ? new SluiceError('bad code', { retryable: false }) : undefined,
    );
    const err = await run.scheduler.run({ numBatches: 4 }).catch((e) => e);
    expect(err).toBeInstanceOf(BatchFailedError);
    expect(err).not.toBeInstanceOf(BatchRetriesExhaustedError);
    expect(err.message).toMatch(/not retryable.*bad code/);
    expect(run.events.filter((e) => e.event === 'batch.retry')).toHaveLength(0);
  });

  it('gives up after the bound for a cause that persists, with one clear report', async () => {
    const store = new MemoryObjectStore();
    const run = flaky(store, (spec) =>
      spec.batchTimeMs === 2000 ? new SluiceError('store down', { retryable: true }) : undefined,
    );
    const err = await run.scheduler.run({ numBatches: 4 }).catch((e) => e);
    expect(err).toBeInstanceOf(BatchRetriesExhaustedError);
    expect(err.message).toMatch(
      /Batch 2000 failed: gave up after 3 tries of the batch .*store down.*restarting/,
    );
    expect(isTransientFailure(err)).toBe(true);
    expect(run.events.filter((e) => e.event === 'batch.retry')).toHaveLength(2);
    expect(await store.get('manifests/000000000001000.json')).toBeDefined();
  });

  it('throttleTasks=0.6 and slowStore: every batch commits with exact outputs; manifests show throttles', async () => {
    const reference = new MemoryObjectStore();
    await flaky(reference, () => undefined).scheduler.run({ numBatches: 4 });
    const store = new MemoryObjectStore();
    const ctx = new StreamingContext({ batchIntervalMs: 1000, partitions: 2, printer: () => {} });
    wordCount(ctx);
    const s = inProcessScheduler(ctx, {
      store,
      concurrency: 4,
      sources: { input: arraySource(input) },
      lease: false,
      faults: { seed: 3, throttleTasks: 0.6, slowStore: 0.3, slowStoreMs: 1 },
      batchRetry: { attempts: 5, backoffMs: 2 },
    });
    const manifests = await s.run({ numBatches: 4 });
    expect(manifests).toHaveLength(4);
    expect(await saved(store)).toEqual(await saved(reference));
    const throttled = manifests.reduce((n, m) => n + (m.tasks.throttled ?? 0), 0);
    expect(throttled).toBe(s.faults!.counts.throttledTasks);
    expect(throttled).toBeGreaterThan(0);
    expect(manifests.every((m) => m.tasks.retries === 0)).toBe(true);
    expect(Math.min(...manifests.map((m) => m.tasks.concurrency!.min))).toBeLessThan(4);
  });
});

describe('scheduler Lambda: a transient failure does not throw', () => {
  async function handlerWith(invoker: Invoker) {
    const { createSchedulerHandler } = await import('../../functions/scheduler.ts');
    return createSchedulerHandler({
      module: { default: (ctx: StreamingContext) => wordCount(ctx) },
      env: { bucket: 'b', prefix: '', batchIntervalMs: 50, partitions: 2, pipelineName: 'p' },
      queueUrl: 'q',
      partitionFunction: 'f',
      partitionTimeoutMs: 60_000,
      taskConcurrency: 2,
      marginMs: 0,
      store: new MemoryObjectStore(),
      source: arraySource(input),
      tinyBatch: false, // the partition invoker's failures are the subject (issue 11: tiny batches)
      invoker,
      batchRetry: { attempts: 2, backoffMs: 2 },
    });
  }
  const failing = (err: () => Error): Invoker => ({
    concurrency: 2,
    invoke: async () => {
      throw err();
    },
    close: async () => {},
    describe: () => 'failing',
  });
  const context = { awsRequestId: 'r1', getRemainingTimeInMillis: () => 5_000 };

  it('logs, counts and returns so the next tick resumes', async () => {
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out.push(String(s));
      return true;
    });
    try {
      const handler = await handlerWith(failing(() => new SluiceError('S3 503', { retryable: true })));
      // a transient cause outlasting the task's attempts, then the batch's tries
      const res = await handler({}, context);
      expect(res).toMatchObject({ status: 'failed-transient', phase: 'run' });
    } finally {
      spy.mockRestore();
    }
    expect(out.join('')).toMatch(/FailedBatches/);
  });

  it('still throws for a failure a retry cannot fix', async () => {
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const handler = await handlerWith(failing(() => new SluiceError('bug', { retryable: false })));
      await expect(handler({}, context)).rejects.toThrow(/not retryable.*bug/);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('S3 store: SlowDown is retried by the client', () => {
  it('a GET answered 503 SlowDown twice then 200 returns the object', async () => {
    let requests = 0;
    const server = createServer((_req, res) => {
      requests++;
      if (requests <= 2) {
        res.writeHead(503, { 'content-type': 'application/xml' });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '3' });
      res.end('abc');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const client = createS3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1' });
      const mode = client.config.retryMode;
      expect(typeof mode === 'string' ? mode : await mode()).toBe('adaptive');
      const store = new S3ObjectStore({ bucket: 'b', client });
      const body = await store.get('k');
      expect(new TextDecoder().decode(body)).toBe('abc');
      expect(requests).toBe(3);
      client.destroy();
    } finally {
      server.close();
    }
  });
});

describe('sluice run --faults throttleTasks=0.6', () => {
  it('commits every batch with exact counts', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sluice-throttle-'));
    const words = ['alpha', 'beta', 'gamma', 'delta'];
    const lines = Array.from(
      { length: 400 },
      (_, i) => `${words[i % 4]} ${words[(i * 7) % 4]} ${words[(i * 3) % 4]}`,
    );
    const expected: Record<string, number> = {};
    for (const w of lines.join(' ').split(' ')) expected[w] = (expected[w] ?? 0) + 1;
    const file = path.join(dir, 'in.txt');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const store = path.join(dir, 'store');
    const r = spawnSync(
      process.execPath,
      [
        'bin/sluice.js',
        'run',
        'examples/wordcount.ts',
        '--source',
        `file:${file}`,
        '--store',
        store,
        '--interval',
        '200ms',
        '--faults',
        'throttleTasks=0.6,seed=4',
        '--json',
        '--quiet',
      ],
      { cwd: root, encoding: 'utf8', timeout: 50_000 },
    );
    expect(r.status).toBe(0);
    const batches = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{"type":"batch"'))
      .map((l) => JSON.parse(l) as { batchTimeMs: number; tasks: { throttled: number } });
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.reduce((n, b) => n + b.tasks.throttled, 0)).toBeGreaterThan(0);
    const manifests = readdirSync(path.join(store, 'manifests'));
    expect(manifests).toHaveLength(batches.length);
    const counts: Record<string, number> = {};
    for (const e of readdirSync(path.join(store, 'outputs'), { recursive: true, withFileTypes: true })) {
      if (e.isFile() && /^part-\d+\.jsonl$/.test(e.name)) {
        for (const line of readFileSync(path.join(e.parentPath, e.name), 'utf8')
          .split('\n')
          .filter(Boolean)) {
          const [w, n] = JSON.parse(line) as [string, number];
          counts[w] = (counts[w] ?? 0) + n;
        }
      }
    }
    expect(counts).toEqual(expected);
  });
});
