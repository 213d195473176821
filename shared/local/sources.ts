/**
 * The local sources of the embedded runner. Each buffers what arrives and hands the buffer over
 * once per batch; records beyond `maxRecords` (backpressure) stay buffered for the next batch.
 * All of them decode bytes the same way (shared/local/line-decoder.ts): CRLF is stripped, invalid
 * UTF-8 and bad JSON are dead-lettered with the reason.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { SluiceError } from '../errors.ts';
import type { DeadLetter, ReceivedBatch, ReceiveRequest, Source } from '../ports/source.ts';
import {
  decodeLine,
  decodeLineBytes,
  invalidUtf8At,
  LineSplitter,
  parseJsonRecord,
  type RecordFormat,
} from './line-decoder.ts';

export { decodeLine, type RecordFormat };

/** A FIFO of records that hands out at most `max` per batch. */
class RecordQueue<T> {
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
  /** Records are made by time: a block generator takes them during the interval (issue 14). */
  readonly continuous = true;
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
      this.skipDowntime && this.resumed && request.sliceMs === undefined
        ? Math.min(1, Math.max(0, (request.batchTimeMs - this.startedAtMs) / request.intervalMs))
        : 1;
    // taken by a block generator during the interval: the records of the time since its last take
    this.owed += (this.ratePerSec * (request.sliceMs ?? request.intervalMs) * running) / 1000;
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
 * Where a file source stands, saved with each batch's write-ahead entry: which file (its path,
 * device and inode, its size then, a hash of its first bytes) and how far it was handed out (byte
 * offset and line count). A restarted source resumes only from the same file.
 */
export interface FilePosition {
  readonly kind: 'file';
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
  /** The file's size when this position was taken (a smaller file now means it was truncated). */
  readonly size: number;
  /** sha256 of the file's first `headBytes` bytes. */
  readonly headBytes: number;
  readonly headSha256: string;
  /** Bytes handed out: the offset right after the last line handed out. */
  readonly offset: number;
  /** Lines handed out. */
  readonly line: number;
}

/** A restarted source was given a position it cannot resume from (another input). */
export class SourcePositionError extends SluiceError {
  constructor(message: string) {
    super(message);
    this.name = 'SourcePositionError';
  }
}

const HEAD_BYTES = 4096;
const WHAT_TO_DO =
  'Run with --fresh to start over in this store (it deletes the store, so the file is read from its beginning), or use another store with --store <dir>.';

async function headHash(handle: fs.FileHandle, bytes: number): Promise<string> {
  const buf = Buffer.alloc(bytes);
  let got = 0;
  while (got < bytes) {
    const { bytesRead } = await handle.read(buf, got, bytes - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return createHash('sha256').update(buf.subarray(0, got)).digest('hex');
}

interface QueuedLine {
  readonly bytes: Buffer;
  /** File offset right after the line (and its `\n`). */
  readonly end: number;
}

/**
 * Reads a file line by line, streaming: it reads `chunkBytes` at a time from a byte offset and only
 * as far as the batch needs (at most `linesPerBatch` lines and about `bytesPerBatch` bytes a batch,
 * fewer under backpressure), so memory is bounded by the batch, whatever the file's size. With
 * `follow`, it goes on reading what is appended. Its position (`FilePosition`) ties the byte offset
 * of the lines handed out to the file's identity: a restart resumes after exactly those lines, and a
 * different or truncated file is refused.
 */
export class FileSource<T = string> implements Source<T> {
  /** Reads as it goes: a block generator takes lines during the interval (issue 14). */
  readonly continuous = true;
  private readonly path: string;
  private readonly format: RecordFormat;
  private readonly follow: boolean;
  private readonly linesPerBatch: number;
  private readonly bytesPerBatch: number;
  private readonly chunkBytes: number;
  private handle: fs.FileHandle | undefined;
  private identity: Omit<FilePosition, 'offset' | 'line' | 'kind'> | undefined;
  private readonly splitter = new LineSplitter();
  /** Where the next read starts, and where the splitter's next line starts. */
  private readOffset = 0;
  private lineStart = 0;
  /** Lines read but not handed out yet (at most a chunk's worth beyond the batch). */
  private queue: QueuedLine[] = [];
  private queuedBytes = 0;
  /** Bytes and lines handed out (the position). */
  private offset = 0;
  private handedOut = 0;
  private eof = false;
  private resumed = false;
  private started = false;

  constructor(
    file: string,
    options: {
      format?: RecordFormat;
      follow?: boolean;
      /** At most this many lines a batch (default 100,000). */
      linesPerBatch?: number;
      /** Stop reading for a batch once this many bytes are queued (default 32 MiB). */
      bytesPerBatch?: number;
      /** Bytes per read (default 64 KiB). */
      chunkBytes?: number;
    } = {},
  ) {
    this.path = file;
    this.format = options.format ?? 'lines';
    this.follow = options.follow ?? false;
    this.linesPerBatch = options.linesPerBatch ?? 100_000;
    this.bytesPerBatch = options.bytesPerBatch ?? 32 * 1024 * 1024;
    this.chunkBytes = options.chunkBytes ?? 64 * 1024;
  }

  private async open(): Promise<fs.FileHandle> {
    if (this.handle) return this.handle;
    const handle = await fs.open(this.path, 'r').catch(() => {
      throw new SluiceError(`input file ${this.path} does not exist or cannot be read`);
    });
    const stat = await handle.stat();
    const headBytes = Math.min(HEAD_BYTES, stat.size);
    this.identity = {
      path: path.resolve(this.path),
      dev: stat.dev,
      ino: stat.ino,
      size: stat.size,
      headBytes,
      headSha256: await headHash(handle, headBytes),
    };
    this.handle = handle;
    return handle;
  }

  async start(): Promise<void> {
    await this.open();
  }

  /**
   * Resumes from the position saved with the last received batch, or refuses it: a position of
   * another file (path, inode, first bytes) or of a longer file (truncated since) fails with what
   * to do. A position without identity (older stores) skips that many lines.
   */
  async resume(position: unknown): Promise<void> {
    if (this.resumed) return;
    this.resumed = true;
    await this.resumeFrom(position).catch(async (err: unknown) => {
      await this.stop();
      throw err;
    });
  }

  private async resumeFrom(position: unknown): Promise<void> {
    const handle = await this.open();
    const id = this.identity!;
    const p = (position ?? {}) as Partial<FilePosition>;
    if (p.kind !== 'file') {
      if (typeof p === 'object' && typeof p.line === 'number' && p.offset === undefined) {
        await this.skipLines(p.line);
        return;
      }
      throw new SourcePositionError(
        `this store's input was read from another kind of source (saved position ${JSON.stringify(position)}), not from file ${this.path}. ${WHAT_TO_DO}`,
      );
    }
    const saved = p as FilePosition;
    const refuse = (why: string) =>
      new SourcePositionError(
        `this store already read ${saved.line} lines (${saved.offset} bytes) of ${saved.path}; ${why}, so it cannot carry on where it stopped. ${WHAT_TO_DO}`,
      );
    if (saved.path !== id.path) throw refuse(`this run reads another file, ${id.path}`);
    if (saved.dev !== id.dev || saved.ino !== id.ino)
      throw refuse(`${id.path} is now another file (a different inode: replaced or rotated)`);
    if (id.size < saved.size || id.size < saved.offset)
      throw refuse(`${id.path} is shorter now (${id.size} bytes, was ${saved.size}): it was truncated`);
    const head = saved.headBytes === id.headBytes ? id.headSha256 : await headHash(handle, saved.headBytes);
    if (head !== saved.headSha256) throw refuse(`the first ${saved.headBytes} bytes of ${id.path} changed`);
    this.offset = this.readOffset = this.lineStart = saved.offset;
    this.handedOut = saved.line;
  }

  /** Older positions counted lines only: read past that many lines. */
  private async skipLines(n: number): Promise<void> {
    while (this.handedOut < n) {
      if (this.queue.length === 0 && !(await this.readChunk())) break;
      const k = Math.min(n - this.handedOut, this.queue.length);
      const last = this.queue[k - 1]!;
      for (let i = 0; i < k; i++) this.queuedBytes -= this.queue[i]!.bytes.length;
      this.queue = this.queue.slice(k);
      this.offset = last.end;
      this.handedOut += k;
    }
  }

  /** Reads one chunk into the queue; false at the end of the file (for now, with `follow`). */
  private async readChunk(): Promise<boolean> {
    if (this.eof) return false;
    const handle = await this.open();
    const buf = Buffer.allocUnsafe(this.chunkBytes);
    const { bytesRead } = await handle.read(buf, 0, this.chunkBytes, this.readOffset);
    const onLine = (line: Buffer) => {
      const end = this.lineStart + line.length + 1;
      this.queue.push({ bytes: Buffer.from(line), end });
      this.queuedBytes += line.length;
      this.lineStart = end;
    };
    if (bytesRead === 0) {
      if (!this.follow) {
        // the last line need not end with \n
        this.splitter.end((line) => {
          this.queue.push({ bytes: Buffer.from(line), end: this.lineStart + line.length });
          this.lineStart += line.length;
        });
        this.eof = true;
        await this.handle?.close();
        this.handle = undefined;
      }
      return false;
    }
    this.readOffset += bytesRead;
    this.splitter.push(buf.subarray(0, bytesRead), onLine);
    return true;
  }

  async receive(request: ReceiveRequest): Promise<ReceivedBatch<T>> {
    if (!this.started) {
      this.started = true;
      if (request.resumeFrom !== undefined) await this.resume(request.resumeFrom);
      await this.open();
    }
    if (this.follow && this.identity) {
      const size = (await this.handle!.stat()).size;
      if (size > this.identity.size) this.identity = { ...this.identity, size };
    }
    // taken during the interval (a block generator): the caps are per interval, so a slice's share
    const share = request.sliceMs === undefined ? 1 : Math.min(1, request.sliceMs / request.intervalMs);
    const lineCap = Math.max(1, Math.ceil(this.linesPerBatch * share));
    const byteCap = Math.max(1, Math.ceil(this.bytesPerBatch * share));
    const max = Math.min(request.maxRecords ?? Infinity, lineCap);
    while (this.queue.length < max && this.queuedBytes < byteCap) {
      if (!(await this.readChunk())) break;
    }
    // hand out whole lines up to the caps (at least one line, however long)
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && n < max && (n === 0 || bytes < byteCap)) {
      bytes += this.queue[n]!.bytes.length;
      n++;
    }
    const taken = this.queue.slice(0, n);
    this.queue = this.queue.slice(n);
    this.queuedBytes -= bytes;
    const records: T[] = [];
    const deadLetters: DeadLetter[] = [];
    for (const line of taken) {
      decodeLineBytes(line.bytes, this.format, `${this.path}:${++this.handedOut}`, records, deadLetters);
      this.offset = line.end;
    }
    const position: FilePosition = {
      kind: 'file',
      ...this.identity!,
      offset: this.offset,
      line: this.handedOut,
    };
    return { records, deadLetters, position };
  }
  exhausted(): boolean {
    return !this.follow && this.started && this.eof && this.queue.length === 0;
  }
  async stop(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }
  describe(): string {
    return `file(${this.path})`;
  }
}

/**
 * Lines from standard input (or any readable stream), decoded like a file's (CRLF stripped,
 * invalid UTF-8 dead-lettered). Standard input cannot be acknowledged or re-read: lines read but not
 * yet in a committed write-ahead entry are lost if the process dies. Reading pauses while
 * `maxBuffered` records wait, so a fast producer cannot fill the memory.
 */
export class StdinSource<T = string> implements Source<T> {
  /** Buffers: a block generator takes what arrived during the interval (issue 14). */
  readonly continuous = true;
  private readonly buffer = new RecordQueue<T>();
  private readonly splitter = new LineSplitter();
  private ended = false;
  private paused = false;
  private lineNo = 0;
  private readonly format: RecordFormat;
  private readonly input: NodeJS.ReadableStream;
  private readonly maxBuffered: number;

  constructor(options: { format?: RecordFormat; input?: NodeJS.ReadableStream; maxBuffered?: number } = {}) {
    this.format = options.format ?? 'lines';
    this.input = options.input ?? process.stdin;
    this.maxBuffered = options.maxBuffered ?? 1_000_000;
  }
  private onLine = (line: Buffer): void => {
    const records: T[] = [];
    const letters: DeadLetter[] = [];
    decodeLineBytes(line, this.format, `stdin:${++this.lineNo}`, records, letters);
    this.buffer.push(records, letters);
  };
  async start(): Promise<void> {
    this.input.on('data', (chunk: Buffer | string) => {
      this.splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk, this.onLine);
      if (this.buffer.size >= this.maxBuffered && !this.paused) {
        this.paused = true;
        this.input.pause();
      }
    });
    this.input.on('end', () => {
      this.splitter.end(this.onLine);
      this.ended = true;
    });
  }
  async receive(request: ReceiveRequest): Promise<ReceivedBatch<T>> {
    const batch = this.buffer.take(request.maxRecords);
    if (this.paused && this.buffer.size < this.maxBuffered) {
      this.paused = false;
      this.input.resume();
    }
    return batch;
  }
  exhausted(): boolean {
    return this.ended && this.buffer.size === 0;
  }
  describe(): string {
    return 'stdin';
  }
}

/** A POST whose 202 waits until all its records are in a write-ahead entry. */
interface HeldRequest {
  readonly res: ServerResponse;
  readonly accepted: number;
  readonly deadLettered: number;
  /** Records and dead letters not yet stored. */
  unstored: number;
  answered: boolean;
}

interface HeldRecords<T> {
  readonly req: HeldRequest;
  readonly records: T[];
  next: number;
}

/** What a batch took from which request; `ack` answers the requests it completes. */
type HttpAckToken = Map<HeldRequest, number>;

export interface HttpSourceOptions {
  port?: number;
  host?: string;
  format?: RecordFormat;
  /** Largest request body accepted; larger ones get 413 (default 8 MiB). */
  maxBodyBytes?: number;
}

/**
 * A small HTTP ingest endpoint on 127.0.0.1: `POST /events` (a query string is allowed) with a body
 * of lines (or JSON lines, or one JSON array of events). It answers 202 only once every record of
 * the request is in a batch's write-ahead entry (the driver's `ack`), so a 202 is never lost; a
 * request waits about one batch interval for it. A request whose batch failed, or that is still
 * waiting when the source stops, gets 503 with `Retry-After` and should be sent again (at least
 * once). Bodies over `maxBodyBytes` get 413, other methods on /events 405, other paths 404.
 */
export class HttpSource<T = string> implements Source<T> {
  /** Buffers: a block generator takes requests during the interval (issue 14). */
  readonly continuous = true;
  private server: Server | undefined;
  private readonly port: number;
  private readonly host: string;
  private readonly format: RecordFormat;
  readonly maxBodyBytes: number;
  private requests = 0;
  private queue: HeldRecords<T>[] = [];
  private letters: { req: HeldRequest; letter: DeadLetter }[] = [];
  /** Tokens handed to the driver and not acknowledged yet. */
  private outstanding = new Set<HttpAckToken>();
  /** Requests that have not been answered. */
  private held = new Set<HeldRequest>();
  private stopping = false;

  constructor(options: HttpSourceOptions = {}) {
    this.port = options.port ?? 8787;
    this.host = options.host ?? '127.0.0.1';
    this.format = options.format ?? 'lines';
    this.maxBodyBytes = options.maxBodyBytes ?? 8 * 1024 * 1024;
  }
  get url(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    return `http://${this.host}:${address?.port ?? this.port}/events`;
  }

  private answer(
    res: ServerResponse,
    status: number,
    body: object,
    headers: Record<string, string> = {},
  ): void {
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  private retryLater(req: HeldRequest, why: string): void {
    if (req.answered) return;
    req.answered = true;
    this.held.delete(req);
    this.answer(
      req.res,
      503,
      { error: `${why}; nothing of this request was acknowledged, send it again` },
      {
        'retry-after': '1',
      },
    );
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (pathname !== '/events') {
      this.answer(res, 404, { error: `no such path ${pathname}: POST events to /events` });
      return;
    }
    if (req.method !== 'POST') {
      this.answer(
        res,
        405,
        { error: `${req.method} is not allowed: POST events to /events` },
        { allow: 'POST' },
      );
      return;
    }
    if (this.stopping) {
      this.answer(res, 503, { error: 'the pipeline is stopping; send again later' }, { 'retry-after': '1' });
      return;
    }
    const tooLarge = () =>
      this.answer(
        res,
        413,
        { error: `request body over ${this.maxBodyBytes} bytes; send smaller requests` },
        { connection: 'close' },
      );
    if (Number(req.headers['content-length'] ?? 0) > this.maxBodyBytes) {
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let rejected = false;
    req.on('data', (c: Buffer) => {
      if (rejected) return;
      size += c.length;
      if (size > this.maxBodyBytes) {
        rejected = true;
        chunks.length = 0;
        tooLarge();
        res.once('finish', () => req.destroy());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (rejected) return;
      this.take(Buffer.concat(chunks), res);
    });
  }

  /** Decodes a body and holds its response until its records are stored. */
  private take(body: Buffer, res: ServerResponse): void {
    if (this.stopping) {
      this.answer(res, 503, { error: 'the pipeline is stopping; send again later' }, { 'retry-after': '1' });
      return;
    }
    const origin = `http:${++this.requests}`;
    const records: T[] = [];
    const letters: DeadLetter[] = [];
    const text = body.toString('utf8').trim();
    // one JSON array of events only if the whole body is one; otherwise JSON lines, where a line
    // holding an array is one event (an array), and a body that is neither is decoded line by line
    const array =
      this.format === 'json' && text.startsWith('[') && invalidUtf8At(body) < 0
        ? parseJsonRecord(text)
        : undefined;
    if (array && 'value' in array && Array.isArray(array.value)) {
      for (const e of array.value) records.push(e as T);
    } else {
      const splitter = new LineSplitter();
      let line = 0;
      const onLine = (bytes: Buffer) => {
        line++;
        if (bytes.length === 0 || (bytes.length === 1 && bytes[0] === 0x0d)) return;
        decodeLineBytes(bytes, this.format, `${origin}:${line}`, records, letters);
      };
      splitter.push(body, onLine);
      splitter.end(onLine);
    }
    const held: HeldRequest = {
      res,
      accepted: records.length,
      deadLettered: letters.length,
      unstored: records.length + letters.length,
      answered: false,
    };
    if (held.unstored === 0) {
      this.answer(res, 202, { accepted: 0, deadLettered: 0 });
      return;
    }
    this.held.add(held);
    res.on('close', () => this.held.delete(held));
    if (records.length > 0) this.queue.push({ req: held, records, next: 0 });
    for (const letter of letters) this.letters.push({ req: held, letter });
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.port, this.host, () => resolve());
    });
  }

  /** Records held, waiting for a batch (for tests and logs). */
  get buffered(): number {
    return this.queue.reduce((n, h) => n + h.records.length - h.next, 0);
  }

  async receive(request: ReceiveRequest): Promise<ReceivedBatch<T>> {
    // a token still outstanding belongs to a batch that failed before its write-ahead entry:
    // its requests get 503 (and are sent again), and what is left of them is dropped. Taken by a
    // block generator (sliceMs), tokens wait for the entry listing their cut: it keeps a cut whose
    // entry failed and lists it again, so none is failed here.
    if (request.sliceMs === undefined) {
      for (const token of this.outstanding) this.fail(token, 'the batch holding this request failed');
      this.outstanding.clear();
    }
    const max = request.maxRecords ?? Infinity;
    const token: HttpAckToken = new Map();
    const records: T[] = [];
    while (this.queue.length > 0 && records.length < max) {
      const h = this.queue[0]!;
      const n = Math.min(max - records.length, h.records.length - h.next);
      for (let i = h.next; i < h.next + n; i++) records.push(h.records[i]!);
      h.next += n;
      token.set(h.req, (token.get(h.req) ?? 0) + n);
      if (h.next === h.records.length) this.queue.shift();
    }
    const deadLetters: DeadLetter[] = [];
    for (const { req, letter } of this.letters) {
      deadLetters.push(letter);
      token.set(req, (token.get(req) ?? 0) + 1);
    }
    this.letters = [];
    if (token.size === 0) return { records, deadLetters };
    this.outstanding.add(token);
    return { records, deadLetters, ackToken: token };
  }

  /** The batch holding these records is durable: answer 202 to every request now fully stored. */
  async ack(token: unknown): Promise<void> {
    const t = token as HttpAckToken;
    if (!this.outstanding.delete(t)) return;
    for (const [req, n] of t) {
      req.unstored -= n;
      if (req.unstored === 0 && !req.answered) {
        req.answered = true;
        this.held.delete(req);
        this.answer(req.res, 202, { accepted: req.accepted, deadLettered: req.deadLettered });
      }
    }
  }

  private fail(token: HttpAckToken, why: string): void {
    const failed = new Set(token.keys());
    for (const req of failed) this.retryLater(req, why);
    this.queue = this.queue.filter((h) => !failed.has(h.req));
    this.letters = this.letters.filter((l) => !failed.has(l.req));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const req of [...this.held])
      this.retryLater(req, 'the pipeline stopped before storing this request');
    this.queue = [];
    this.letters = [];
    this.outstanding.clear();
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }
  describe(): string {
    return `http(${this.url})`;
  }
}
