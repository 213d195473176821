import { createReadStream, promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import type { DeadLetter, ReceivedBatch, ReceiveRequest, Source } from '../ports/source.ts';

/**
 * The local sources of the embedded runner. Each buffers what arrives and hands the buffer over
 * once per batch; records beyond `maxRecords` (backpressure) stay buffered for the next batch.
 */

export type RecordFormat = 'lines' | 'json';

/** Decodes one line: as text, or as JSON (a bad line becomes a dead letter with the reason). */
export function decodeLine<T>(
  line: string,
  format: RecordFormat,
  origin: string,
  records: T[],
  deadLetters: DeadLetter[],
): void {
  if (format === 'lines') {
    records.push(line as T);
    return;
  }
  if (line.trim() === '') return;
  try {
    records.push(JSON.parse(line) as T);
  } catch (err) {
    deadLetters.push({ raw: line, reason: `not valid JSON: ${(err as Error).message}`, origin });
  }
}

/** A FIFO of records that hands out at most `max` per batch. */
class Buffer<T> {
  private items: T[] = [];
  private letters: DeadLetter[] = [];
  push(records: T[], deadLetters: DeadLetter[] = []): void {
    for (const r of records) this.items.push(r);
    for (const d of deadLetters) this.letters.push(d);
  }
  get size(): number {
    return this.items.length;
  }
  take(max?: number): ReceivedBatch<T> {
    let records: T[];
    if (max === undefined || this.items.length <= max) {
      records = this.items;
      this.items = [];
    } else {
      records = this.items.slice(0, max);
      this.items = this.items.slice(max);
    }
    const deadLetters = this.letters;
    this.letters = [];
    return { records, deadLetters };
  }
}

/**
 * Generates records at a fixed rate: `ratePerSec * interval` records per batch, computed from
 * the batch time, so a slow batch does not make the generator slower (the backlog is kept and
 * counted, which is what measuring a sustainable rate needs).
 *
 * With `skipDowntime` (as `sluice run` builds it), a generator resuming a store makes no records
 * for the time it was not running: the batches of the gap between the last committed batch and
 * its start are empty, as they would be for a real source that received nothing then.
 */
export class GeneratorSource<T> implements Source<T> {
  private seq = 0;
  private owed = 0;
  private readonly generate: (seq: number) => T;
  readonly ratePerSec: number;
  private readonly limit: number | undefined;
  private readonly skipDowntime: boolean;
  private startedAtMs = Date.now();
  private resumed = false;

  constructor(options: {
    ratePerSec: number;
    generate: (seq: number) => T;
    limit?: number;
    skipDowntime?: boolean;
  }) {
    this.ratePerSec = options.ratePerSec;
    this.generate = options.generate;
    this.limit = options.limit;
    this.skipDowntime = options.skipDowntime ?? false;
  }
  async start(): Promise<void> {
    this.startedAtMs = Date.now();
  }
  async receive(request: ReceiveRequest): Promise<ReceivedBatch<T>> {
    if (typeof request.resumeFrom === 'number') {
      this.seq = request.resumeFrom;
      this.resumed = true;
    }
    // the share of the interval (t - interval, t] this generator was running for
    const running =
      this.skipDowntime && this.resumed
        ? Math.min(1, Math.max(0, (request.batchTimeMs - this.startedAtMs) / request.intervalMs))
        : 1;
    this.owed += (this.ratePerSec * request.intervalMs * running) / 1000;
    let n = Math.floor(this.owed);
    if (request.maxRecords !== undefined) n = Math.min(n, request.maxRecords);
    if (this.limit !== undefined) n = Math.min(n, this.limit - this.seq);
    this.owed -= n;
    const records = new Array<T>(n);
    for (let i = 0; i < n; i++) records[i] = this.generate(this.seq++);
    return { records, deadLetters: [], position: this.seq };
  }
  /** Records due but not yet taken (grows while the pipeline falls behind). */
  get backlog(): number {
    return Math.floor(this.owed);
  }
  exhausted(): boolean {
    return this.limit !== undefined && this.seq >= this.limit;
  }
  describe(): string {
    return `generator(${this.ratePerSec}/s)`;
  }
}

/**
 * Reads a file line by line (all of it, then, with `follow`, what is appended). Its position is
 * the number of lines handed out, so a restarted run carries on after exactly those lines, also
 * when backpressure left some of the file unread.
 */
export class FileSource<T = string> implements Source<T> {
  private readonly path: string;
  private readonly format: RecordFormat;
  private readonly follow: boolean;
  private readonly linesPerBatch: number | undefined;
  /** Bytes read so far, and the unfinished last line. */
  private offset = 0;
  private partial = '';
  /** Lines read but not handed out yet. */
  private lines: string[] = [];
  /** Lines handed out (the position). */
  private handedOut = 0;
  private skip = 0;
  private started = false;

  constructor(
    path: string,
    options: { format?: RecordFormat; follow?: boolean; linesPerBatch?: number } = {},
  ) {
    this.path = path;
    this.format = options.format ?? 'lines';
    this.follow = options.follow ?? false;
    this.linesPerBatch = options.linesPerBatch;
  }
  async start(): Promise<void> {
    await fs.access(this.path).catch(() => {
      throw new Error(`input file ${this.path} does not exist or cannot be read`);
    });
  }
  private async readMore(): Promise<void> {
    const stat = await fs.stat(this.path);
    if (stat.size > this.offset) {
      const chunks: string[] = [];
      await new Promise<void>((resolve, reject) => {
        createReadStream(this.path, { start: this.offset, end: stat.size - 1, encoding: 'utf8' })
          .on('data', (c) => chunks.push(c as string))
          .on('end', resolve)
          .on('error', reject);
      });
      this.offset = stat.size;
      const text = this.partial + chunks.join('');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) this.lines.push(line);
    }
    if (!this.follow && this.partial) {
      this.lines.push(this.partial);
      this.partial = '';
    }
    // after a restart: drop the lines an earlier run already handed out
    if (this.skip > 0) {
      const n = Math.min(this.skip, this.lines.length);
      this.lines = this.lines.slice(n);
      this.skip -= n;
      this.handedOut += n;
    }
  }
  async receive(request: ReceiveRequest): Promise<ReceivedBatch<T>> {
    if (!this.started) {
      this.started = true;
      if (typeof request.resumeFrom === 'object' && request.resumeFrom !== null) {
        this.skip = Number((request.resumeFrom as { line?: number }).line ?? 0);
      }
      await this.readMore();
    } else if (this.follow) await this.readMore();
    const max = Math.min(request.maxRecords ?? Infinity, this.linesPerBatch ?? Infinity, this.lines.length);
    const taken = this.lines.slice(0, max);
    this.lines = this.lines.slice(max);
    const records: T[] = [];
    const deadLetters: DeadLetter[] = [];
    for (const line of taken)
      decodeLine(line, this.format, `${this.path}:${++this.handedOut}`, records, deadLetters);
    return { records, deadLetters, position: { line: this.handedOut } };
  }
  exhausted(): boolean {
    return !this.follow && this.started && this.lines.length === 0;
  }
  describe(): string {
    return `file(${this.path})`;
  }
}

/** Lines from standard input (or any readable stream). */
export class StdinSource<T = string> implements Source<T> {
  private readonly buffer = new Buffer<T>();
  private ended = false;
  private lineNo = 0;
  private readonly format: RecordFormat;
  private readonly input: NodeJS.ReadableStream;

  constructor(options: { format?: RecordFormat; input?: NodeJS.ReadableStream } = {}) {
    this.format = options.format ?? 'lines';
    this.input = options.input ?? process.stdin;
  }
  async start(): Promise<void> {
    const rl = createInterface({ input: this.input, crlfDelay: Infinity });
    rl.on('line', (line) => {
      const records: T[] = [];
      const letters: DeadLetter[] = [];
      decodeLine(line, this.format, `stdin:${++this.lineNo}`, records, letters);
      this.buffer.push(records, letters);
    });
    rl.on('close', () => {
      this.ended = true;
    });
  }
  async receive(request: ReceiveRequest): Promise<ReceivedBatch<T>> {
    return this.buffer.take(request.maxRecords);
  }
  exhausted(): boolean {
    return this.ended && this.buffer.size === 0;
  }
  describe(): string {
    return 'stdin';
  }
}

/**
 * A small HTTP ingest endpoint on 127.0.0.1: `POST /events` with a body of lines (or JSON lines,
 * or one JSON array of events). Answers 202 with the number of events taken.
 */
export class HttpSource<T = string> implements Source<T> {
  private readonly buffer = new Buffer<T>();
  private server: Server | undefined;
  private readonly port: number;
  private readonly host: string;
  private readonly format: RecordFormat;
  private requests = 0;

  constructor(options: { port?: number; host?: string; format?: RecordFormat } = {}) {
    this.port = options.port ?? 8787;
    this.host = options.host ?? '127.0.0.1';
    this.format = options.format ?? 'lines';
  }
  get url(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    return `http://${this.host}:${address?.port ?? this.port}/events`;
  }
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      if (req.method !== 'POST' || !req.url?.startsWith('/events')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'POST events to /events' }));
        return;
      }
      const chunks: Uint8Array[] = [];
      req.on('data', (c: Uint8Array) => chunks.push(c));
      req.on('end', () => {
        const body = globalThis.Buffer.concat(chunks).toString('utf8');
        const origin = `http:${++this.requests}`;
        const records: T[] = [];
        const letters: DeadLetter[] = [];
        const trimmed = body.trim();
        if (this.format === 'json' && trimmed.startsWith('[')) {
          try {
            for (const e of JSON.parse(trimmed) as T[]) records.push(e);
          } catch (err) {
            letters.push({ raw: body, reason: `not valid JSON: ${(err as Error).message}`, origin });
          }
        } else {
          for (const line of body.split('\n'))
            if (line !== '') decodeLine(line, this.format, origin, records, letters);
        }
        this.buffer.push(records, letters);
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ accepted: records.length, deadLettered: letters.length }));
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.port, this.host, () => resolve());
    });
  }
  async receive(request: ReceiveRequest): Promise<ReceivedBatch<T>> {
    return this.buffer.take(request.maxRecords);
  }
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
  describe(): string {
    return `http(${this.url})`;
  }
}
