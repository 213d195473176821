/**
 * The `sluice` command line: `run`, `status` and `lineage`, on commander. Option values are
 * validated as they are parsed; every error a user can cause ends as one line on stderr
 * (`sluice: ...`) with exit code 2 for a bad option or argument and 1 otherwise. Set
 * SLUICE_DEBUG=1 to see stack traces.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, IncompatibleGraphError, SluiceError } from '../shared/errors.ts';
import { PipelineLoadError } from '../shared/local/load-pipeline.ts';
import { batchCommand } from './batch.ts';
import { DEFAULT_DEPLOYMENT, readPriceTable } from './cost.ts';
import { CliError, UsageError, usageErrorFromConfig } from './errors.ts';
import { lineageCommand, lineageListCommand, requireLineageArgs } from './lineage.ts';
import {
  type BatchTimeSpec,
  parseBatchTime,
  parseDataset,
  parseDuration,
  parseFaults,
  parseFormat,
  parseInteger,
  parsePositiveNumber,
  parseSourceSpec,
} from './parse.ts';
import { queryCommand } from './query.ts';
import { replayCommand } from './replay.ts';
import { runCommand } from './run.ts';
import { sendCommand } from './send.ts';
import { statusCommand } from './status.ts';
import { uiCommand } from './ui/command.ts';

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Installs a Ctrl-C (SIGINT/SIGTERM) handler; returns its remover. */
  readonly onInterrupt?: (handler: () => void) => () => void;
  readonly env?: NodeJS.ProcessEnv;
}

export const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  onInterrupt: (handler) => {
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
    return () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    };
  },
  env: process.env,
};

function packageVersion(): string {
  // cli/ from this repository's sources, dist/cli/ when installed
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'sluice') return pkg.version ?? '0.0.0';
    } catch {}
  }
  return '0.0.0';
}

/** Store options shared by `status` and `lineage`. */
function addStoreOptions(cmd: Command): Command {
  return cmd
    .option('--store <dir>', 'store directory (default: the only store under .sluice/)')
    .option('--bucket <name>', 'S3 bucket of the AWS runner, instead of --store')
    .option('--prefix <prefix>', 'key prefix inside --bucket');
}

export function buildProgram(io: CliIo): Command {
  const program = new Command('sluice');
  program
    .description(
      'Discretized Streams (Spark Streaming) in TypeScript: run pipelines, look at their batches and lineage.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .exitOverride()
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      outputError: (text, write) => write(text.replace(/^error: /, 'sluice: ')),
    })
    .showSuggestionAfterError(true)
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
Examples:
  $ sluice run examples/wordcount.ts --duration 10s
  $ sluice run examples/wordcount.ts --source file:words.txt --interval 500ms --workers 0
  $ sluice status --store .sluice/wordcount --last 10 --svg timeline.svg
  $ sluice lineage ds3 last 0 --store .sluice/wordcount
  $ sluice ui --store .sluice/wordcount   (then open http://127.0.0.1:4040/)
  $ sluice replay examples/wordcount.ts --store .sluice/wordcount --into .sluice/wordcount-replay
  $ sluice query totals --store .sluice/wordcount --top 10`,
    );

  program
    .command('run')
    .summary('run a pipeline on this machine, showing each batch as it commits')
    .description(
      'run a pipeline module on this machine, showing each batch as it commits (Ctrl-C stops after the current batch)',
    )
    .argument('<pipeline-module>', 'a module that default-exports (ctx: StreamingContext) => void')
    .option(
      '--interval <duration>',
      "batch interval, e.g. 1s, 500ms, 2m (default: the module's options, else 1s)",
      (v) => parseDuration('--interval', v),
    )
    .option('--partitions <n>', "default partitions (default: the module's options, else 2)", (v) =>
      parseInteger('--partitions', v, 'partitions', 1, 10_000),
    )
    .option('--duration <duration>', 'run this long, then stop (e.g. 10s, 5m)', (v) =>
      parseDuration('--duration', v),
    )
    .option('--batches <n>', 'run this many batches, then stop', (v) =>
      parseInteger('--batches', v, 'batches'),
    )
    .option(
      '--source <spec>',
      'generator[:<rate>] | file:<path> | stdin | http[:<port>] | store:<dir>#<output>',
      (v) => parseSourceSpec('--source', v),
      'generator',
    )
    .option('--rate <records/s>', 'records per second of the generator source (default 1000)', (v) =>
      parsePositiveNumber('--rate', v, 'records per second'),
    )
    .addOption(
      new Option(
        '--format <format>',
        'how file, stdin and http sources decode lines: lines | json (default lines)',
      ).argParser((v) => parseFormat('--format', v)),
    )
    .option(
      '--store <dir>',
      'store directory (default .sluice/<module name>); a run resumes from what it holds',
    )
    .option(
      '--workers <n>',
      'worker threads (default: one per core but one, for the driver; 0 runs tasks in the driver thread)',
      (v) => parseInteger('--workers', v, 'worker threads', 0, 256),
    )
    .option(
      '--dataset <key=file>',
      'put a local file into the store under key before starting (repeatable)',
      (v, prev: Record<string, string> | undefined) => parseDataset('--dataset', v, prev ?? {}),
    )
    .option('--max-records <n>', 'backpressure cap: never take more records than this into one batch', (v) =>
      parseInteger('--max-records', v, 'records per batch'),
    )
    .option(
      '--faults <list>',
      'inject faults, e.g. failTasks=0.1,killWorkers=0.05,slowTasks=0.1,slowFactor=10,crashDriver=0,deletePartitions=0.1,corruptBlocks=0.05,throttleTasks=0.3,slowStore=0.1,slowStoreMs=20,seed=7',
      (v) => parseFaults('--faults', v),
    )
    .option('--no-speculation', 'do not launch speculative copies of straggling tasks')
    .option('--checkpoint-every <n>', 'keep every n-th batch of state for recovery (default 10)', (v) =>
      parseInteger('--checkpoint-every', v, 'batches', 1),
    )
    .option(
      '--retain-inputs <duration>',
      'keep input blocks and write-ahead entries this long, for replay and recovery (default 1h)',
      (v) => parseDuration('--retain-inputs', v),
    )
    .option('--fresh', 'delete the store first (start over instead of resuming)')
    .option(
      '--skip-batch <batch-time>',
      'commit this stored, uncommitted batch (epoch ms, as in "Batch <time> failed") without its input and with no outputs (repeatable)',
      (v, prev: number[] | undefined) => [...(prev ?? []), parseInteger('--skip-batch', v, 'ms', 0)],
    )
    .option(
      '--force',
      'take the driver lease even if another driver holds it (that driver is fenced: it commits nothing more)',
    )
    .addOption(
      new Option('--lease-duration <duration>', 'driver lease duration (tests)')
        .argParser((v) => parseDuration('--lease-duration', v))
        .hideHelp(),
    )
    .option('--quiet', 'no start banner and no per-batch rows (print() output and the summary stay)')
    .option('--json', 'one JSON line per batch on stderr instead of the table')
    .option('--ui', 'also serve the web UI of this run (see sluice ui)')
    .option('--ui-port <port>', 'port of --ui (default 4040; 0 picks a free one)', (v) =>
      parseInteger('--ui-port', v, 'port', 0, 65_535),
    )
    .option('--ui-host <address>', 'address --ui binds to (default 127.0.0.1; others need a token)')
    .option('--ui-token <token>', 'token --ui requires (generated when --ui-host is not loopback)')
    .action(async (modulePath: string, opts) => {
      await runCommand(modulePath, opts, {
        progress: io.stderr,
        ...(io.onInterrupt ? { onInterrupt: io.onInterrupt } : {}),
      });
    });

  addStoreOptions(
    program
      .command('status')
      .summary('list the batches of a store, with a timeline')
      .description(
        'list the committed batches of a store: delays, stages, tasks, requests, a timeline and a cost estimate',
      ),
  )
    .option(
      '--last <n>',
      'show the newest n batches, 0 for all',
      (v) => parseInteger('--last', v, 'batches', 0),
      20,
    )
    .option('--batch <batch-time>', 'show one batch in detail: phases, stages, task times, outputs', (v) =>
      parseBatchTime('--batch', v),
    )
    .option('--non-empty', 'only batches that had input records or dead letters')
    .option('--svg <file>', 'also write the timeline as an SVG picture to file')
    .option('--json', 'print JSON (graph meta and manifests) instead of tables')
    .option(
      '--prices <file>',
      'price table for the cost estimate (JSON shaped like cli/prices.json: region, date, prices)',
      (v) => {
        try {
          return readPriceTable(v);
        } catch (error) {
          throw new UsageError('--prices', (error as Error).message);
        }
      },
    )
    .option(
      '--scheduler-memory <MiB>',
      "the scheduler function's memory for the cost estimate (the construct's schedulerMemorySize)",
      (v) => parseInteger('--scheduler-memory', v, 'MiB', 128, 10_240),
      DEFAULT_DEPLOYMENT.schedulerMemoryMb,
    )
    .option(
      '--partition-memory <MiB>',
      "the partition function's memory for the cost estimate (the construct's partitionMemorySize)",
      (v) => parseInteger('--partition-memory', v, 'MiB', 128, 10_240),
      DEFAULT_DEPLOYMENT.partitionMemoryMb,
    )
    .action(async (opts) => {
      await statusCommand(opts, io.stdout);
    });

  addStoreOptions(
    program
      .command('ui')
      .summary('serve a live web page of a store: charts, batches, dead letters, lineage')
      .description(
        'serve a read-only web page of a store, live while a pipeline runs: input rate and delays as charts, ' +
          'the batch table with a page per batch, dead letters, events, and lineage graphs',
      ),
  )
    .option(
      '--port <port>',
      'port to listen on (0 picks a free one)',
      (v) => parseInteger('--port', v, 'port', 0, 65_535),
      4040,
    )
    .option('--host <address>', 'address to bind to; anything but loopback requires a token', '127.0.0.1')
    .option('--token <token>', 'require this token (generated when --host is not loopback)')
    .action(async (opts) => {
      await uiCommand(opts, io.stdout, io.onInterrupt);
    });

  program
    .command('send')
    .summary("push events to the pipeline's SQS queue")
    .description(
      'push events to an SQS queue (many per message): lines of a file or standard input, or demo events from a pipeline module',
    )
    .requiredOption('--queue <url>', 'the input queue URL (the QueueUrl output of the stack)')
    .option('--file <path>', 'read events from this file instead of standard input')
    .addOption(
      new Option(
        '--format <format>',
        "json: each line is one JSON event; lines: each line is one text event (default: the pipeline's, from --pipeline or the queue's sluice:format tag, else json)",
      ).argParser((v) => parseFormat('--format', v)),
    )
    .option('--generate <n>', "send n events made by the pipeline module's generate(seq)", (v) =>
      parseInteger('--generate', v, 'events', 1),
    )
    .option('--pipeline <module>', 'the pipeline module for --generate')
    .option(
      '--from <seq>',
      'first sequence number for --generate',
      (v) => parseInteger('--from', v, 'seq', 0),
      0,
    )
    .option('--events-per-message <n>', 'most events packed into one message', (v) =>
      parseInteger('--events-per-message', v, 'events', 1),
    )
    .option(
      '--no-nudge',
      "do not wake a sleeping scheduler after sending (by default: when the queue's sluice:store tag names the pipeline's store and its scheduler sleeps, one asynchronous invoke wakes it before its next tick)",
    )
    .action(async (opts) => {
      const code = await sendCommand(opts, io.stdout, io.stderr);
      if (code !== 0) throw new CliError('some events were not sent (see above)');
    });

  addStoreOptions(
    program
      .command('lineage')
      .summary('show the lineage tree of a stored partition')
      .description(
        'show how a stored partition was computed: its operators and parent partitions, down to the input blocks',
      ),
  )
    .argument(
      '[rdd]',
      "a stored RDD (ds3 or a stream's name), shuffle:<id>, or a saved output (its prefix or directory)",
    )
    .argument('[batch-time]', 'epoch ms, ISO time, a time of day as status prints it (11:43:11.400), or last')
    .argument('[partition]', 'partition number', '0')
    .option(
      '--list [batch-time]',
      'list what a batch stored (or, without a time, which batches still have stored RDDs)',
    )
    .option('--depth <n>', 'follow parents this many levels', (v) => parseInteger('--depth', v, 'levels'), 12)
    .option('--json', 'print the tree as JSON')
    .option('--dot', 'print the lineage as a Graphviz DOT graph (pipe to dot -Tsvg)')
    .action(async (rdd: string | undefined, batchTime: string | undefined, partition: string, opts) => {
      if (opts.list !== undefined) {
        const at: BatchTimeSpec | undefined =
          typeof opts.list === 'string'
            ? parseBatchTime('--list', opts.list)
            : batchTime
              ? parseBatchTime('<batch-time>', batchTime)
              : undefined;
        await lineageListCommand(at, opts, io.stdout);
        return;
      }
      requireLineageArgs(rdd, batchTime);
      if (opts.json && opts.dot) throw new UsageError('--dot', 'choose one of --json and --dot');
      await lineageCommand(
        rdd!,
        parseBatchTime('<batch-time>', batchTime),
        parseInteger('<partition>', partition, 'partition index', 0),
        opts,
        io.stdout,
      );
    });

  addHistoryCommands(program, io);
  return program;
}

/** `replay`, `batch` and `query`: batch and streaming in one system (docs/REPLAY.md). */
function addHistoryCommands(program: Command, io: CliIo): void {
  addStoreOptions(
    program
      .command('replay')
      .summary('re-run a pipeline over the retained input of a past range, into a new store')
      .description(
        're-run a pipeline (the same or a changed one) over the retained input of a store, as a backlog of batches, into a new store; the original store is never written',
      ),
  )
    .argument('<pipeline-module>', 'the pipeline to run (the original or a changed version)')
    .option('--into <dir>', 'the new store directory (required)')
    .option('--from <time>', 'first batch: epoch ms, ISO time or a time of day as status prints it', (v) =>
      parseBatchTime('--from', v),
    )
    .option('--to <time>', 'last batch (same forms as --from, or last)', (v) => parseBatchTime('--to', v))
    .option(
      '--workers <n>',
      'worker threads (default: one per core; 0 runs tasks in the driver thread)',
      (v) => parseInteger('--workers', v, 'worker threads', 0, 256),
    )
    .option('--quiet', 'no per-batch lines')
    .option('--json', 'print a JSON summary on stdout')
    .action(async (modulePath: string, opts) => {
      await replayCommand(modulePath, opts, io);
    });

  program
    .command('batch')
    .summary('run a pipeline over a bounded dataset (backfill), as one batch or batches by a time field')
    .description(
      'run a pipeline written for the stream over a bounded dataset: a file, a directory, s3://bucket/prefix, or store:<dir>#<output> (the saved outputs of another pipeline)',
    )
    .argument('<pipeline-module>', 'a module that default-exports (ctx: StreamingContext) => void')
    .requiredOption('--input <spec>', 'file | directory | s3://bucket/prefix | store:<dir>#<output name>')
    .addOption(
      new Option('--format <format>', 'lines | json (default lines; json with --time-field)').argParser((v) =>
        parseFormat('--format', v),
      ),
    )
    .option('--time-field <field>', 'cut records into batches by this field (epoch ms or ISO time)')
    .option('--interval <duration>', "batch interval (default: the module's options, else 1s)", (v) =>
      parseDuration('--interval', v),
    )
    .option('--partitions <n>', 'default partitions', (v) =>
      parseInteger('--partitions', v, 'partitions', 1, 10_000),
    )
    .option('--into <dir>', 'store directory for the run (default .sluice/<module name>-batch)')
    .option('--fresh', 'delete --into first')
    .option('--json', 'print a JSON summary on stdout')
    .action(async (modulePath: string, opts) => {
      await batchCommand(modulePath, opts, io);
    });

  addStoreOptions(
    program
      .command('query')
      .summary("read a stream's stored state or window as records")
      .description(
        "read the state or window RDD a stream stored at a batch (found by the stream's { name }), as records",
      ),
  )
    .argument('<stream-name>', "the stream's { name } (e.g. updateStateByKey(fn, { name: 'totals' }))")
    .option('--at <time>', 'batch time: epoch ms, ISO time, a time of day, or last (default last)', (v) =>
      parseBatchTime('--at', v),
    )
    .option('--top <n>', 'the n records with the largest values', (v) =>
      parseInteger('--top', v, 'records', 1),
    )
    .option(
      '--filter <expr>',
      'key=value, or a JavaScript expression over r (record), k and v (pair key and value)',
    )
    .option('--json', 'print one JSON object with the records')
    .action(async (name: string, opts) => {
      await queryCommand(name, opts, io);
    });
}

/** Runs the CLI on `argv` (as process.argv) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    if (argv.length <= 2) {
      program.outputHelp();
      return 0;
    }
    await program.parseAsync([...argv]);
    return 0;
  } catch (err) {
    return reportError(err, io);
  }
}

/** One line on stderr for errors users cause; a stack trace only for bugs or with SLUICE_DEBUG=1. */
export function reportError(err: unknown, io: CliIo): number {
  const debug = ['1', 'true', 'yes'].includes((io.env?.SLUICE_DEBUG ?? '').toLowerCase());
  const say = (text: string) => io.stderr(`sluice: ${text}\n`);
  const details = () => {
    if (!debug) return;
    let e: unknown = err;
    while (e instanceof Error) {
      io.stderr(`${e.stack ?? e.message}\n`);
      e = e.cause;
      if (e) io.stderr('caused by: ');
    }
  };
  if (err instanceof CommanderError) {
    // already printed by commander; help and version exit 0, usage mistakes 2
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof UsageError) {
    say(err.message);
    details();
    return 2;
  }
  if (err instanceof ConfigError) {
    const usage = usageErrorFromConfig(err);
    say(usage ? usage.message : err.message);
    details();
    return 2;
  }
  if (err instanceof PipelineLoadError) {
    say(err.message);
    if ((err.cause as NodeJS.ErrnoException | undefined)?.code === 'ERR_REQUIRE_CYCLE_MODULE') {
      io.stderr(
        '(Node loaded the module as CommonJS: no package.json with "type": "module" is above it. ' +
          'Rename it to .mts, or add one.)\n',
      );
    } else if (err.cause && !debug) io.stderr('(set SLUICE_DEBUG=1 to see where)\n');
    details();
    return 1;
  }
  if (err instanceof IncompatibleGraphError) {
    say(`${err.message} (sluice run --fresh starts the store over)`);
    details();
    return 1;
  }
  if (err instanceof SluiceError) {
    say(err.message);
    details();
    return 1;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  say(`unexpected error: ${e.message}`);
  if (debug) details();
  else io.stderr('(this looks like a bug in sluice; set SLUICE_DEBUG=1 for the stack trace and report it)\n');
  return 1;
}
