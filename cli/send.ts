/**
 * `sluice send`: pushes events to the pipeline's SQS queue, many events per message, in
 * batches of ten messages. Events come from a file or standard input (one per line, as text or
 * JSON), or from a pipeline module's `generate()` demo function.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { importPipelineModule } from '../shared/local/load-pipeline.ts';
import { CliError } from './errors.ts';

export interface SendOptions {
  readonly queue: string;
  readonly file?: string;
  readonly format: 'lines' | 'json';
  readonly generate?: number;
  readonly pipeline?: string;
  readonly from?: number;
  readonly eventsPerMessage?: number;
}

export async function sendCommand(
  opts: SendOptions,
  out: (text: string) => void,
  err: (text: string) => void,
  input: NodeJS.ReadableStream = process.stdin,
): Promise<number> {
  const { SqsProducer } = await import('../aws/producer.ts');
  const producer = new SqsProducer({
    queueUrl: opts.queue,
    maxEventsPerMessage: opts.eventsPerMessage ?? 100,
  });
  const events: unknown[] = [];
  let bad = 0;
  if (opts.generate !== undefined) {
    if (!opts.pipeline)
      throw new CliError('--generate needs --pipeline <module> (whose generate(seq) makes the events)');
    const mod = await importPipelineModule(opts.pipeline);
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
      if (opts.format === 'lines') {
        events.push(line);
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
      `${sent.bytes} bytes) in ${Date.now() - started} ms to ${opts.queue}\n`,
  );
  if (bad > 0) err(`${bad} lines were not valid JSON and were not sent (use --format lines to send text)\n`);
  return bad > 0 ? 1 : 0;
}
