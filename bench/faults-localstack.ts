/**
 * The LocalStack half of `npm run bench:faults`' overload figures (issue 8): the AWS runner's
 * driver on S3 + SQS + Lambda, all on LocalStack.
 *
 * What runs where: the driver (BatchScheduler, wired as functions/scheduler.ts wires it: S3 store,
 * SQS source, LambdaInvoker, wall clock, a lease) runs in this process; every partition task is a
 * real Lambda invocation through LocalStack's Lambda API of the bundled partition handler
 * (functions/partition.ts, esbuild as the CDK construct bundles it), created with CreateFunction and
 * run by the host executor (test/localstack/executor: one Node.js process per execution
 * environment). The CDK deploy path (scripts/local-up.sh) is not used: it takes minutes and wakes
 * the scheduler only once a minute, too coarse for a lag per batch.
 *
 *   1. Sustainable rate: WordCount fed through SQS at a probe rate; from the batches' work
 *      (processing minus the poll), the rate at which the work fills the interval (linear in the
 *      records, hence conservative: the fixed cost per batch is scaled too). `--ls-rate` sets it.
 *   2. Overload: 2x that rate for 20 s (10 s with --quick), then half of it; lag per batch and when
 *      it is back under 2 intervals.
 *   3. Backlog: the driver stops, input for 60 intervals queues up in SQS, a new driver starts: it
 *      closes the 60 due batches and runs them in bounded chunks; how long until the lag is under
 *      2 intervals, with the task concurrency and throttles the manifests report.
 *
 * Names are unique per run (bucket, queue, function `sluice-bench-ovl-<stamp>-…`); all are deleted
 * at the end. Without LocalStack the run says so and how to start it.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const ENDPOINT = process.env.SLUICE_LOCALSTACK_URL ?? 'http://127.0.0.1:4566';
const INTERVAL = 1000;
const PARTITIONS = 2;
const PIPELINE = path.join(here, 'pipelines', 'wordcount.ts');

export interface LocalStackOptions {
  readonly quick: boolean;
  /** The sustainable rate (records/s); measured when undefined. */
  readonly rate?: number;
  /** The invoker's concurrency (SLUICE_TASK_CONCURRENCY; default 8). */
  readonly concurrency?: number;
  /** Batches of input queued while no driver runs (default 60). */
  readonly backlogBatches?: number;
  readonly log: (text: string) => void;
}

export interface LagRow {
  t: number;
  records: number;
  lagMs: number;
  processingMs: number;
  /** The SQS poll (a polling source collects during the interval itself). */
  receiveMs: number;
  /** Writing the input block and the write-ahead entry (with the poll: closing the batch). */
  writeInputMs: number;
  catchUp: boolean;
  concurrency?: { min: number; max: number };
  throttled: number;
}

/** LocalStack's health, or why the LocalStack runs are skipped. */
export async function localStackUp(): Promise<string | undefined> {
  try {
    const res = await fetch(`${ENDPOINT}/_localstack/health`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { services?: Record<string, string> };
    const down = ['s3', 'sqs', 'lambda'].filter(
      (s) => !['available', 'running'].includes(body.services?.[s] ?? ''),
    );
    if (down.length) return `LocalStack at ${ENDPOINT} does not offer ${down.join(', ')}`;
    return undefined;
  } catch {
    return `LocalStack is not up at ${ENDPOINT} (start it with: npm run local:up, or bash test/localstack/start.sh)`;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

export async function localStackOverload(o: LocalStackOptions) {
  const why = await localStackUp();
  if (why) return { skipped: why };
  // every AWS client of this process talks to LocalStack only
  for (const name of Object.keys(process.env))
    if (name.startsWith('AWS_ENDPOINT_URL_')) delete process.env[name];
  delete process.env.AWS_PROFILE;
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: ENDPOINT,
    AWS_ENDPOINT_URL_S3: ENDPOINT,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  const { CreateBucketCommand, DeleteBucketCommand } = await import('@aws-sdk/client-s3');
  const { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand } = await import(
    '@aws-sdk/client-sqs'
  );
  const { CreateFunctionCommand, DeleteFunctionCommand, GetFunctionCommand } = await import(
    '@aws-sdk/client-lambda'
  );
  const { createLambdaClient, createS3Client, createSqsClient } = await import('../aws/clients.ts');
  const { LambdaInvoker, S3ObjectStore, SqsSource, SqsProducer } = await import('../aws/index.ts');
  const { BatchScheduler } = await import('../shared/index.ts');
  const { loadPipeline } = await import('../shared/local/load-pipeline.ts');
  const { defaultGenerate } = await import('../shared/local/embedded-runner.ts');

  const name = `sluice-bench-ovl-${Date.now().toString(36)}`;
  const concurrency = o.concurrency ?? 8;
  const s3 = createS3Client();
  const sqs = createSqsClient();
  const lambda = createLambdaClient();
  const cleanups: (() => Promise<unknown>)[] = [];
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-ls-'));
  cleanups.push(() => fs.rm(tmp, { recursive: true, force: true }));
  try {
    // ---- the partition function, bundled as the CDK construct bundles it ----------------------
    const started = Date.now();
    await build({
      entryPoints: [path.join(root, 'functions', 'partition.ts')],
      outfile: path.join(tmp, 'partition.mjs'),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      alias: { 'sluice-pipeline': PIPELINE },
      banner: {
        js: "import { createRequire as __sluiceCreateRequire } from 'node:module'; const require = __sluiceCreateRequire(import.meta.url);",
      },
      logLevel: 'warning',
    });
    execFileSync('zip', ['-q', '-j', path.join(tmp, 'code.zip'), path.join(tmp, 'partition.mjs')]);
    await s3.send(new CreateBucketCommand({ Bucket: name }));
    const queue = await sqs.send(
      new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '60' } }),
    );
    const queueUrl = queue.QueueUrl!;
    cleanups.push(async () => {
      const all = new S3ObjectStore({ bucket: name });
      for (const key of await all.list('')) await all.delete(key);
      await s3.send(new DeleteBucketCommand({ Bucket: name }));
    });
    cleanups.push(() => sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })));
    const fn = `${name}-partition`;
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName: fn,
        Runtime: 'nodejs20.x',
        Handler: 'partition.handler',
        Role: 'arn:aws:iam::000000000000:role/sluice-bench',
        Code: { ZipFile: await fs.readFile(path.join(tmp, 'code.zip')) },
        Timeout: 60,
        MemorySize: 1024,
        Environment: {
          Variables: {
            SLUICE_BUCKET: name,
            SLUICE_PREFIX: 'pipeline',
            SLUICE_BATCH_INTERVAL_MS: String(INTERVAL),
            SLUICE_PARTITIONS: String(PARTITIONS),
            SLUICE_PIPELINE_NAME: name,
          },
        },
      }),
    );
    cleanups.push(() => lambda.send(new DeleteFunctionCommand({ FunctionName: fn })));
    for (let i = 0; ; i++) {
      const f = await lambda.send(new GetFunctionCommand({ FunctionName: fn }));
      if (f.Configuration?.State === 'Active') break;
      if (i > 120) throw new Error(`function ${fn} not active after 60 s: ${f.Configuration?.State}`);
      await sleep(500);
    }
    o.log(`  LocalStack: bucket, queue and function ${fn} ready in ${Date.now() - started} ms`);

    const loaded = await loadPipeline(PIPELINE, { batchIntervalMs: INTERVAL, partitions: PARTITIONS });
    const store = new S3ObjectStore({ bucket: name, prefix: 'pipeline' });
    const producer = new SqsProducer({ queueUrl, maxEventsPerMessage: 50 });
    let seq = 0;
    const lines = (n: number) => Array.from({ length: n }, () => defaultGenerate(seq++));
    const depth = async () => {
      const a =
        (
          await sqs.send(
            new GetQueueAttributesCommand({
              QueueUrl: queueUrl,
              AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
            }),
          )
        ).Attributes ?? {};
      return (
        Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0)
      );
    };

    /** A driver as the scheduler function builds one (functions/scheduler.ts), in this process. */
    const driver = (rows: LagRow[], zero: () => number) => {
      const invoker = new LambdaInvoker({ functionName: fn, concurrency });
      const s = new BatchScheduler(loaded.ctx, {
        store,
        invoker,
        sources: { input: new SqsSource({ queueUrl }) },
        clock: 'wall',
        taskTimeoutMs: 70_000,
        lease: { owner: `bench:${process.pid}`, durationMs: 30_000 },
        log: () => {},
        onBatch: (m) =>
          rows.push({
            t: (m.batchTimeMs - zero()) / 1000,
            records: m.input.records,
            lagMs: m.totalDelayMs,
            processingMs: m.processingMs,
            receiveMs: m.phases.receive ?? 0,
            writeInputMs: m.phases.writeInput ?? 0,
            catchUp: m.catchUp === true,
            concurrency: m.tasks.concurrency,
            throttled: m.tasks.throttled ?? 0,
          }),
      });
      return { s, invoker };
    };

    /** Sends `rateAt(elapsed)` records per second, in ticks of 250 ms, until `ms` passed. */
    const feed = async (ms: number, rateAt: (elapsedMs: number) => number, stop: { done: boolean }) => {
      const t0 = Date.now();
      let owed = 0;
      let sent = 0;
      while (!stop.done && Date.now() - t0 < ms) {
        const tick = Date.now();
        owed += rateAt(tick - t0) / 4;
        const n = Math.floor(owed);
        owed -= n;
        if (n > 0) await producer.send(lines(n));
        sent += n;
        await sleep(Math.max(0, 250 - (Date.now() - tick)));
      }
      return sent;
    };

    // ---- 1. the sustainable rate -------------------------------------------------------------
    let sustainable = o.rate;
    let probe: Record<string, number> | undefined;
    {
      const rows: LagRow[] = [];
      let zero = 0;
      const { s, invoker } = driver(rows, () => zero);
      await s.start();
      zero = s.nextBatchTimeMs;
      const probeRate = o.rate ?? 1000;
      const seconds = o.quick ? 8 : 12;
      const stop = { done: false };
      const feeding = feed(seconds * 1000, () => probeRate, stop);
      await s.run({ untilMs: zero + seconds * INTERVAL });
      stop.done = true;
      await feeding;
      await s.run({ untilMs: s.nextBatchTimeMs + 2 * INTERVAL }); // what is still queued
      await s.stop();
      await invoker.close();
      const warm = rows.filter((r) => r.records > 0).slice(2);
      // work: processing minus the poll (the SQS source polls for the interval itself)
      const work = median(warm.map((r) => r.processingMs - r.receiveMs));
      const records = median(warm.map((r) => r.records));
      probe = { probeRate, batches: warm.length, medianRecords: records, medianProcessingMs: work };
      if (sustainable === undefined) {
        sustainable = Math.max(100, Math.round((records * INTERVAL) / Math.max(1, work) / 100) * 100);
      }
      o.log(
        `  LocalStack probe at ${probeRate}/s: median ${records} records per batch in ${work} ms; sustainable ~${sustainable} records/s${o.rate ? ' (given)' : ''}`,
      );
    }

    // ---- 2. overload: 2x for overMs, then half -------------------------------------------------
    const overMs = o.quick ? 10_000 : 20_000;
    const afterMs = o.quick ? 15_000 : 25_000;
    const rows: LagRow[] = [];
    let zero = 0;
    {
      o.log(
        `  LocalStack overload: ${2 * sustainable}/s for ${overMs / 1000} s, then ${sustainable / 2}/s for ${afterMs / 1000} s`,
      );
      const { s, invoker } = driver(rows, () => zero);
      await s.start();
      zero = s.nextBatchTimeMs;
      const stop = { done: false };
      const feeding = feed(overMs + afterMs, (e) => (e < overMs ? 2 * sustainable : sustainable / 2), stop);
      await s.run({ untilMs: zero + overMs + afterMs });
      stop.done = true;
      await feeding;
      await s.stop();
      await invoker.close();
      for (const r of rows) o.log(formatRow(r));
    }
    const lastOver = rows.findLastIndex((r) => r.lagMs >= 2 * INTERVAL);
    const overload = {
      sustainablePerSec: sustainable,
      probe,
      overloadMs: overMs,
      worstLagMs: Math.max(0, ...rows.map((r) => r.lagMs)),
      lagUnder2IntervalsAtS: lastOver >= 0 && lastOver + 1 < rows.length ? rows[lastOver + 1]!.t : null,
      lagUnder2IntervalsAtEnd: (rows.at(-1)?.lagMs ?? Infinity) < 2 * INTERVAL,
      throttled: rows.reduce((n, r) => n + r.throttled, 0),
      batches: rows,
    };

    // ---- 3. a backlog: no driver for N intervals, then one starts -----------------------------
    const n = o.backlogBatches ?? 60;
    const backlogRate = Math.round(sustainable / 2);
    o.log(
      `  LocalStack backlog: no driver for ${n} intervals while ${backlogRate}/s arrive, then a driver starts`,
    );
    const left = await depth();
    const stop = { done: false };
    const queued = await feed(n * INTERVAL, () => backlogRate, stop);
    const brows: LagRow[] = [];
    const { s, invoker } = driver(brows, () => zero);
    const t0 = Date.now();
    o.log(`  ... ${queued} records queued (${await depth()} messages); driver starting`);
    await s.start();
    const pendingAtStart = Math.round((Date.now() - s.nextBatchTimeMs) / INTERVAL);
    zero = t0;
    // after the catch-up, normal input again (half the sustainable rate) for 15 s
    const feeding = feed(60_000, () => backlogRate, stop);
    let caughtUpMs: number | undefined;
    let caughtUpBatches = 0;
    const abort = new AbortController();
    const watch = (async () => {
      while (!abort.signal.aborted) {
        const last = brows.at(-1);
        if (caughtUpMs === undefined && last && !last.catchUp && last.lagMs < 2 * INTERVAL) {
          caughtUpMs = Date.now() - t0;
          caughtUpBatches = brows.length;
          setTimeout(() => abort.abort(), 10_000); // ten more batches to show it stays there
        }
        if (Date.now() - t0 > 360_000) abort.abort(); // give up: reported as not caught up
        await sleep(100);
      }
    })();
    await s.run({ signal: abort.signal });
    stop.done = true;
    await feeding;
    await watch;
    await s.stop();
    await invoker.close();
    const catchUpRows = brows.slice(0, caughtUpBatches || brows.length);
    const conc = catchUpRows.flatMap((r) => (r.concurrency ? [r.concurrency] : []));
    const backlog = {
      batches: n,
      pendingAtStart,
      ratePerSec: backlogRate,
      recordsQueued: queued,
      leftInQueueBefore: left,
      caughtUpMs: caughtUpMs ?? null,
      batchesToCatchUp: caughtUpBatches,
      catchUpBatches: brows.filter((r) => r.catchUp).length,
      worstLagMs: Math.max(0, ...brows.map((r) => r.lagMs)),
      concurrency: conc.length
        ? { min: Math.min(...conc.map((c) => c.min)), max: Math.max(...conc.map((c) => c.max)) }
        : undefined,
      throttled: brows.reduce((k, r) => k + r.throttled, 0),
      /** Time spent closing the catch-up batches (poll + input block + write-ahead entry), summed. */
      closingMs: catchUpRows.reduce((k, r) => k + r.receiveMs + r.writeInputMs, 0),
      recordsPerCatchUpBatch: median(catchUpRows.map((r) => r.records)),
      lagAtEndMs: brows.at(-1)?.lagMs ?? null,
      batchRows: brows,
    };
    o.log(
      `  backlog of ${pendingAtStart} batches: lag under 2 intervals after ${caughtUpMs ?? '-'} ms (${caughtUpBatches} batches); concurrency ${backlog.concurrency?.min}-${backlog.concurrency?.max}, throttled ${backlog.throttled}`,
    );
    return {
      mode: 'driver in-process; S3, SQS and the partition function on LocalStack (host executor)',
      partitions: PARTITIONS,
      intervalMs: INTERVAL,
      taskConcurrency: concurrency,
      overload,
      backlog,
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    s3.destroy();
    sqs.destroy();
    lambda.destroy();
  }
}

export function formatRow(r: LagRow): string {
  return `  t=${r.t.toFixed(0).padStart(3)} s  records ${String(r.records).padStart(6)}  lag ${String(r.lagMs).padStart(6)} ms  processing ${String(r.processingMs).padStart(5)} ms${r.catchUp ? '  catch-up' : ''}${r.concurrency ? `  concurrency ${r.concurrency.min}-${r.concurrency.max}` : ''}${r.throttled ? `  throttled ${r.throttled}` : ''}`;
}
