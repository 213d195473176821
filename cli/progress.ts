/**
 * The live view of `sluice run`, after Spark's Streaming tab: one row per committed batch with its
 * input, rate, processing time, scheduling and total delay, tasks and retries, and a bar of the
 * processing time against the batch interval; then a summary. Written to stderr, so stdout stays
 * the pipeline's own output (print()).
 *
 * @module
 */
import path from 'node:path';
import { deadLettersOf } from '../shared/core/driver/dead-letters.ts';
import type { BatchManifest } from '../shared/core/driver.ts';
import { layout, outputKey } from '../shared/core/layout.ts';
import {
  formatCount,
  formatMs,
  formatRate,
  intervalBar,
  mean,
  percentile,
  shellQuote,
  sparkline,
  Table,
  timeOfDay,
} from './format.ts';

export interface RunInfo {
  readonly module: string;
  readonly storeDir: string;
  readonly storeDescription: string;
  readonly intervalMs: number;
  readonly partitions: number;
  readonly invoker: string;
  readonly sources: readonly string[];
  readonly fingerprint: string;
  readonly firstBatchMs: number;
  readonly resumedAfterMs: number | undefined;
  readonly limits: string;
  /** Wall-clock time at start, to tell a resumed store's gap (absent: no gap shown). */
  readonly nowMs?: number;
  /** True when the source makes no records for the gap (the generator of `sluice run`). */
  readonly sourceSkipsGap?: boolean;
}

/**
 * What happens on resume, for the banner: how long ago the last batch committed and, when the
 * store is behind the clock, how the gap is closed (its batches run first as a backlog).
 */
export function resumeLines(info: RunInfo): string[] {
  if (info.resumedAfterMs === undefined || info.nowMs === undefined) return [];
  const behindMs = info.nowMs - info.firstBatchMs;
  const gap = Math.floor(behindMs / info.intervalMs) + 1;
  if (gap < 2) return [];
  const input = info.sourceSkipsGap
    ? 'the generator makes no records for the time it was not running, so they are empty'
    : 'input that waited in the source goes into the first of them';
  return [
    `  gap: the last batch committed ${formatMs(info.nowMs - info.resumedAfterMs)} ago; its ${formatCount(gap)} batches ` +
      `(${timeOfDay(info.firstBatchMs)} to now) run first as a backlog, up to 64 at a time, marked 'catch-up', ` +
      `with the gap as their scheduling delay; ${input}. Then batches follow the clock. (--fresh starts over instead.)`,
  ];
}

export interface ProgressOptions {
  readonly write: (text: string) => void;
  /** One JSON object per line instead of the table. */
  readonly json: boolean;
  /** No start banner and no per-batch rows; the summary stays. */
  readonly quiet: boolean;
}

const COLUMNS = [
  { header: 'batch time' },
  { header: 'records', align: 'right' },
  { header: 'input rate', align: 'right' },
  { header: 'processing', align: 'right' },
  { header: 'sched delay', align: 'right' },
  { header: 'total delay', align: 'right' },
  { header: 'tasks', align: 'right' },
  { header: 'retries', align: 'right' },
  { header: 'processing vs interval (| = interval)' },
] as const;

export class ProgressView {
  private readonly table = new Table(COLUMNS);
  private readonly manifests: BatchManifest[] = [];
  private info: RunInfo | undefined;
  private startedAtMs = Date.now();
  private rows = 0;
  /** Engine events of the batch in progress, shown under its row once it commits. */
  private pendingEvents: string[] = [];

  constructor(private readonly options: ProgressOptions) {
    // sample cells so the columns do not shift as numbers grow
    this.table.fit([
      '00:00:00.000',
      '1,000,000',
      '1,000,000/s',
      '10.00 s',
      '10.00 s',
      '10.00 s',
      '1000',
      '100',
    ]);
  }

  get batches(): readonly BatchManifest[] {
    return this.manifests;
  }

  start(info: RunInfo): void {
    this.info = info;
    this.startedAtMs = Date.now();
    if (this.options.json) {
      this.line(JSON.stringify({ type: 'start', ...info }));
      return;
    }
    if (this.options.quiet) return;
    const resumed =
      info.resumedAfterMs !== undefined
        ? `resuming after batch ${timeOfDay(info.resumedAfterMs)} (${info.resumedAfterMs})`
        : 'new store';
    this.line(`sluice run ${info.module}`);
    this.line(
      `  interval ${formatMs(info.intervalMs)} · ${info.partitions} partitions · ${info.invoker} · source ${info.sources.join(', ')}`,
    );
    this.line(`  store ${info.storeDir} (${resumed}) · fingerprint ${info.fingerprint}`);
    this.line(
      `  first batch ${timeOfDay(info.firstBatchMs)} · ${info.limits} · Ctrl-C stops after the current batch`,
    );
    for (const line of resumeLines(info)) this.line(line);
    this.line('');
  }

  batch(m: BatchManifest): void {
    this.manifests.push(m);
    const interval = this.info?.intervalMs ?? 1000;
    const over = m.processingMs > interval;
    if (this.options.json) {
      this.line(
        JSON.stringify({
          type: 'batch',
          time: timeOfDay(m.batchTimeMs),
          inputRatePerSec: (m.input.records * 1000) / interval,
          overInterval: over,
          ...m,
        }),
      );
      this.flushEvents();
      return;
    }
    if (this.options.quiet) return;
    if (this.rows % 40 === 0) this.line(this.table.header());
    this.rows++;
    const marks: string[] = [];
    if (over) marks.push('! slower than the interval');
    if (m.input.capped) marks.push('! capped by backpressure');
    if (deadLettersOf(m) > 0) marks.push(`${formatCount(deadLettersOf(m))} dead letters`);
    if (m.recovered) marks.push('recovered');
    else if (m.catchUp) marks.push('catch-up');
    if (m.tasks.speculative > 0) marks.push(`${m.tasks.speculative} speculative`);
    if (m.tasks.recomputed > 0) marks.push(`${m.tasks.recomputed} recomputed`);
    const bar = `[${intervalBar(m.processingMs, interval)}]`;
    this.line(
      this.table.row([
        timeOfDay(m.batchTimeMs),
        formatCount(m.input.records),
        formatRate(m.input.records, interval),
        formatMs(m.processingMs),
        formatMs(m.schedulingDelayMs),
        formatMs(m.totalDelayMs),
        String(m.tasks.total),
        String(m.tasks.retries),
        marks.length ? `${bar} ${marks.join(', ')}` : bar,
      ]),
    );
    this.flushEvents();
  }

  /**
   * Engine events worth a line: failed task attempts (at once) and backpressure changes (decided
   * just before the batch is reported, so shown under its row).
   */
  event(e: Record<string, unknown>): void {
    if (this.options.json) {
      if (e.event === 'task.failed' || e.event === 'source.drain' || e.event === 'task.nondeterministic')
        this.line(JSON.stringify({ type: 'event', ...e }));
      else if (e.event === 'backpressure') this.pendingEvents.push(JSON.stringify({ type: 'event', ...e }));
      return;
    }
    if (this.options.quiet) return;
    if (e.event === 'backpressure') {
      this.pendingEvents.push(
        `  backpressure: the next batches take at most ${formatCount(Number(e.maxRecordsPerBatch))} records`,
      );
    } else if (e.event === 'source.drain') {
      const n = Number(e.batches);
      this.line(
        `  the source ended: draining, ${n} more ${n === 1 ? 'batch' : 'batches'} (to ${timeOfDay(Number(e.untilMs))}, without waiting) so that every window holding its data emits`,
      );
    } else if (e.event === 'task.nondeterministic') {
      this.line(`  warning: ${String(e.message)}`);
    } else if (e.event === 'task.failed') {
      // shown at once: the batch may never commit
      this.line(
        `  task ${String(e.task)} failed${e.retryable ? '' : ' (not retryable)'}: ${String(e.error)}`,
      );
    }
  }

  private flushEvents(): void {
    for (const text of this.pendingEvents) this.line(text);
    this.pendingEvents = [];
  }

  note(text: string): void {
    if (this.options.json) this.line(JSON.stringify({ type: 'note', message: text }));
    else this.line(text);
  }

  /** The summary: totals, processing time percentiles, where the store is and how to look at it. */
  summary(reason: string): void {
    this.flushEvents();
    const info = this.info;
    const ms = this.manifests;
    const interval = info?.intervalMs ?? 1000;
    const processing = ms.map((m) => m.processingMs);
    const records = ms.reduce((n, m) => n + m.input.records, 0);
    const dead = ms.reduce((n, m) => n + deadLettersOf(m), 0);
    const retries = ms.reduce((n, m) => n + m.tasks.retries, 0);
    const over = processing.filter((p) => p > interval).length;
    const capped = ms.filter((m) => m.input.capped).length;
    const wallMs = Date.now() - this.startedAtMs;
    if (this.options.json) {
      this.line(
        JSON.stringify({
          type: 'summary',
          reason,
          batches: ms.length,
          records,
          deadLetters: dead,
          retries,
          overInterval: over,
          capped,
          processingMs: {
            mean: mean(processing),
            p50: percentile(processing, 0.5),
            p99: percentile(processing, 0.99),
            max: Math.max(...processing),
          },
          store: info?.storeDir,
        }),
      );
      return;
    }
    const storeFlag = info ? `--store ${shellQuote(info.storeDir)}` : '';
    this.line('');
    if (ms.length === 0) {
      this.line(`sluice: no batch ran (${reason}).`);
      if (info) this.line(`  store ${info.storeDir}`);
      return;
    }
    const last = ms[ms.length - 1]!;
    this.line(
      `${ms.length} batches in ${formatMs(wallMs)} (${reason}): ${formatCount(records)} records, ` +
        `${formatCount(dead)} dead letters, ${retries} task retries`,
    );
    this.line(
      `  processing time   mean ${formatMs(mean(processing))} · p50 ${formatMs(percentile(processing, 0.5))} · ` +
        `p99 ${formatMs(percentile(processing, 0.99))} · max ${formatMs(Math.max(...processing))} ` +
        `(interval ${formatMs(interval)}; ${over} over, ${capped} capped)`,
    );
    const sched = ms.map((m) => m.schedulingDelayMs);
    const total = ms.map((m) => m.totalDelayMs);
    this.line(`  scheduling delay  mean ${formatMs(mean(sched))} · max ${formatMs(Math.max(...sched))}`);
    this.line(`  total delay       mean ${formatMs(mean(total))} · p99 ${formatMs(percentile(total, 0.99))}`);
    this.line(
      `  processing / interval, per batch: ${sparkline(processing.slice(-60), interval)}  (█ = interval or more)`,
    );
    this.line(`  store ${info?.storeDescription ?? ''}`);
    for (const line of outputLines(ms, info?.storeDir)) this.line(line);
    this.line(`look at it:`);
    this.line(`  sluice status ${storeFlag}`);
    const output = last.outputs.find((o) => o.kind === 'rdd') ?? last.outputs[0];
    if (output) this.line(`  sluice lineage ${shellQuote(output.name)} ${last.batchTimeMs} 0 ${storeFlag}`);
  }

  private line(text: string): void {
    this.options.write(`${text}\n`);
  }
}

/**
 * Where the saved outputs went, one line per output: its directory under the store, how many
 * batches wrote one, how many records in all, and the last batch's folder.
 */
export function outputLines(ms: readonly BatchManifest[], storeDir: string | undefined): string[] {
  const byPrefix = new Map<string, { batches: number; records: number; last: string }>();
  for (const m of ms) {
    for (const o of m.outputs) {
      if (o.kind !== 'file') continue;
      // outputs/<name>/dt=.../hr=.../batch=<t>/ (layout.ts): one line per name, the last batch's folder
      const last = outputKey(o.name, m.batchTimeMs, '').slice(layout.outputsOf(o.name).length);
      const entry = byPrefix.get(o.name) ?? { batches: 0, records: 0, last };
      entry.batches++;
      entry.records += o.records;
      entry.last = last;
      byPrefix.set(o.name, entry);
    }
  }
  const lines: string[] = [];
  for (const [pattern, e] of byPrefix) {
    const where = storeDir ? path.join(storeDir, 'outputs', pattern) : `outputs/${pattern}`;
    lines.push(
      `  outputs ${where}/ · ${e.batches} ${e.batches === 1 ? 'batch' : 'batches'}, ${formatCount(e.records)} records (last ${e.last})`,
    );
  }
  return lines;
}
