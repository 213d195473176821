/**
 * The user's workflow end to end, on LocalStack: `cdklocal deploy` the CDK app (scripts/local-up.sh),
 * push WordCount's input to the deployed queue with `sluice send`, let the deployed schedule wake the
 * deployed scheduler function, which invokes the deployed partition function through LocalStack's
 * Lambda API, read the committed results from the deployed bucket, and compare them with what the
 * embedded runner (`sluice run`) computes from the same input. Then the same under faults: a
 * partition invocation killed mid-run, and a stored partition deleted mid-run. Tear down at the end
 * (scripts/local-down.sh). Deployed with `-c tinyBatch=false`: every task is a partition invocation
 * (small batches would otherwise run inside the scheduler, and the faults are the partition's).
 *
 * LocalStack runs on 127.0.0.1:4566 (test/run.sh starts it with test/localstack/start.sh), with the
 * `host` Lambda runtime executor (test/localstack/executor): the functions run as Node.js processes
 * on this machine, since LocalStack would run them in Docker containers. Faults are injected through
 * that executor's control file (see faults.py there); the functions' code is the deployed code.
 *
 *   bash test/localstack/start.sh && npx vitest run --project e2e
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetFunctionCommand } from '@aws-sdk/client-lambda';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLambdaClient, createS3Client } from '../../aws/clients.ts';
import { S3ObjectStore } from '../../aws/s3-object-store.ts';
import { generate } from '../../examples/wordcount.ts';
import { type BatchManifest, DriverLease, type TaskSpec } from '../../shared/engine.ts';
import { LOCALSTACK_URL, requireLocalStack } from '../integration/localstack.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TMP = path.join(ROOT, 'test/.tmp/e2e');
const FAULTS = path.join(ROOT, 'test/.tmp/host-executor-faults.json');
const FAULT_EVENTS = `${FAULTS}.events.jsonl`;
const STACK = `SluiceE2e${Date.now().toString(36)}`;
// Fault rules fire once per id for the life of LocalStack: unique ids per run.
const KILL = `kill-${STACK}`;
const HOLD = `hold-${STACK}`;

/** A reduce task of a batch that has data: it reads shuffle buckets, none of them empty. */
const REDUCE_TASK_WITH_DATA = { match: ['"inputs":[{"kind":"shuffle"'], exclude: ['"end":0}'] };

interface Outputs {
  BucketName: string;
  QueueUrl: string;
  DeadLetterQueueUrl: string;
  SchedulerFunctionName: string;
  PartitionFunctionName: string;
  RecoveryFunctionName: string;
  PipelineName: string;
}

const timings: [string, number][] = [];
let outputs: Outputs;
let store: S3ObjectStore;
let deployed = false;
const sent: string[] = [];

// ---- helpers ----------------------------------------------------------------------------------

const children = new Set<ChildProcess>();

/** Runs a command from the repository root; its output goes to test/.tmp/e2e/<log>.log. */
async function run(
  log: string,
  command: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; output: string; ms: number }> {
  const started = Date.now();
  const child = spawn(command, args, { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  clearTimeout(timer);
  children.delete(child);
  await writeFile(path.join(TMP, `${log}.log`), output);
  const ms = Date.now() - started;
  timings.push([log, ms]);
  return { code, output, ms };
}

function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  return fn().finally(() => timings.push([name, Date.now() - started]));
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const manifestCache = new Map<string, BatchManifest>();
async function manifests(): Promise<BatchManifest[]> {
  for (const key of await store.list('manifests/')) {
    if (manifestCache.has(key)) continue;
    const body = await store.get(key);
    if (body) manifestCache.set(key, JSON.parse(Buffer.from(body).toString()) as BatchManifest);
  }
  return [...manifestCache.values()].sort((a, b) => a.batchTimeMs - b.batchTimeMs);
}

const recordsCommitted = async () => (await manifests()).reduce((n, m) => n + m.input.records, 0);

/** Waits until the committed batches hold exactly the events sent so far. */
async function waitForAllCommitted(timeoutMs: number): Promise<void> {
  await waitFor(
    `batches holding all ${sent.length} events`,
    async () => {
      const n = await recordsCommitted();
      if (n > sent.length)
        throw new Error(`${n} records committed, but only ${sent.length} events were sent`);
      return n === sent.length ? true : undefined;
    },
    timeoutMs,
  );
}

function addCounts(totals: Map<string, number>, jsonl: string): void {
  for (const line of jsonl.split('\n')) {
    if (!line) continue;
    const [word, n] = JSON.parse(line) as [string, number];
    totals.set(word, (totals.get(word) ?? 0) + n);
  }
}

/** The word counts of every committed batch in the deployed bucket, summed. */
async function deployedCounts(): Promise<Map<string, number>> {
  const totals = new Map<string, number>();
  for (const key of await store.list('outputs/')) {
    if (key.includes('/part-') && key.endsWith('.jsonl')) {
      addCounts(totals, Buffer.from((await store.get(key))!).toString());
    }
  }
  return totals;
}

/** What `sluice run` (the embedded runner) computes from the same events, summed over its batches. */
const embeddedTotals = new Map<string, number>();
async function embeddedCounts(lines: string[], name: string): Promise<Map<string, number>> {
  const input = path.join(TMP, `${name}.txt`);
  const dir = path.join(TMP, `embedded-${name}`);
  await writeFile(input, `${lines.join('\n')}\n`);
  const r = await run(
    `embedded-${name}`,
    process.execPath,
    [
      'bin/sluice.js',
      'run',
      'examples/wordcount.ts',
      '--source',
      `file:${input}`,
      '--store',
      dir,
      '--fresh',
      '--quiet',
    ],
    120_000,
  );
  expect(r.code, r.output).toBe(0);
  // outputs/<name>/dt=YYYY-MM-DD/hr=HH/batch=<t>/part-NNNNN.jsonl (shared/core/layout.ts outputKey)
  const outputsDir = path.join(dir, 'outputs');
  for (const file of await readdir(outputsDir, { recursive: true })) {
    if (path.basename(file).startsWith('part-') && file.endsWith('.jsonl')) {
      addCounts(embeddedTotals, await readFile(path.join(outputsDir, file), 'utf8'));
    }
  }
  return new Map(embeddedTotals);
}

/**
 * `sluice send --file` of these lines to the deployed queue; returns what the embedded runner
 * computes from all the events sent so far.
 */
async function send(lines: string[], name: string): Promise<Map<string, number>> {
  const file = path.join(TMP, `${name}.txt`);
  await writeFile(file, `${lines.join('\n')}\n`);
  const r = await run(
    `send-${name}`,
    process.execPath,
    ['bin/sluice.js', 'send', '--queue', outputs.QueueUrl, '--file', file, '--format', 'lines'],
    60_000,
  );
  expect(r.code, r.output).toBe(0);
  expect(r.output).toMatch(new RegExp(`sent ${lines.length} events in \\d+ messages`));
  sent.push(...lines);
  return embeddedCounts(lines, name);
}

interface FaultEvent {
  event: 'fired' | 'released';
  id: string;
  action?: string;
  function?: string;
  requestId: string;
  payload?: string;
}

async function faultEvents(): Promise<FaultEvent[]> {
  if (!existsSync(FAULT_EVENTS)) return [];
  return (await readFile(FAULT_EVENTS, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as FaultEvent);
}

async function armFaults(rules: Record<string, unknown>[]): Promise<void> {
  await writeFile(`${FAULTS}.tmp`, JSON.stringify({ rules }));
  await rename(`${FAULTS}.tmp`, FAULTS); // the executor never reads a half-written file
}

async function clearFaults(): Promise<void> {
  for (const f of [FAULTS, `${FAULTS}.tmp`, FAULT_EVENTS]) await rm(f, { force: true });
  for (const f of existsSync(path.dirname(FAULTS)) ? await readdir(path.dirname(FAULTS)) : []) {
    if (f.startsWith(`${path.basename(FAULTS)}.`) && f.endsWith('.release')) {
      await rm(path.join(path.dirname(FAULTS), f), { force: true });
    }
  }
}

/** A call to a JSON-protocol AWS API of LocalStack (it does not check signatures). */
async function awsJson(service: string, target: string, body: unknown): Promise<any> {
  const res = await fetch(LOCALSTACK_URL, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': target,
      authorization: `AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${target}: HTTP ${res.status} ${text}`);
  return JSON.parse(text);
}

/** CloudFormation's DescribeStackResources (query protocol), as [type, status, physical id]. */
async function stackResources(stack: string): Promise<{ type: string; status: string; id: string }[]> {
  const res = await fetch(LOCALSTACK_URL, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization:
        'AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/cloudformation/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: new URLSearchParams({ Action: 'DescribeStackResources', Version: '2010-05-15', StackName: stack }),
  });
  const xml = await res.text();
  if (!res.ok) throw new Error(`DescribeStackResources: HTTP ${res.status} ${xml}`);
  const tag = (m: string, name: string) => m.match(new RegExp(`<${name}>([^<]*)</${name}>`))?.[1] ?? '';
  return [...xml.matchAll(/<member>([\s\S]*?)<\/member>/g)].map(([, m]) => ({
    type: tag(m!, 'ResourceType'),
    status: tag(m!, 'ResourceStatus'),
    id: tag(m!, 'PhysicalResourceId'),
  }));
}

// ---- setup and teardown -----------------------------------------------------------------------

beforeAll(async () => {
  await requireLocalStack();
  await rm(TMP, { recursive: true, force: true });
  await mkdir(TMP, { recursive: true });
  await clearFaults();
  const up = await run(
    'local-up',
    'bash',
    ['scripts/local-up.sh', '-c', `stackName=${STACK}`, '-c', 'tinyBatch=false'],
    420_000,
  );
  if (up.code !== 0) throw new Error(`scripts/local-up.sh failed (${up.code}):\n${up.output.slice(-4000)}`);
  deployed = true;
  console.log(
    `scripts/local-up.sh (${(up.ms / 1000).toFixed(1)} s):\n` +
      up.output
        .split('\n')
        .filter((l) => /^\[local|^\[localstack|^Sluice pipeline|^ {2}\S/.test(l))
        .join('\n'),
  );
  const all = JSON.parse(await readFile(path.join(ROOT, `test/.tmp/local/${STACK}.outputs.json`), 'utf8'));
  outputs = all[STACK] as Outputs;
  store = new S3ObjectStore({ bucket: outputs.BucketName, prefix: '' });
}, 480_000);

afterAll(async () => {
  await clearFaults();
  for (const child of children) child.kill('SIGKILL');
  if (deployed) {
    const down = await run(
      'local-down',
      'bash',
      ['scripts/local-down.sh', '--keep-localstack', STACK],
      300_000,
    );
    console.log(
      down.output
        .split('\n')
        .filter((l) => l.startsWith('[local]') || l.includes('destroyed'))
        .join('\n'),
    );
    expect(down.code, down.output.slice(-4000)).toBe(0);
    expect((await stackResources(STACK).catch(() => [])).length).toBe(0);
  }
  console.log(
    `timings:\n${timings.map(([name, ms]) => `  ${name.padEnd(40)} ${(ms / 1000).toFixed(1).padStart(6)} s`).join('\n')}`,
  );
}, 360_000);

// ---- the workflow -----------------------------------------------------------------------------

describe('the deployed pipeline on LocalStack', () => {
  it('is created from the synthesized template: bucket, queues, three functions, the schedule, IAM roles', async () => {
    const resources = await stackResources(STACK);
    const count = (type: string) => resources.filter((r) => r.type === type).length;
    expect(resources.every((r) => r.status === 'CREATE_COMPLETE')).toBe(true);
    expect(count('AWS::S3::Bucket')).toBe(1);
    expect(count('AWS::SQS::Queue')).toBe(2);
    expect(count('AWS::Lambda::Function')).toBe(3);
    expect(count('AWS::Events::Rule')).toBe(2);
    expect(count('AWS::IAM::Role')).toBe(3);
    expect(count('AWS::IAM::Policy')).toBe(3);

    const lambda = createLambdaClient();
    for (const name of [
      outputs.SchedulerFunctionName,
      outputs.PartitionFunctionName,
      outputs.RecoveryFunctionName,
    ]) {
      const fn = await lambda.send(new GetFunctionCommand({ FunctionName: name }));
      expect(fn.Configuration?.State, name).toBe('Active');
      expect(fn.Configuration?.Runtime).toBe('nodejs22.x');
      expect(fn.Configuration?.Handler).toBe('index.handler');
      expect(fn.Configuration?.Role).toMatch(/^arn:aws:iam::000000000000:role\//);
    }
    lambda.destroy();

    // the every-minute rule targets the deployed scheduler function
    const rules = resources.filter((r) => r.type === 'AWS::Events::Rule').map((r) => r.id);
    const targets = await Promise.all(
      rules.map((rule) => awsJson('events', 'AWSEvents.ListTargetsByRule', { Rule: rule })),
    );
    const described = await Promise.all(
      rules.map((rule) => awsJson('events', 'AWSEvents.DescribeRule', { Name: rule })),
    );
    const schedulerRule = described.findIndex((d) => d.ScheduleExpression === 'rate(1 minute)');
    expect(schedulerRule).toBeGreaterThanOrEqual(0);
    expect(described[schedulerRule].State).toBe('ENABLED');
    expect(targets[schedulerRule].Targets[0].Arn).toMatch(
      new RegExp(`:function:${outputs.SchedulerFunctionName}$`),
    );
  });

  it('turns events sent with `sluice send` into the same word counts as the embedded runner', async () => {
    const lines = Array.from({ length: 1500 }, (_, i) => generate(i));
    const expected = await timed('send 1500 events', () => send(lines, 'input-1'));
    // The schedule wakes the scheduler within a minute of the deploy (LocalStack's EventBridge
    // ticks once a minute); the test never invokes a function itself.
    await timed('wait for the first 1500 events', () => waitForAllCommitted(180_000));

    expect(await deployedCounts()).toEqual(expected);
    const lease = await new DriverLease(store, 'probe').latest();
    expect(lease?.record.owner).toMatch(/^scheduler:/);

    // Every task is an invocation of the deployed partition function through LocalStack's Lambda
    // API, which keeps the invocations' logs in CloudWatch Logs.
    const all = await manifests();
    const logs = await awsJson('logs', 'Logs_20140328.FilterLogEvents', {
      logGroupName: `/aws/lambda/${outputs.PartitionFunctionName}`,
      limit: 10_000,
    });
    const taskLines = (logs.events as { message: string }[]).filter((e) =>
      e.message.includes('"event":"task"'),
    );
    expect(taskLines.length).toBeGreaterThan(0);
    console.log(
      `${all.length} batches, ${await recordsCommitted()} records, ` +
        `${all.reduce((n, m) => n + m.tasks.attempts, 0)} partition invocations; ` +
        `${taskLines.length} task log lines in /aws/lambda/${outputs.PartitionFunctionName}`,
    );
  });

  it('gives the same results when a partition invocation is killed mid-run', async () => {
    await armFaults([
      {
        id: KILL,
        function: outputs.PartitionFunctionName,
        action: 'kill',
        afterMs: 20,
        ...REDUCE_TASK_WITH_DATA,
      },
    ]);
    const lines = Array.from({ length: 1000 }, (_, i) => generate(10_000 + i));
    const expected = await timed('send 1000 events (kill)', () => send(lines, 'input-2'));
    const killed = await waitFor(
      'the killed invocation (the fault did not fire: does LocalStack run the host executor of test/localstack/start.sh?)',
      async () => (await faultEvents()).find((e) => e.id === KILL && e.event === 'fired'),
      90_000,
    );
    await timed('wait for the next 1000 events (kill)', () => waitForAllCommitted(120_000));

    expect(await deployedCounts()).toEqual(expected);
    const spec = JSON.parse(killed.payload!) as TaskSpec;
    const batch = (await manifests()).find((m) => m.batchTimeMs === spec.batchTimeMs);
    expect(batch, `batch ${spec.batchTimeMs} of the killed task`).toBeDefined();
    // The killed attempt never answered: the driver either retried it after LocalStack reported
    // Runtime.ExitError, or a speculative copy (launched because it ran long) finished first.
    expect(batch!.tasks.retries + batch!.tasks.speculative).toBeGreaterThanOrEqual(1);
    console.log(
      `killed: stage ${spec.stageId} partition ${spec.partition} of batch ${spec.batchTimeMs} ` +
        `(request ${killed.requestId}); the batch committed with ${batch!.tasks.retries} retries and ` +
        `${batch!.tasks.speculative} speculative attempts`,
    );
  });

  it('gives the same results when a stored partition is deleted mid-run', async () => {
    await clearFaults();
    // Hold every reduce task that reads data (its first attempt, a retry, a speculative copy, the
    // other partition) until released, so that none reads the shuffle outputs before one is deleted.
    await armFaults([
      {
        id: HOLD,
        function: outputs.PartitionFunctionName,
        action: 'hold',
        holdMs: 60_000,
        times: 1000,
        ...REDUCE_TASK_WITH_DATA,
      },
    ]);
    const lines = Array.from({ length: 1000 }, (_, i) => generate(20_000 + i));
    const expected = await timed('send 1000 events (delete)', () => send(lines, 'input-3'));
    // The map stage of the batch has committed its shuffle outputs; the first reduce task is held
    // before it reads them. Delete the output of map task 0, then let the reduce tasks run.
    const held = await waitFor(
      'the held reduce task (the fault did not fire: does LocalStack run the host executor of test/localstack/start.sh?)',
      async () => (await faultEvents()).find((e) => e.id === HOLD && e.event === 'fired'),
      90_000,
      100,
    );
    const spec = JSON.parse(held.payload!) as TaskSpec;
    const lost = spec.inputs.find((i) => i.kind === 'shuffle' && i.map === 0);
    expect(lost, 'a shuffle input of the held reduce task').toBeDefined();
    const lostKey = (lost as { key: string }).key;
    const s3 = createS3Client();
    await s3.send(new HeadObjectCommand({ Bucket: outputs.BucketName, Key: lostKey }));
    await s3.send(new DeleteObjectCommand({ Bucket: outputs.BucketName, Key: lostKey }));
    s3.destroy();
    await writeFile(`${FAULTS}.${HOLD}.release`, '');
    await timed('wait for the next 1000 events (delete)', () => waitForAllCommitted(180_000));

    expect(await deployedCounts()).toEqual(expected);
    const batch = (await manifests()).find((m) => m.batchTimeMs === spec.batchTimeMs)!;
    const heldTasks = (await faultEvents()).filter((e) => e.id === HOLD && e.event === 'fired').length;
    console.log(
      `deleted ${lostKey} while ${heldTasks} reduce invocation(s) of batch ${spec.batchTimeMs} were held; ` +
        `the batch committed with ${batch.tasks.retries} retries and ${batch.tasks.recomputed} recomputed ` +
        `partitions${batch.recovered ? ', re-run from its stored input by a later scheduler (recovered)' : ''}`,
    );
    // The lost partition is recomputed from its lineage within the batch.
    expect.soft(batch.tasks.recomputed, 'partitions recomputed from lineage').toBeGreaterThanOrEqual(1);
    expect.soft(batch.recovered, 'batch re-run by a later scheduler').toBe(false);
  });
});
