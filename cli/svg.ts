/**
 * The batch timeline as an SVG picture (`sluice status --svg <file>`): one stacked bar per batch,
 * scheduling delay below and processing time above (together the total delay), and a dashed line
 * at the batch interval. Hand-written markup, no dependency.
 *
 * @module
 */
import type { BatchManifest } from '../shared/core/driver.ts';
import { formatMs, timeOfDay } from './format.ts';

const escapeXml = (text: string) =>
  text.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );

/** A "nice" axis step (1, 2 or 5 times a power of ten) giving about `ticks` ticks up to `max`. */
function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / pow;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * pow;
}

export function timelineSvg(manifests: readonly BatchManifest[], intervalMs: number, title: string): string {
  const width = 900;
  const height = 360;
  const left = 64;
  const right = 20;
  const top = 48;
  const bottom = 56;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const maxValue = Math.max(intervalMs * 1.2, ...manifests.map((m) => m.schedulingDelayMs + m.processingMs));
  const step = niceStep(maxValue, 5);
  const yMax = Math.ceil(maxValue / step) * step;
  const y = (ms: number) => top + plotH - (ms / yMax) * plotH;
  const slot = plotW / Math.max(1, manifests.length);
  const barW = Math.max(1, Math.min(40, slot * 0.8));

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    // legend
    `<rect x="${left}" y="29" width="10" height="10" fill="#4c78a8"/><text x="${left + 14}" y="38">processing time</text>`,
    `<rect x="${left + 120}" y="29" width="10" height="10" fill="#f58518"/><text x="${left + 134}" y="38">scheduling delay</text>`,
    `<line x1="${left + 250}" y1="34" x2="${left + 274}" y2="34" stroke="#d62728" stroke-width="2" stroke-dasharray="5,3"/>` +
      `<text x="${left + 280}" y="38">batch interval (${escapeXml(formatMs(intervalMs))})</text>`,
    `<rect x="${left + 430}" y="29" width="10" height="10" fill="#2a4d73"/><text x="${left + 444}" y="38">processing over the interval</text>`,
  );
  // y axis with grid lines
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const yy = y(v).toFixed(1);
    parts.push(
      `<line x1="${left}" y1="${yy}" x2="${width - right}" y2="${yy}" stroke="#e5e5e5"/>`,
      `<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${escapeXml(formatMs(v))}</text>`,
    );
  }
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>`);
  parts.push(
    `<line x1="${left}" y1="${top + plotH}" x2="${width - right}" y2="${top + plotH}" stroke="#333"/>`,
  );

  const labelEvery = Math.max(1, Math.ceil(manifests.length / 8));
  manifests.forEach((m, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    const sched = m.schedulingDelayMs;
    const proc = m.processingMs;
    const tip = `${timeOfDay(m.batchTimeMs)} (${m.batchTimeMs}): ${m.input.records} records, processing ${formatMs(proc)}, scheduling delay ${formatMs(sched)}`;
    parts.push(`<g><title>${escapeXml(tip)}</title>`);
    if (sched > 0) {
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y(sched).toFixed(1)}" width="${barW.toFixed(1)}" height="${(y(0) - y(sched)).toFixed(1)}" fill="#f58518"/>`,
      );
    }
    parts.push(
      `<rect x="${x.toFixed(1)}" y="${y(sched + proc).toFixed(1)}" width="${barW.toFixed(1)}" height="${(y(sched) - y(sched + proc)).toFixed(1)}" fill="${proc > intervalMs ? '#2a4d73' : '#4c78a8'}"/>`,
      '</g>',
    );
    if (i % labelEvery === 0) {
      const cx = (x + barW / 2).toFixed(1);
      parts.push(
        `<text x="${cx}" y="${top + plotH + 16}" text-anchor="middle">${escapeXml(timeOfDay(m.batchTimeMs))}</text>`,
      );
    }
  });
  const iy = y(intervalMs).toFixed(1);
  parts.push(
    `<line x1="${left}" y1="${iy}" x2="${width - right}" y2="${iy}" stroke="#d62728" stroke-width="2" stroke-dasharray="5,3"/>`,
    `<text x="${left + plotW / 2}" y="${height - 14}" text-anchor="middle">batch time (${manifests.length} batches)</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}
