/**
 * The compact commit of empty batches (issue 11). A batch that takes the idle fast path
 * (`empty-batch.ts`) runs no task and writes nothing of its own: the driver extends an open span
 * in memory and commits it as ONE record for up to `IDLE_CHUNK` consecutive batches:
 *
 *   idle/<from>-<to>.json     (put-if-absent) the batches from..to, every interval, are committed
 *                             and empty; the key alone says which (readers list, they need not GET)
 *
 * A span is flushed when it holds `IDLE_CHUNK` batches, before the first batch with data after it
 * commits, and when the driver stops. Batches of a span not yet flushed when a driver dies are
 * simply run again after the restart (nothing was acknowledged but empty receives), exactly like
 * a batch that died before its manifest.
 *
 * Every reader treats a batch inside a span as committed and empty: the driver's resume
 * (`start`), `sluice status`, `sluice lineage`, the web UI, replay, and tasks reading an earlier
 * batch's stored RDD or input block over the span (`TaskContext`: read as empty, no request).
 *
 * @module
 */
import type { ObjectStore } from '../ports/object-store.ts';
import { decodeJson, encodeJson } from './codec.ts';
import type { RequestCounts } from './counting-store.ts';
import { parseTimeKey, timeKey } from './layout.ts';

/** At most this many empty batches share one span record (one store write per 60 empty batches). */
export const IDLE_CHUNK = 60;

export const idleLayout = {
  prefix: () => 'idle/',
  span: (fromMs: number, toMs: number) => `idle/${timeKey(fromMs)}-${timeKey(toMs)}.json`,
};

/** idle/<from>-<to>.json: a span of committed empty batches. */
export interface IdleSpanRecord {
  readonly fromMs: number;
  readonly toMs: number;
  readonly batches: number;
  readonly intervalMs: number;
  readonly fingerprint: string;
  readonly committedAtMs: number;
  /** Source positions at the end of the span (a restarted source carries on from there). */
  readonly positions?: Record<string, unknown>;
  /** Store requests the span's batches made (receives are source requests, not counted here). */
  readonly requests: RequestCounts;
}

/** A span of batch times, both ends included. */
export interface Span {
  readonly fromMs: number;
  readonly toMs: number;
}

/** Parses `idle/<from>-<to>.json`; undefined for any other key. */
export function parseIdleKey(key: string): Span | undefined {
  const m = /^idle\/(\d+)-(\d+)\.json$/.exec(key);
  if (!m) return undefined;
  return { fromMs: parseTimeKey(m[1]!), toMs: parseTimeKey(m[2]!) };
}

/** The committed idle spans of a store, oldest first (one LIST, no GET). */
export async function listIdleSpans(store: ObjectStore): Promise<Span[]> {
  const spans: Span[] = [];
  for (const key of await store.list(idleLayout.prefix())) {
    const s = parseIdleKey(key);
    if (s) spans.push(s);
  }
  return spans.sort((a, b) => a.fromMs - b.fromMs);
}

/** The span record itself (positions, requests): one GET. */
export async function readIdleSpan(store: ObjectStore, span: Span): Promise<IdleSpanRecord | undefined> {
  const bytes = await store.get(idleLayout.span(span.fromMs, span.toMs));
  return bytes ? decodeJson<IdleSpanRecord>(bytes) : undefined;
}

/** Every batch time inside `spans`, for readers that list committed batches one by one. */
export function idleBatchTimes(spans: readonly Span[], intervalMs: number): number[] {
  const out: number[] = [];
  for (const s of spans) for (let t = s.fromMs; t <= s.toMs; t += intervalMs) out.push(t);
  return out;
}

/** Adjacent spans merged, for display ("idle from .. to .., n batches"). */
export function mergeSpans(spans: readonly Span[], intervalMs: number): Span[] {
  const out: Span[] = [];
  for (const s of [...spans].sort((a, b) => a.fromMs - b.fromMs)) {
    const last = out[out.length - 1];
    if (last && s.fromMs <= last.toMs + intervalMs) {
      out[out.length - 1] = { fromMs: last.fromMs, toMs: Math.max(last.toMs, s.toMs) };
    } else out.push(s);
  }
  return out;
}

/**
 * The idle batches a driver knows of: committed spans plus the open one. `contains(t)` is what
 * readers of earlier batches ask (a stored RDD of an idle batch reads as empty).
 */
export class IdleSpans {
  private spans: Span[] = [];

  constructor(spans: readonly Span[] = []) {
    this.spans = [...spans];
  }

  /** Adds a span; one that starts right after the latest (`intervalMs` later) extends it. */
  add(span: Span, intervalMs?: number): void {
    const last = this.spans[this.spans.length - 1];
    if (last && intervalMs !== undefined && span.fromMs === last.toMs + intervalMs) {
      this.spans[this.spans.length - 1] = { fromMs: last.fromMs, toMs: span.toMs };
    } else this.spans.push(span);
  }

  contains(t: number): boolean {
    for (let i = this.spans.length - 1; i >= 0; i--) {
      const s = this.spans[i]!;
      if (t >= s.fromMs && t <= s.toMs) return true;
    }
    return false;
  }

  /** The spans overlapping [fromMs, toMs] (what a task of a batch may read back over), as pairs. */
  overlapping(fromMs: number, toMs: number): [number, number][] {
    return this.spans.filter((s) => s.toMs >= fromMs && s.fromMs <= toMs).map((s) => [s.fromMs, s.toMs]);
  }

  /** The latest batch time any span covers. */
  get lastMs(): number | undefined {
    return this.spans.length === 0 ? undefined : Math.max(...this.spans.map((s) => s.toMs));
  }

  /** Drops spans that end before `t` (nothing reads back that far). */
  forgetBefore(t: number): void {
    this.spans = this.spans.filter((s) => s.toMs >= t);
  }
}

/** True when `t` lies inside one of the `[from, to]` pairs a task spec carries. */
export function inSpans(spans: readonly (readonly [number, number])[] | undefined, t: number): boolean {
  if (!spans) return false;
  for (const [from, to] of spans) if (t >= from && t <= to) return true;
  return false;
}

/**
 * The open span of the driver: batches are added in memory; `flush` commits them in one record.
 * `spans` (what tasks and readers consult) learns of each batch as soon as it is added, so a batch
 * with data right after reads the span as empty even before the flush.
 */
export class IdleSpanWriter {
  private open: { fromMs: number; toMs: number; batches: number; requests: RequestCounts } | undefined;
  private positions: Record<string, unknown> | undefined;
  /** Consecutive idle batches (open or flushed) since the last batch that did work. */
  private streak = 0;
  private readonly spans: IdleSpans;
  private readonly store: ObjectStore;
  private readonly intervalMs: number;
  private readonly fingerprint: () => string;

  constructor(options: {
    store: ObjectStore;
    spans: IdleSpans;
    intervalMs: number;
    fingerprint: () => string;
  }) {
    this.store = options.store;
    this.spans = options.spans;
    this.intervalMs = options.intervalMs;
    this.fingerprint = options.fingerprint;
  }

  /** How many idle batches in a row ended the stream so far (reset by a batch that did work). */
  get idleStreak(): number {
    return this.streak;
  }

  /** A batch that did work ran: the streak ends. */
  busy(): void {
    this.streak = 0;
  }

  /** Adds idle batch `t` (the next after the open span's end); true when the span is full and must be flushed. */
  add(t: number, requests: RequestCounts, positions?: Record<string, unknown>): boolean {
    this.streak++;
    if (positions && Object.keys(positions).length > 0) this.positions = { ...this.positions, ...positions };
    if (this.open && t === this.open.toMs + this.intervalMs) {
      this.open.toMs = t;
      this.open.batches++;
      addCounts(this.open.requests, requests);
    } else {
      this.open = { fromMs: t, toMs: t, batches: 1, requests: { ...requests } };
    }
    this.spans.add({ fromMs: t, toMs: t }, this.intervalMs);
    return this.open.batches >= IDLE_CHUNK;
  }

  /** True while batches wait in memory for their record. */
  get pending(): boolean {
    return this.open !== undefined;
  }

  /** Commits the open span (one put-if-absent); no-op when nothing is open. */
  async flush(): Promise<void> {
    const open = this.open;
    if (!open) return;
    const record: IdleSpanRecord = {
      fromMs: open.fromMs,
      toMs: open.toMs,
      batches: open.batches,
      intervalMs: this.intervalMs,
      fingerprint: this.fingerprint(),
      committedAtMs: Date.now(),
      ...(this.positions ? { positions: this.positions } : {}),
      requests: { ...open.requests, put: open.requests.put + 1 },
    };
    await this.store.putIfAbsent(idleLayout.span(open.fromMs, open.toMs), encodeJson(record));
    this.open = undefined;
  }
}

function addCounts(into: RequestCounts, more: RequestCounts): void {
  into.get += more.get;
  into.put += more.put;
  into.list += more.list;
  into.delete += more.delete;
  into.bytesRead += more.bytesRead;
  into.bytesWritten += more.bytesWritten;
}
