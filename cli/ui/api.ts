/**
 * The JSON behind the web UI (`sluice ui`): what a store holds, read through the same code as
 * `sluice status` and `sluice lineage` (cli/store.ts, cli/lineage.ts) on any ObjectStore, so it
 * works on a directory or on S3. Read-only: nothing here writes to the store.
 *
 * Every answer that cannot be given (no store there yet, an empty store, a corrupt manifest) is a
 * `UiProblem` with a message for the page; the server keeps running and the page keeps polling.
 */
import { existsSync } from 'node:fs';
import type { BatchManifest, GraphMeta } from '../../shared/core/driver.ts';
import { layout, timeKey } from '../../shared/core/layout.ts';
import { readLineage } from '../../shared/core/lineage-store.ts';
import type { LineageRecord } from '../../shared/core/task.ts';
import { SluiceError } from '../../shared/errors.ts';
import type { ObjectStore } from '../../shared/ports/object-store.ts';
import { batchCost, profileOf } from '../cost.ts';
import { buildTree, findDataKey, type LineageNode, listNames, outputPartsOf } from '../lineage.ts';
import {
  committedBatchTimes,
  type OpenedStore,
  openStore,
  readGraphMeta,
  readJson,
  readManifests,
  type StoreOptions,
  uncommittedBatchTimes,
} from '../store.ts';

/** An answer the page shows as a message instead of data; `status` is the HTTP status. */
export class UiProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'UiProblem';
  }
}

/** An event for the page's event list: derived from manifests, or live from the engine's log. */
export interface UiEvent {
  readonly atMs: number;
  readonly batchTimeMs?: number;
  readonly kind: string;
  readonly level: 'info' | 'warn' | 'error';
  readonly text: string;
}

/** The manifest fields the overview's table and charts need. */
export interface BatchRow {
  readonly batchTimeMs: number;
  readonly records: number;
  readonly deadLetters: number;
  readonly capped: boolean;
  readonly recovered: boolean;
  /** Closed in a catch-up backlog while the driver was behind the clock (not a re-run). */
  readonly catchUp: boolean;
  readonly processingMs: number;
  readonly schedulingDelayMs: number;
  readonly totalDelayMs: number;
  readonly stages: number;
  readonly tasks: BatchManifest['tasks'];
  readonly requests: { get: number; put: number; list: number };
  readonly outputs: { name: string; kind: string; records: number }[];
  readonly costUsd: number;
}

/**
 * What one batch's own requests and tasks cost on AWS (S3 requests, partition invocations and their
 * duration), from the cost model of `sluice status` (cli/cost.ts) with its default prices.
 */
export function costOf(m: BatchManifest): { s3Usd: number; lambdaUsd: number; totalUsd: number } {
  return batchCost(profileOf(m));
}

function rowOf(m: BatchManifest): BatchRow {
  return {
    batchTimeMs: m.batchTimeMs,
    records: m.input.records,
    deadLetters: m.input.deadLetters + (m.deadLettered ?? 0),
    capped: m.input.capped,
    recovered: m.recovered,
    catchUp: m.catchUp === true,
    processingMs: m.processingMs,
    schedulingDelayMs: m.schedulingDelayMs,
    totalDelayMs: m.totalDelayMs,
    stages: m.stages.length,
    tasks: m.tasks,
    requests: { get: m.requests.get, put: m.requests.put, list: m.requests.list },
    outputs: m.outputs.map((o) => ({ name: o.name, kind: o.kind, records: o.records })),
    costUsd: costOf(m).totalUsd,
  };
}

/** Events a batch's manifest tells of: backpressure, retries, speculation, recomputation, recovery. */
export function manifestEvents(m: BatchManifest, intervalMs: number): UiEvent[] {
  const out: UiEvent[] = [];
  const at = m.finishedAtMs;
  const t = m.batchTimeMs;
  const add = (kind: string, level: UiEvent['level'], text: string) =>
    out.push({ atMs: at, batchTimeMs: t, kind, level, text });
  if (m.input.capped)
    add('backpressure', 'warn', `input capped by backpressure at ${m.input.records} records`);
  if (m.processingMs > intervalMs)
    add('slow', 'warn', `processing took ${m.processingMs} ms, longer than the ${intervalMs} ms interval`);
  if (m.tasks.retries > 0) add('retry', 'warn', `${m.tasks.retries} task attempts failed and were retried`);
  if (m.tasks.speculative > 0) add('speculative', 'info', `${m.tasks.speculative} speculative task copies`);
  if (m.tasks.recomputed > 0)
    add('recomputed', 'warn', `${m.tasks.recomputed} lost partitions recomputed from lineage`);
  if (m.recovered) add('recovered', 'warn', 're-run after a driver restart');
  else if (m.catchUp)
    add('catch-up', 'info', 'closed in a catch-up backlog while the driver was behind the clock');
  const dead = m.input.deadLetters + (m.deadLettered ?? 0);
  if (dead > 0) add('deadletter', 'warn', `${dead} records dead-lettered`);
  return out;
}

/** An engine log event (task failures, backpressure, recovery) as a UiEvent. */
export function logEvent(e: Record<string, unknown>, nowMs = Date.now()): UiEvent {
  const kind = String(e.event ?? 'event');
  const level: UiEvent['level'] = /fail|error|impossible|lost|dead/.test(kind)
    ? 'error'
    : /retry|backpressure|fault|recover|slow|spec/.test(kind)
      ? 'warn'
      : 'info';
  const { event: _e, batchTimeMs, ...rest } = e;
  const text = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  return {
    atMs: nowMs,
    ...(typeof batchTimeMs === 'number' ? { batchTimeMs } : {}),
    kind,
    level,
    text,
  };
}

/** Keys the page may ask to read: data objects of a pipeline, never anything else in the store. */
const READABLE_KEY = /^(rdd|shuffle|outputs|inputs)\/[A-Za-z0-9._:@=+-][A-Za-z0-9._:@=+/ -]*$/;

/** Refuses keys that could leave the store (`..`, absolute paths, backslashes, NUL) or name other areas. */
export function checkKey(key: string): string {
  if (
    key.length > 1024 ||
    key.includes('..') ||
    key.includes('\\') ||
    key.includes('\0') ||
    key.includes('//') ||
    !READABLE_KEY.test(key)
  ) {
    throw new UiProblem(
      400,
      `refused key '${key.slice(0, 200)}': only rdd/, shuffle/, outputs/ and inputs/ keys inside the store can be read`,
    );
  }
  return key;
}

/**
 * The store the UI reads, opened on each request until it can be: a store directory that does
 * not exist yet (a run about to start) is a message on the page, not a reason to stop.
 */
export class UiStore {
  private opened: OpenedStore | undefined;
  private readonly manifests = new Map<number, BatchManifest>();
  private meta: GraphMeta | undefined;

  constructor(private readonly options: StoreOptions) {}

  /** Checks the options at start-up (a bad bucket name, both --store and --bucket): those fail fast. */
  static async validate(options: StoreOptions): Promise<UiStore> {
    const ui = new UiStore(options);
    if (options.store !== undefined && options.bucket === undefined && options.prefix === undefined) {
      return ui; // a directory that does not exist yet is told on the page
    }
    ui.opened = await openStore(options);
    return ui;
  }

  get description(): string {
    return this.opened?.description ?? (this.options.store ? `dir:${this.options.store}` : 'store');
  }

  async open(): Promise<OpenedStore> {
    if (this.opened) return this.opened;
    if (this.options.store !== undefined && !existsSync(this.options.store)) {
      throw new UiProblem(
        404,
        `the store ${this.options.store} does not exist (yet). Start a pipeline with ` +
          `'sluice run <pipeline> --store ${this.options.store}', or name another store with --store; this page updates once it appears.`,
      );
    }
    try {
      this.opened = await openStore(this.options);
    } catch (err) {
      throw asProblem(err);
    }
    return this.opened;
  }

  get store(): Promise<ObjectStore> {
    return this.open().then((o) => o.store);
  }

  async graphMeta(): Promise<GraphMeta> {
    if (this.meta) return this.meta;
    const opened = await this.open();
    try {
      this.meta = await readGraphMeta(opened);
    } catch (err) {
      const p = asProblem(err);
      throw new UiProblem(p.status === 500 ? 404 : p.status, p.message);
    }
    return this.meta;
  }

  /** A committed manifest, cached (manifests never change once written); a corrupt one is a problem. */
  async manifest(t: number): Promise<BatchManifest | undefined> {
    const cached = this.manifests.get(t);
    if (cached) return cached;
    const store = await this.store;
    let m: BatchManifest | undefined;
    try {
      m = await readJson<BatchManifest>(store, layout.manifest(t));
      // an idle batch (issue 11) is committed in an idle span, without a manifest of its own
      if (!m) m = (await readManifests(store, [t]))[0];
    } catch (err) {
      throw new UiProblem(500, `corrupt manifest: ${(err as Error).message}`);
    }
    if (m && (typeof m.batchTimeMs !== 'number' || !m.input || !Array.isArray(m.stages))) {
      throw new UiProblem(
        500,
        `corrupt manifest: ${store.describe()}/${layout.manifest(t)} is not a batch manifest`,
      );
    }
    if (m) this.manifests.set(t, m);
    return m;
  }

  /** The overview: pipeline, batches (newest `last`), problems met on the way, derived events. */
  async overview(last = 300): Promise<Overview> {
    const opened = await this.open();
    const meta = await this.graphMeta();
    const times = await committedBatchTimes(opened.store);
    const uncommitted = await uncommittedBatchTimes(opened.store, times);
    const shown = last > 0 ? times.slice(-last) : times;
    const problems: string[] = [];
    const batches: BatchRow[] = [];
    const events: UiEvent[] = [];
    for (let i = 0; i < shown.length; i += 16) {
      const chunk = await Promise.all(
        shown.slice(i, i + 16).map((t) =>
          this.manifest(t).catch((err: unknown) => {
            problems.push((err as Error).message);
            return undefined;
          }),
        ),
      );
      for (const m of chunk) {
        if (!m) continue;
        batches.push(rowOf(m));
        events.push(...manifestEvents(m, meta.batchIntervalMs));
      }
    }
    const graph = meta.graph as {
      streams?: { kind?: string }[];
      outputs?: { label?: string; kind?: string }[];
    };
    return {
      store: opened.description,
      flags: opened.flags,
      fingerprint: meta.fingerprint,
      zeroTimeMs: meta.zeroTimeMs,
      batchIntervalMs: meta.batchIntervalMs,
      partitions: meta.partitions,
      createdAtMs: meta.createdAtMs,
      streams: (graph?.streams ?? []).map((s) => s.kind ?? '?'),
      outputs: (graph?.outputs ?? []).map((o) => o.label ?? o.kind ?? '?'),
      committed: times.length,
      newestBatchMs: times[times.length - 1] ?? null,
      uncommitted,
      batches,
      events: events.slice(-200),
      problems,
    };
  }

  /** One batch: its manifest, cost, dead letters and what it stored (with lineage records). */
  async batch(t: number): Promise<BatchDetail> {
    const meta = await this.graphMeta();
    const m = await this.manifest(t);
    if (!m) {
      throw new UiProblem(404, `batch ${t} has no manifest in ${this.description} (it is not committed)`);
    }
    const store = await this.store;
    const stored: StoredPartitionSet[] = [];
    for (const area of ['rdd', 'shuffle'] as const) {
      for (const n of await listNames(store, `${area}/${timeKey(t)}/`)) {
        stored.push({
          area,
          name: area === 'shuffle' ? `shuffle:${n.name}` : n.name,
          partitions: n.partitions,
        });
      }
    }
    for (const [name, ps] of await outputPartsOf(store, t)) {
      stored.push({ area: 'outputs', name, partitions: ps });
    }
    return {
      intervalMs: meta.batchIntervalMs,
      manifest: m,
      cost: costOf(m),
      events: manifestEvents(m, meta.batchIntervalMs),
      deadLetters: await this.deadLetters(t, 200),
      stored,
    };
  }

  /** Dead letters with their reasons, newest batches first (of one batch, when `t` is given). */
  async deadLetters(t?: number, limit = 500): Promise<DeadLetterRow[]> {
    const store = await this.store;
    const prefix = t === undefined ? 'deadletter/' : `deadletter/${timeKey(t)}/`;
    const keys = (await store.list(prefix)).filter((k) => k.endsWith('.jsonl')).reverse();
    const out: DeadLetterRow[] = [];
    for (const key of keys) {
      if (out.length >= limit) break;
      const bytes = await store.get(key);
      if (!bytes) continue;
      const batchTimeMs = Number(key.split('/')[1]);
      const file = key
        .split('/')
        .pop()!
        .replace(/\.jsonl$/, '');
      for (const line of Buffer.from(bytes).toString('utf8').split('\n')) {
        if (!line.trim() || out.length >= limit) continue;
        try {
          const d = JSON.parse(line) as { raw?: unknown; reason?: unknown; origin?: unknown };
          out.push({
            batchTimeMs,
            file,
            origin: typeof d.origin === 'string' ? d.origin : '',
            reason: String(d.reason ?? ''),
            raw: String(d.raw ?? '').slice(0, 500),
          });
        } catch {
          out.push({
            batchTimeMs,
            file,
            origin: '',
            reason: `unreadable line in ${key}`,
            raw: line.slice(0, 500),
          });
        }
      }
    }
    return out;
  }

  /** The lineage of a stored partition as nodes and edges (inputs are the leaves). */
  async lineage(rdd: string, t: number, partition: number, depth = 12): Promise<LineageGraph> {
    await this.graphMeta();
    const store = await this.store;
    if (!/^[A-Za-z0-9._:@=+-]{1,200}$/.test(rdd)) {
      throw new UiProblem(400, `'${rdd.slice(0, 100)}' is not an RDD, shuffle or output name`);
    }
    const key = await findDataKey(store, rdd, t, partition);
    if (!key) {
      throw new UiProblem(
        404,
        `no lineage record for ${rdd} partition ${partition} of batch ${t}: it was never stored, or was cleaned up once no later batch needed it`,
      );
    }
    const root = await buildTree(store, { rddId: rdd, batchTimeMs: t, partition, key }, depth);
    return toGraph(root);
  }

  /** The lineage record of a data object (its trailer, the manifest, or beside it: lineage-store.ts). */
  async record(key: string): Promise<LineageRecord> {
    const store = await this.store;
    // a lineage key of an output (lineage/outputs/...) names the output it describes
    const bare = key.startsWith('lineage/outputs/') ? key.slice('lineage/'.length) : key;
    const dataKey = checkKey(bare.endsWith('.lineage.json') ? bare.slice(0, -'.lineage.json'.length) : bare);
    let r: LineageRecord | undefined;
    try {
      r = await readLineage(store, dataKey);
    } catch (err) {
      throw new UiProblem(500, (err as Error).message);
    }
    if (!r) throw new UiProblem(404, `no lineage record for ${dataKey} (an input block, or cleaned up)`);
    return r;
  }
}

export interface Overview {
  readonly store: string;
  readonly flags: string;
  readonly fingerprint: string;
  readonly zeroTimeMs: number;
  readonly batchIntervalMs: number;
  readonly partitions: number;
  readonly createdAtMs: number;
  readonly streams: string[];
  readonly outputs: string[];
  readonly committed: number;
  readonly newestBatchMs: number | null;
  readonly uncommitted: number[];
  readonly batches: BatchRow[];
  readonly events: UiEvent[];
  readonly problems: string[];
}

export interface StoredPartitionSet {
  readonly area: 'rdd' | 'shuffle' | 'outputs';
  readonly name: string;
  readonly partitions: number[];
}

export interface DeadLetterRow {
  readonly batchTimeMs: number;
  readonly file: string;
  readonly origin: string;
  readonly reason: string;
  readonly raw: string;
}

export interface BatchDetail {
  readonly intervalMs: number;
  readonly manifest: BatchManifest;
  readonly cost: { s3Usd: number; lambdaUsd: number; totalUsd: number };
  readonly events: UiEvent[];
  readonly deadLetters: DeadLetterRow[];
  readonly stored: StoredPartitionSet[];
}

export interface LineageGraphNode {
  readonly id: string;
  readonly key: string;
  readonly rddId: string;
  readonly batchTimeMs: number;
  readonly partition: number;
  readonly kind: LineageNode['kind'];
  /** Distance from the partition asked for (0); the page lays nodes out in layers by it. */
  readonly layer: number;
  readonly operator?: string;
  readonly operators?: readonly string[];
  readonly records?: number;
  readonly bytes?: number;
  readonly attempt?: number;
  readonly durationMs?: number;
  readonly stageId?: number;
}

export interface LineageGraph {
  readonly root: string;
  readonly nodes: LineageGraphNode[];
  /** [parent id, child id]: data flows from parent to child. */
  readonly edges: [string, string][];
}

/** The lineage tree of cli/lineage.ts as a DAG: one node per partition, each at its longest distance from the root. */
export function toGraph(root: LineageNode): LineageGraph {
  const nodes = new Map<string, LineageGraphNode>();
  const edges = new Map<string, [string, string]>();
  const walk = (n: LineageNode) => {
    const prev = nodes.get(n.id);
    const r = n.record;
    if (!prev || (prev.kind === 'repeat' && n.kind !== 'repeat')) {
      nodes.set(n.id, {
        id: n.id,
        key: n.key,
        rddId: n.rddId,
        batchTimeMs: n.batchTimeMs,
        partition: n.partition,
        kind: n.kind,
        layer: 0,
        ...(r
          ? {
              operator: r.operator,
              operators: r.operators,
              records: r.records,
              bytes: r.bytes,
              attempt: r.attempt,
              durationMs: r.durationMs,
              stageId: r.stageId,
            }
          : {}),
      });
    }
    for (const p of n.parents) {
      edges.set(`${p.id}\n${n.id}`, [p.id, n.id]);
      walk(p);
    }
  };
  walk(root);
  // longest path from the root (a DAG: relax edges until nothing changes, at most |nodes| rounds)
  const layer = new Map<string, number>([[root.id, 0]]);
  for (let round = 0, changed = true; changed && round <= nodes.size; round++) {
    changed = false;
    for (const [parent, child] of edges.values()) {
      const l = layer.get(child);
      if (l !== undefined && (layer.get(parent) ?? -1) < l + 1) {
        layer.set(parent, l + 1);
        changed = true;
      }
    }
  }
  return {
    root: root.id,
    nodes: [...nodes.values()].map((n) => ({ ...n, layer: layer.get(n.id) ?? 0 })),
    edges: [...edges.values()],
  };
}

/** Any error as a message for the page: user-fixable ones keep their text, bugs say so. */
export function asProblem(err: unknown): UiProblem {
  if (err instanceof UiProblem) return err;
  if (err instanceof SluiceError) return new UiProblem(404, err.message);
  return new UiProblem(500, `unexpected error: ${(err as Error)?.message ?? String(err)}`);
}
