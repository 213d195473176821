/**
 * Where a pipeline is built and fixed: the `StreamingContext` (input streams, batch interval,
 * default parallelism), the graph of its DStreams and output operations (`DStreamGraph`, frozen
 * when the runner starts, its fingerprint checked on resume) and the `Pipeline` that generates
 * the RDDs of any batch.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { ConfigError, GraphError } from '../errors.ts';
import type { Source } from '../ports/source.ts';
import { BatchGeneration, type Shape } from './generation.ts';
import { layout } from './layout.ts';
import { checkPartitions, StoredRDD } from './rdd.ts';
import { DStream, type OutputOperation } from './streams.ts';

export interface StreamingContextOptions {
  /** The batch interval in milliseconds (100 ms to minutes; 1000 is the usual). */
  readonly batchIntervalMs: number;
  /** Partitions of input blocks and the default for shuffles. Default 2. */
  readonly partitions?: number;
  /** Where `print()` writes. Default: standard output. */
  readonly printer?: (text: string) => void;
  /**
   * What happens when user code throws on a record: `deadLetter` (default) writes the record and
   * the error to the batch's dead-letter area and goes on; `fail` fails the task (and, after its
   * retries, the batch), as Spark does.
   */
  readonly onRecordError?: 'deadLetter' | 'fail';
}

/** How an input stream gets its records: a source built on the driver, or one bound by the runner. */
export interface InputBinding {
  readonly name: string;
  /** Builds the source on the driver; absent for `inputStream()`, which the runner binds (CLI --source, SQS). */
  readonly factory?: () => Source<unknown>;
  readonly partitions: number;
}

/** A materialized stream as recorded in meta/graph.json, to check compatibility on resume. */
export interface PersistedStreamDescription {
  readonly name: string;
  readonly kind: string;
  readonly params: Record<string, unknown>;
  readonly partitions: number | null;
}

/**
 * The graph of DStreams and output operations. Frozen when the runner starts; its fingerprint
 * (structure only, not function bodies) is stored with every batch and checked on resume.
 */
export class DStreamGraph {
  readonly streams: DStream<unknown>[] = [];
  readonly outputs: OutputOperation[] = [];
  readonly inputs = new Map<number, InputBinding>();
  private frozen = false;

  register(stream: DStream<unknown>): number {
    if (this.frozen) throw new GraphError('Cannot add streams after the pipeline has started');
    this.streams.push(stream);
    return this.streams.length - 1;
  }

  addOutput(op: OutputOperation): void {
    if (this.frozen) throw new GraphError('Cannot add output operations after the pipeline has started');
    this.outputs.push(op);
  }

  freeze(): void {
    if (this.outputs.length === 0) {
      throw new GraphError(
        'The pipeline has no output operation: add print(), foreachRDD(), saveAsTextFiles() or saveAsJsonLines()',
      );
    }
    const names = new Map<string, DStream<unknown>>();
    for (const s of this.streams) {
      if (!s.persisted) continue;
      const other = names.get(s.storageName);
      if (other && other !== s)
        throw new GraphError(`Two stateful streams are both named '${s.storageName}'`);
      names.set(s.storageName, s);
    }
    this.frozen = true;
  }

  get isFrozen(): boolean {
    return this.frozen;
  }

  describe(): { streams: unknown[]; outputs: unknown[] } {
    return {
      streams: this.streams.map((s) => ({
        id: s.id,
        kind: s.kind,
        name: s.storageName,
        parents: s.parents.map((p) => p.id),
        params: s.params,
        slideMs: s.slideMs,
        persisted: s.persisted,
      })),
      outputs: this.outputs.map((o) => ({
        stream: o.stream.id,
        kind: o.kind,
        label: o.label,
        save: o.save ?? null,
      })),
    };
  }

  persistedStreams(): PersistedStreamDescription[] {
    return this.streams
      .filter((s) => s.persisted)
      .map((s) => ({
        name: s.storageName,
        kind: s.kind,
        params: s.params,
        partitions: s.fixedShape?.numPartitions ?? null,
      }));
  }
}

/**
 * Where a pipeline is built: input streams come from here, and its options fix the batch
 * interval and default parallelism.
 *
 * @example
 * ```ts
 * export default function wordCount(ctx: StreamingContext) {
 *   ctx.inputStream<string>()
 *     .flatMap((line) => line.split(' '))
 *     .map((w) => [w, 1] as [string, number])
 *     .reduceByKey((a, b) => a + b)
 *     .print();
 * }
 * ```
 */
export class StreamingContext {
  readonly batchIntervalMs: number;
  readonly defaultPartitions: number;
  readonly onRecordError: 'deadLetter' | 'fail';
  readonly graph = new DStreamGraph();
  printer: (text: string) => void;

  constructor(options: StreamingContextOptions) {
    const interval = options?.batchIntervalMs;
    if (typeof interval !== 'number' || !Number.isInteger(interval) || interval < 1) {
      throw new ConfigError(
        'batchIntervalMs',
        `must be a positive whole number of milliseconds, got ${interval}`,
      );
    }
    const partitions = options.partitions ?? 2;
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 10_000) {
      throw new ConfigError('partitions', `must be a whole number from 1 to 10000, got ${partitions}`);
    }
    this.batchIntervalMs = interval;
    this.defaultPartitions = partitions;
    const onRecordError = options.onRecordError ?? 'deadLetter';
    if (onRecordError !== 'deadLetter' && onRecordError !== 'fail') {
      throw new ConfigError(
        'onRecordError',
        `must be 'deadLetter' or 'fail', got '${String(onRecordError)}'`,
      );
    }
    this.onRecordError = onRecordError;
    this.printer = options.printer ?? ((text) => process.stdout.write(text));
  }

  /**
   * The pipeline's main input, bound by the runner: `sluice run --source ...` locally, the SQS
   * queue on AWS, the test input in `runBatches`.
   */
  inputStream<T = string>(name = 'input', options: { partitions?: number } = {}): DStream<T> {
    return this.addInput<T>(name, undefined, options.partitions);
  }

  /** Input from a source object (see `shared/local/sources.ts` for the local ones). */
  sourceStream<T>(name: string, factory: () => Source<T>, options: { partitions?: number } = {}): DStream<T> {
    return this.addInput<T>(name, factory as () => Source<unknown>, options.partitions);
  }

  /**
   * A test source: `batches[i]` is the i-th batch (empty batches after the end), split into
   * `partitions` contiguous slices. Only the driver holds the data; workers read input blocks.
   */
  queueStream<T>(
    batches: readonly (readonly T[])[],
    options: { name?: string; partitions?: number } = {},
  ): DStream<T> {
    let next = 0;
    const source: Source<T> = {
      async receive(request) {
        if (typeof request.resumeFrom === 'number') next = request.resumeFrom;
        const records = (batches[next++] ?? []).slice();
        return { records, deadLetters: [], position: next };
      },
      exhausted: () => next >= batches.length,
      describe: () => `queue(${batches.length} batches)`,
    };
    const name = options.name ?? `queue${this.graph.inputs.size}`;
    return this.sourceStream<T>(name, () => source, options);
  }

  /**
   * A dataset kept in the store (JSON lines or text lines), the same every batch: for joining a
   * stream with static data, e.g. `clicks.join(ctx.storedDataset('datasets/pages.jsonl'))`.
   */
  storedDataset<T>(
    key: string,
    options: { format?: 'jsonl' | 'text'; partitions?: number } = {},
  ): DStream<T> {
    const format = options.format ?? (key.endsWith('.jsonl') || key.endsWith('.json') ? 'jsonl' : 'text');
    const partitions = options.partitions ?? this.defaultPartitions;
    checkPartitions(partitions, 'storedDataset');
    return new DStream<T>(
      this,
      'storedDataset',
      [],
      (_t, g) =>
        new StoredRDD<T>(g, {
          operator: 'storedDataset',
          storedTimeMs: 0,
          storedName: `dataset:${key}`,
          numPartitions: partitions,
          keyOf: () => key,
          format,
        }),
      { params: { key, format, partitions } },
    );
  }

  private addInput<T>(
    name: string,
    factory: (() => Source<unknown>) | undefined,
    partitions?: number,
  ): DStream<T> {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
      throw new ConfigError(
        'name',
        `input stream names may use letters, digits, '_', '.' and '-', got '${name}'`,
      );
    }
    for (const b of this.graph.inputs.values()) {
      if (b.name === name) throw new GraphError(`Two input streams are both named '${name}'`);
    }
    const n = partitions ?? this.defaultPartitions;
    checkPartitions(n, `input stream '${name}'`);
    const stream = new DStream<T>(
      this,
      'input',
      [],
      (t, g) =>
        new StoredRDD<T>(g, {
          operator: `input(${name})`,
          storedTimeMs: t,
          storedName: `input:${name}`,
          numPartitions: n,
          keyOf: (p) => layout.inputBlock(t, name, p),
        }),
      { params: { name, partitions: n }, isInput: true },
    );
    this.graph.inputs.set(stream.id, { name, factory, partitions: n });
    return stream;
  }
}

/**
 * A frozen pipeline with its times fixed: generates the RDDs of any batch. The driver, every
 * worker thread and every Lambda function build one from the same pipeline module.
 */
export class Pipeline {
  readonly ctx: StreamingContext;
  readonly zeroTimeMs: number;
  readonly fingerprint: string;
  private readonly shapeCache = new Map<string, Shape>();
  private readonly generations = new Map<number, BatchGeneration>();

  constructor(ctx: StreamingContext, zeroTimeMs: number) {
    if (!ctx.graph.isFrozen) ctx.graph.freeze();
    this.ctx = ctx;
    this.zeroTimeMs = zeroTimeMs;
    this.fingerprint = fingerprintOf(ctx);
  }

  get batchIntervalMs(): number {
    return this.ctx.batchIntervalMs;
  }

  /** The streams that must produce an RDD at `t`: outputs and materialized streams. */
  generate(batchTimeMs: number): BatchGeneration {
    let gen = this.generations.get(batchTimeMs);
    if (gen) return gen;
    gen = new BatchGeneration(
      {
        zeroTimeMs: this.zeroTimeMs,
        batchIntervalMs: this.ctx.batchIntervalMs,
        defaultPartitions: this.ctx.defaultPartitions,
        shapeCache: this.shapeCache,
      },
      batchTimeMs,
    );
    for (const target of this.targetStreams()) gen.rddOf(target, batchTimeMs);
    this.generations.set(batchTimeMs, gen);
    // keep the few most recent generations (a worker serves the current batch and stragglers)
    for (const t of this.generations.keys()) {
      if (this.generations.size <= 8) break;
      this.generations.delete(t);
    }
    return gen;
  }

  /** Forgets a generation (the driver regenerates a batch it reruns from scratch). */
  forget(batchTimeMs: number): void {
    this.generations.delete(batchTimeMs);
  }

  targetStreams(): DStream<unknown>[] {
    const set = new Set<DStream<unknown>>();
    for (const s of this.ctx.graph.streams) if (s.persisted) set.add(s);
    for (const o of this.ctx.graph.outputs) set.add(o.stream);
    return [...set].sort((a, b) => a.id - b.id);
  }
}

export function fingerprintOf(ctx: StreamingContext): string {
  const description = {
    batchIntervalMs: ctx.batchIntervalMs,
    partitions: ctx.defaultPartitions,
    ...ctx.graph.describe(),
  };
  return createHash('sha256').update(JSON.stringify(description)).digest('hex').slice(0, 16);
}
