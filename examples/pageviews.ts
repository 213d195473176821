/**
 * Page views per URL over a sliding window: views of the last 10 seconds, every 2 seconds.
 *
 *   lines --flatMap(parse JSON, [] if malformed)--> (url, 1)
 *         --reduceByKeyAndWindow(+, -, 10 s, 2 s)--> (url, views in the window)
 *
 * Input records are JSON lines `{"url": "/home", "user": "u17", "ts": 1714564800000}`. A line
 * that is not a valid event is skipped by the flatMap instead of failing the batch (records the
 * source itself cannot decode go to the engine's dead-letter objects, separately). Windows are
 * over arrival (batch) time; `ts` is only carried along.
 *
 *   npx sluice run examples/pageviews.ts --source generator --duration 20s
 *   npx sluice run examples/pageviews.ts --source http:8787 --format json   # POST events to /events
 */
import type { StreamingContext } from '../shared/index.ts';
import { rng, zipf } from './lib/demo-data.ts';
import { asObject } from './lib/json-record.ts';

export const options = { batchIntervalMs: 1000, partitions: 2 };

export const WINDOW_MS = 10_000;
export const SLIDE_MS = 2_000;

export interface PageView {
  readonly url: string;
  readonly user: string;
  readonly ts: number;
}

/**
 * One record as a page view; [] when it is not JSON or not a page view. A record is a JSON line
 * (`--format lines`, the default) or an already parsed event (`--format json`): both work.
 */
export function parseView(record: unknown): PageView[] {
  const v = asObject(record);
  return v !== undefined && typeof v.url === 'string' ? [v as unknown as PageView] : [];
}

export default function pageViews(ctx: StreamingContext): void {
  const views = ctx
    .inputStream<unknown>() // JSON lines, or parsed events with --format json
    .flatMap(parseView)
    .map((view): [string, number] => [view.url, 1]);

  const viewsPerUrl = views.reduceByKeyAndWindow((a, b) => a + b, {
    windowMs: WINDOW_MS,
    slideMs: SLIDE_MS,
    inverse: (a, b) => a - b, // subtract the batches leaving the window
    filter: ([, n]) => n > 0, // forget URLs with no views left in the window
  });

  viewsPerUrl.print();
  viewsPerUrl.saveAsJsonLines('pageviews'); // every 2 s: outputs/pageviews/dt=.../batch=<time>/
}

// ---- demo input ----------------------------------------------------------------------------

// biome-ignore format: a compact table
export const URLS = [
  '/', '/products', '/search', '/cart', '/checkout', '/login', '/products/espresso-machine',
  '/products/grinder', '/products/kettle', '/products/beans-ethiopia', '/products/beans-colombia',
  '/blog', '/blog/brewing-guide', '/blog/latte-art', '/about', '/contact', '/help', '/account',
  '/account/orders', '/careers',
] as const;
const pickUrl = zipf(URLS);

/**
 * The seq-th event of the `--source generator` demo, a JSON line of about 100 bytes; about 2%
 * of the lines are deliberately truncated, to show that malformed input is skipped.
 */
export function generate(seq: number): string {
  const random = rng(seq);
  const url = pickUrl(random);
  const user = `user-${String(Math.floor(random() * 500)).padStart(4, '0')}`;
  const ts = Date.UTC(2024, 4, 1, 12) + seq * 10;
  const line = JSON.stringify({ url, user, ts, agent: 'Mozilla/5.0 (X11; Linux x86_64)' });
  return random() < 0.02 ? line.slice(0, line.length - 12) : line;
}
