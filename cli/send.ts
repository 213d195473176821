/**
 * `sluice send`: pushes events to the pipeline's SQS queue, many events per message, in
 * batches of ten messages. Events come from a file or standard input (one per line, as text or
 * JSON), or from a pipeline module's `generate()` demo function.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseStoreUrl, STORE_TAG } from '../aws/asleep-marker.ts';
import { importPipelineModule, type PipelineModule } from '../shared/local/load-pipeline.ts';
import { CliError } from './errors.ts';

export interface SendOptions {
  readonly queue: string;
  readonly file?: string;
  /** How input lines are read. Default: the pipeline's wire format (`--pipeline`'s `options.format`, else the queue's `sluice:format` tag), else json. */
  readonly format?: 'lines' | 'json';
  readonly generate?: number;
  readonly pipeline?: string;
  readonly from?: number;
  readonly eventsPerMessage?: number;
  /** `--no-nudge`: false. Default: nudge a sleeping scheduler (docs/DEPLOY.md). */
  readonly nudge?: boolean;
}

export async function sendCommand(
  opts: SendOptions,
  out: (text: string) => void,
  err: (text: string) => void,
  input: NodeJS.ReadableStream = process.stdin,
): Promise<number> {
  const { SqsProducer } = await import('../aws/producer.ts');
  const module = opts.pipeline ? await importPipelineModule(opts.pipeline) : undefined;
  // the wire format is the pipeline's; --format only says how to read the input lines
  const tags = await queueTags(opts.queue);
  const { format: wire, from: formatFrom } = pipelineFormat(opts, module, tags);
  const format = opts.format ?? wire;
  // the nudge: the store the queue's sluice:store tag names (no tag: nothing to nudge)
  const store = tags[STORE_TAG] ? parseStoreUrl(tags[STORE_TAG]) : undefined;
  const producer = new SqsProducer({
    queueUrl: opts.queue,
    format: wire,
    maxEventsPerMessage: opts.eventsPerMessage ?? 100,
    nudge: opts.nudge !== false && store ? store : false,
  });
  const events: unknown[] = [];
  let bad = 0;
  if (opts.generate !== undefined) {
    if (!opts.pipeline)
      throw new CliError('--generate needs --pipeline <module> (whose generate(seq) makes the events)');
    const mod = module!;
    if (typeof mod.generate !== 'function')
      throw new CliError(`${opts.pipeline} exports no generate(seq) function`);
    const from = opts.from ?? 0;
    for (let i = 0; i < opts.generate; i++) events.push(mod.generate(from + i));
  } else {
    const lines = createInterface({
      input: opts.file ? createReadStream(opts.file) : input,
      crlfDelay: Infinity,
    });
    let n = 0;
    for await (const line of lines) {
      n++;
      if (format === 'lines') {
        // an empty line is no event (a `lines` body cannot carry one)
        if (line !== '') events.push(line);
        continue;
      }
      if (line.trim() === '') continue;
      try {
        events.push(JSON.parse(line));
      } catch (e) {
        bad++;
        err(`line ${n}: not valid JSON (${(e as Error).message}); not sent\n`);
      }
    }
  }
  const started = Date.now();
  const sent = await producer.send(events);
  out(
    `sent ${sent.events} events in ${sent.messages} messages (${sent.requests} SendMessageBatch requests, ` +
      `${sent.bytes} bytes, format ${wire} ${formatFrom}) in ${Date.now() - started} ms to ${opts.queue}\n`,
  );
  if (sent.nudge?.nudged) {
    out(
      `the pipeline was asleep: nudged its scheduler ${sent.nudge.nudged} (it wakes now, not at its next tick)\n`,
    );
  } else if (sent.nudge?.error) {
    err(
      `could not nudge the scheduler (${sent.nudge.error}); the events wait for its next tick, within a minute ` +
        '(grantSend grants the nudge; --no-nudge turns it off)\n',
    );
  }
  if (bad > 0) err(`${bad} lines were not valid JSON and were not sent (use --format lines to send text)\n`);
  return bad > 0 ? 1 : 0;
}

/**
 * The wire format to send in, the pipeline's: `--pipeline`'s `options.format`, else the
 * `sluice:format` tag the SluicePipeline construct puts on its queue, else json. (With json, text
 * lines go as JSON strings, which decode to the same events.)
 */
function pipelineFormat(
  opts: SendOptions,
  module: PipelineModule | undefined,
  tags: Record<string, string>,
): { format: 'json' | 'lines'; from: string } {
  const fromModule = (module?.options as { format?: unknown } | undefined)?.format;
  if (fromModule === 'json' || fromModule === 'lines')
    return { format: fromModule, from: `of ${opts.pipeline}` };
  const tagged = tags['sluice:format'];
  if (tagged === 'json' || tagged === 'lines')
    return { format: tagged, from: "of the queue's sluice:format tag" };
  return { format: 'json', from: '(the default)' };
}

/** The queue's tags (one ListQueueTags): its wire format and its pipeline's store. */
async function queueTags(queueUrl: string): Promise<Record<string, string>> {
  const { ListQueueTagsCommand } = await import('@aws-sdk/client-sqs');
  const { createSqsClient } = await import('../aws/clients.ts');
  try {
    return (await createSqsClient().send(new ListQueueTagsCommand({ QueueUrl: queueUrl }))).Tags ?? {};
  } catch {
    // no tag permission, or no such queue (sending will say so): the defaults, no nudge
    return {};
  }
}
