/**
 * Text formatting shared by the commands: times, durations, sizes, tables, and the small
 * pictures (bars against the batch interval, sparklines).
 *
 * @module
 */

const pad2 = (n: number) => String(n).padStart(2, '0');
const pad3 = (n: number) => String(n).padStart(3, '0');

/** Local time of day with milliseconds, as batch times are shown: `11:43:11.400`. */
export function timeOfDay(ms: number): string {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${pad3(d.getMilliseconds())}`;
}

/** ISO 8601 in local time with its offset: `2024-11-29T11:43:11.400+01:00`. */
export function isoLocal(ms: number): string {
  const d = new Date(ms);
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T${timeOfDay(ms)}` +
    `${sign}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`
  );
}

/** `850 ms`, `2.35 s`, `1 s`, `4m 05s`. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(ms < 10_000 ? 2 : 1))} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad2(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${pad2(Math.floor((s % 3600) / 60))}m`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Records per second of a batch: what arrived in the interval, per second. */
export function formatRate(records: number, intervalMs: number): string {
  const perSec = (records * 1000) / intervalMs;
  return `${perSec >= 100 ? formatCount(perSec) : perSec.toFixed(1)}/s`;
}

/** Nearest-rank percentile of `values` (q in 0..1). */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

export interface Column {
  readonly header: string;
  readonly align?: 'left' | 'right';
}

/** A plain text table: a header row and rows, columns padded to their widest cell. */
export class Table {
  private readonly widths: number[];
  constructor(
    readonly columns: readonly Column[],
    private readonly gap = '  ',
  ) {
    this.widths = columns.map((c) => c.header.length);
  }

  /** Widens columns so that these cells fit (call with every row before printing, or with samples). */
  fit(cells: readonly string[]): this {
    cells.forEach((cell, i) => {
      if (i < this.widths.length) this.widths[i] = Math.max(this.widths[i]!, cell.length);
    });
    return this;
  }

  header(): string {
    return this.row(this.columns.map((c) => c.header));
  }

  row(cells: readonly string[]): string {
    return cells
      .map((cell, i) => {
        const width = this.widths[i] ?? cell.length;
        const align = this.columns[i]?.align ?? 'left';
        // the last left-aligned column is not padded, so lines carry no trailing spaces
        if (i === cells.length - 1 && align === 'left') return cell;
        return align === 'right' ? cell.padStart(width) : cell.padEnd(width);
      })
      .join(this.gap)
      .trimEnd();
  }

  render(rows: readonly (readonly string[])[]): string[] {
    for (const r of rows) this.fit(r);
    return [this.header(), ...rows.map((r) => this.row(r))];
  }
}

/**
 * A bar of `value` against the batch interval: `cellsPerInterval` cells stand for one interval,
 * `|` marks where the interval ends, and `>` says the bar goes beyond the picture.
 *
 * @example intervalBar(120, 200) // '######    |           ' (6 of 10 cells: 60% of the interval)
 */
export function intervalBar(value: number, interval: number, cellsPerInterval = 10, intervals = 2): string {
  const width = cellsPerInterval * intervals;
  // any work at all shows as one cell, so an empty bar means an idle batch
  const filled = value > 0 ? Math.max(1, Math.round((value / interval) * cellsPerInterval)) : 0;
  let out = '';
  for (let i = 0; i < width; i++) {
    if (i === cellsPerInterval) out += '|';
    out += i < filled ? '#' : ' ';
  }
  return filled > width ? `${out}>` : `${out} `;
}

const SPARKS = '▁▂▃▄▅▆▇█';

/** A sparkline of `values` scaled to `top` (e.g. the batch interval): `█` is `top` or more. */
export function sparkline(values: readonly number[], top: number): string {
  return values
    .map((v) => SPARKS[Math.min(SPARKS.length - 1, Math.max(0, Math.ceil((v / top) * SPARKS.length) - 1))]!)
    .join('');
}

/** Shell-quotes a path for a command line we print for the user to copy. */
export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Shortens a saved output's name for tables: `wordcount-1732880591400.jsonl` -> `wordcount.jsonl`. */
export function shortOutputName(name: string, batchTimeMs: number): string {
  return name.replace(`-${batchTimeMs}`, '');
}
