/**
 * LambdaInvoker through the real @aws-sdk/client-lambda against the local Invoke endpoint
 * (LocalStack cannot run functions without Docker; the endpoint runs handlers in this process).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLambdaClient } from '../../aws/clients.ts';
import {
  LambdaInvokeError,
  LambdaProtocolError,
  NonRetryableTaskError,
  TaskFunctionError,
  TaskTimeoutError,
} from '../../aws/errors.ts';
import { LambdaInvoker } from '../../aws/lambda-invoker.ts';
import { encodedOf, handlePartitionPayload } from '../../aws/payload.ts';
import type { TaskResult, TaskSpec } from '../../shared/core/task.ts';
import { SluiceError } from '../../shared/errors.ts';
import { type LocalLambdaEndpoint, startLocalLambdaEndpoint } from './local-lambda-endpoint.ts';
import './localstack.ts'; // test credentials and region; these tests need no LocalStack

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function spec(partition: number, extra: Partial<TaskSpec> = {}): TaskSpec {
  return {
    graph: { batchIntervalMs: 1000, zeroTimeMs: 0, defaultPartitions: 4, fingerprint: 'fp-1' },
    batchTimeMs: 5000,
    stageId: 1,
    partition,
    attempt: 0,
    rddId: 'rdd-7',
    name: 'ds7',
    operators: ['map-1', 'reduce-2'],
    inputs: [{ kind: 'block', key: `input/5000/block-${partition}` }],
    output: { kind: 'rdd', key: `rdd/rdd-7/5000/part-${partition}` },
    commitKey: `rdd/rdd-7/5000/part-${partition}.lineage.json`,
    ...extra,
  };
}

/** What a partition function would compute: a result that echoes the spec. */
async function fakeTask(s: TaskSpec): Promise<TaskResult> {
  if (s.inject?.delayMs) await sleep(s.inject.delayMs);
  if (s.inject?.fail) throw new Error(`injected failure in partition ${s.partition}`);
  if (s.graph.fingerprint !== 'fp-1')
    throw new NonRetryableTaskError(`graph fingerprint ${s.graph.fingerprint}`);
  return {
    committed: true,
    lineage: {
      rddId: s.rddId,
      batchTimeMs: s.batchTimeMs,
      partition: s.partition,
      operator: s.operators.at(-1)!,
      operators: s.operators,
      stageId: s.stageId,
      parents: [],
      records: s.partition * 10,
      bytes: 0,
      checksum: '00000000',
      attempt: s.attempt,
      durationMs: 1,
      fingerprint: s.graph.fingerprint,
      key: s.output.key,
      committedAtMs: 0,
    },
    metrics: {
      readRequests: 1,
      writeRequests: 2,
      bytesRead: 0,
      bytesWritten: 0,
      recordsIn: 0,
      recordsOut: s.partition * 10,
      deadLettered: 0,
    },
  };
}

let endpoint: LocalLambdaEndpoint;
const moduleDir = join(process.cwd(), 'test/.tmp/lambda-modules');

beforeAll(async () => {
  mkdirSync(moduleDir, { recursive: true });
  const modulePath = join(moduleDir, 'echo.mjs');
  writeFileSync(
    modulePath,
    'export const handler = async (event, context) => ({ echo: event, fn: context.functionName });\n',
  );
  endpoint = await startLocalLambdaEndpoint({
    functions: {
      partition: (event: unknown) => handlePartitionPayload(event, fakeTask),
      'slow-partition': {
        handler: (event: unknown) => handlePartitionPayload(event, fakeTask),
        timeoutMs: 300,
      },
      throttled: { handler: (event: unknown) => handlePartitionPayload(event, fakeTask), concurrency: 1 },
      'not-a-result': async () => ({ hello: 'world' }),
      'custom-non-retryable': async () => {
        throw new NonRetryableTaskError('bad spec');
      },
      echo: { module: modulePath, export: 'handler' },
      'engine-errors': (event: unknown) =>
        handlePartitionPayload(event, async (s) => {
          throw new SluiceError(`failure in ${s.partition}`, { retryable: s.partition === 2 });
        }),
    },
  });
  process.env.AWS_ENDPOINT_URL_LAMBDA = endpoint.url;
});

afterAll(async () => {
  delete process.env.AWS_ENDPOINT_URL_LAMBDA;
  await endpoint?.close();
});

function invoker(functionName: string, extra: Partial<ConstructorParameters<typeof LambdaInvoker>[0]> = {}) {
  return new LambdaInvoker({
    functionName,
    client: createLambdaClient({ endpoint: endpoint.url }),
    ...extra,
  });
}

describe('local Lambda endpoint', () => {
  it('answers like Lambda: result, FunctionError Unhandled with errorType, 202 for Event, 404', async () => {
    const client = createLambdaClient(); // endpoint from AWS_ENDPOINT_URL_LAMBDA
    const ok = await client.send(
      new InvokeCommand({ FunctionName: 'echo', Payload: new TextEncoder().encode('{"a":1}') }),
    );
    expect(ok.StatusCode).toBe(200);
    expect(ok.FunctionError).toBeUndefined();
    expect(JSON.parse(new TextDecoder().decode(ok.Payload))).toEqual({ echo: { a: 1 }, fn: 'echo' });

    const failed = await client.send(
      new InvokeCommand({
        FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:partition',
        Payload: new TextEncoder().encode(JSON.stringify(spec(1, { inject: { fail: true } }))),
      }),
    );
    expect(failed.StatusCode).toBe(200);
    expect(failed.FunctionError).toBe('Unhandled');
    const body = JSON.parse(new TextDecoder().decode(failed.Payload));
    expect(body).toMatchObject({ errorType: 'Error' });
    // the readable message first, then the encoded error on its marked line (aws/payload.ts)
    expect(encodedOf(body.errorMessage)).toMatchObject({
      message: 'injected failure in partition 1',
      encoded: { name: 'Error', message: 'injected failure in partition 1', retryable: true },
    });
    expect(Array.isArray(body.trace)).toBe(true);

    const event = await client.send(
      new InvokeCommand({
        FunctionName: 'echo',
        InvocationType: 'Event',
        Payload: new TextEncoder().encode('{}'),
      }),
    );
    expect(event.StatusCode).toBe(202);

    await expect(client.send(new InvokeCommand({ FunctionName: 'nope' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    client.destroy();
  });
});

describe('LambdaInvoker', () => {
  it('runs a task and returns its TaskResult', async () => {
    const inv = invoker('partition');
    const result = await inv.invoke(spec(3), { timeoutMs: 5_000 });
    expect(result.committed).toBe(true);
    expect(result.lineage).toMatchObject({ rddId: 'rdd-7', partition: 3, records: 30, operator: 'reduce-2' });
    expect(inv.invocationStats()).toMatchObject({ invocations: 1, tasks: 1, functionErrors: 0 });
    expect(inv.concurrency).toBe(16);
    await inv.close();
  });

  it('runs many tasks in parallel', async () => {
    const inv = invoker('partition', { concurrency: 8 });
    const results = await Promise.all(
      Array.from({ length: 32 }, (_, p) =>
        inv.invoke(spec(p, { inject: { delayMs: 20 } }), { timeoutMs: 10_000 }),
      ),
    );
    expect(results.map((r) => r.lineage.partition)).toEqual(Array.from({ length: 32 }, (_, p) => p));
    await inv.close();
  });

  it('an unhandled error is retryable', async () => {
    const inv = invoker('partition');
    const error = await inv.invoke(spec(1, { inject: { fail: true } }), { timeoutMs: 5_000 }).catch((e) => e);
    expect(error).toBeInstanceOf(TaskFunctionError);
    expect(error).toMatchObject({
      retryable: true,
      functionError: 'Unhandled',
      errorType: 'Error',
      errorMessage: 'injected failure in partition 1',
    });
    await inv.close();
  });

  it('a NonRetryableTaskError (or another non-retryable errorType) is not retryable', async () => {
    const inv = invoker('partition');
    const error = await inv
      .invoke(spec(1, { graph: { ...spec(1).graph, fingerprint: 'other' } }), { timeoutMs: 5_000 })
      .catch((e) => e);
    expect(error).toBeInstanceOf(TaskFunctionError);
    expect(error).toMatchObject({ retryable: false, errorType: 'NonRetryableTaskError' });
    const custom = await invoker('custom-non-retryable')
      .invoke(spec(1), { timeoutMs: 5_000 })
      .catch((e) => e);
    expect(custom).toMatchObject({
      name: 'TaskFunctionError',
      retryable: false,
      errorType: 'NonRetryableTaskError',
    });
    await inv.close();
  });

  it("the engine's SluiceError keeps its retryable flag across Lambda, and the driver sees a SluiceError", async () => {
    const inv = invoker('engine-errors');
    const fatal = await inv.invoke(spec(1), { timeoutMs: 5_000 }).catch((e) => e);
    expect(fatal).toBeInstanceOf(SluiceError);
    expect(fatal).toMatchObject({ retryable: false, errorType: 'NonRetryableTaskError' });
    expect(fatal.message).toMatch(/SluiceError: failure in 1/);
    const flaky = await inv.invoke(spec(2), { timeoutMs: 5_000 }).catch((e) => e);
    expect(flaky).toMatchObject({ retryable: true, errorType: 'SluiceError' });
    const packed = invoker('engine-errors', { pack: { maxTasks: 2, windowMs: 20 } });
    const outcomes = await Promise.allSettled(
      [1, 2].map((p) => packed.invoke(spec(p), { timeoutMs: 5_000 })),
    );
    expect(outcomes.map((o) => (o as PromiseRejectedResult).reason.retryable)).toEqual([false, true]);
    await inv.close();
    await packed.close();
  });

  it('times out after timeoutMs with a retryable TaskTimeoutError', async () => {
    const inv = invoker('partition');
    const started = Date.now();
    const error = await inv
      .invoke(spec(1, { inject: { delayMs: 3_000 } }), { timeoutMs: 300 })
      .catch((e) => e);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error).toBeInstanceOf(TaskTimeoutError);
    expect(error).toMatchObject({ name: 'TaskTimeoutError', retryable: true });
    expect(inv.invocationStats().timeouts).toBe(1);
    await inv.close();
  });

  it("the function's own timeout (Sandbox.Timedout) is a retryable function error", async () => {
    const inv = invoker('slow-partition');
    const error = await inv
      .invoke(spec(1, { inject: { delayMs: 2_000 } }), { timeoutMs: 5_000 })
      .catch((e) => e);
    expect(error).toMatchObject({
      name: 'TaskFunctionError',
      errorType: 'Sandbox.Timedout',
      retryable: true,
    });
    await inv.close();
  });

  it("the caller's signal aborts the invocation", async () => {
    const inv = invoker('partition');
    const controller = new AbortController();
    const pending = inv.invoke(spec(1, { inject: { delayMs: 3_000 } }), {
      timeoutMs: 10_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 100);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError', retryable: false });
    await inv.close();
  });

  it('retries throttling (429) within the timeout', async () => {
    const inv = invoker('throttled', { concurrency: 3 });
    const results = await Promise.all(
      [0, 1, 2].map((p) => inv.invoke(spec(p, { inject: { delayMs: 150 } }), { timeoutMs: 10_000 })),
    );
    expect(results.map((r) => r.lineage.partition)).toEqual([0, 1, 2]);
    expect(inv.invocationStats().throttled).toBeGreaterThan(0);
    await inv.close();
  });

  it('a missing function is a non-retryable invoke error; a dead endpoint is retryable', async () => {
    const missing = await invoker('no-such-function')
      .invoke(spec(1), { timeoutMs: 5_000 })
      .catch((e) => e);
    expect(missing).toBeInstanceOf(LambdaInvokeError);
    expect(missing).toMatchObject({
      retryable: false,
      awsErrorName: 'ResourceNotFoundException',
      statusCode: 404,
    });

    const dead = new LambdaInvoker({
      functionName: 'partition',
      client: createLambdaClient({ endpoint: 'http://127.0.0.1:1' }),
    });
    const refused = await dead.invoke(spec(1), { timeoutMs: 5_000 }).catch((e) => e);
    expect(refused).toBeInstanceOf(LambdaInvokeError);
    expect(refused.retryable).toBe(true);
    await dead.close();
  });

  it('an answer that is not a TaskResult is a protocol error', async () => {
    const error = await invoker('not-a-result')
      .invoke(spec(1), { timeoutMs: 5_000 })
      .catch((e) => e);
    expect(error).toBeInstanceOf(LambdaProtocolError);
    expect(error.retryable).toBe(false);
  });

  it('packs several tasks into one invocation; a failing task fails alone', async () => {
    const before = endpoint.invocations.partition ?? 0;
    const inv = invoker('partition', { pack: { maxTasks: 4, windowMs: 20 } });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, (_, p) =>
        inv.invoke(spec(p, { inject: { fail: p === 5 } }), { timeoutMs: 5_000 }),
      ),
    );
    expect((endpoint.invocations.partition ?? 0) - before).toBe(2);
    expect(inv.invocationStats()).toMatchObject({ invocations: 2, tasks: 8 });
    outcomes.forEach((o, p) => {
      if (p === 5) {
        expect(o.status).toBe('rejected');
        expect((o as PromiseRejectedResult).reason).toMatchObject({
          name: 'TaskFunctionError',
          retryable: true,
        });
      } else {
        expect(o.status).toBe('fulfilled');
        expect((o as PromiseFulfilledResult<TaskResult>).value.lineage.partition).toBe(p);
      }
    });
    await inv.close();
  });

  it('in a pack, each task keeps its own timeout', async () => {
    const inv = invoker('partition', { pack: { maxTasks: 2, windowMs: 20 } });
    const [slow, fast] = await Promise.allSettled([
      inv.invoke(spec(0, { inject: { delayMs: 1_000 } }), { timeoutMs: 200 }),
      inv.invoke(spec(1, { inject: { delayMs: 500 } }), { timeoutMs: 5_000 }),
    ]);
    expect(slow.status).toBe('rejected');
    expect((slow as PromiseRejectedResult).reason).toBeInstanceOf(TaskTimeoutError);
    expect(fast.status).toBe('fulfilled');
    await inv.close();
  });
});
