/**
 * Joining a stream with static data: clicks per page category, per batch.
 *
 *   lines --flatMap(parse)--> (url, 1) --reduceByKey--> (url, clicks)
 *         --join(pages: (url, category))--> (url, [clicks, category])
 *         --map/reduceByKey--> (category, clicks)
 *
 * The static dataset is read from the object store, key `datasets/pages.jsonl`: JSON lines of
 * `["<url>", "<category>"]` pairs (examples/datasets/pages.jsonl). It must be in the store
 * before the pipeline starts; `sluice run` copies it there with
 *
 *   npx sluice run examples/join-static.ts --source generator --duration 10s \
 *     --dataset datasets/pages.jsonl=examples/datasets/pages.jsonl
 *
 * (on AWS, upload it to the bucket under the same key). Clicks on URLs missing from the
 * dataset are dropped by the inner join; use leftOuterJoin to keep them.
 */
import type { StreamingContext } from '../shared/index.ts';
import { rng, zipf } from './lib/demo-data.ts';
import { asObject } from './lib/json-record.ts';

export const options = { batchIntervalMs: 1000, partitions: 2 };

export const DATASET_KEY = 'datasets/pages.jsonl';

/** A JSON line or an already parsed click (`--format json`) as (url, 1); [] when it is neither. */
export function parseClick(record: unknown): [string, number][] {
  const click = asObject(record);
  if (typeof click?.url === 'string') return [[click.url, 1]];
  return [];
}

export default function clicksPerCategory(ctx: StreamingContext): void {
  // The same RDD every batch, read from the store (Spark: a static RDD used in transform/join).
  const pages = ctx.storedDataset<[string, string]>(DATASET_KEY);

  const clicksPerUrl = ctx
    .inputStream<unknown>()
    .flatMap(parseClick)
    .reduceByKey((a, b) => a + b);

  const perCategory = clicksPerUrl
    .join(pages)
    .map(([, [clicks, category]]): [string, number] => [category, clicks])
    .reduceByKey((a, b) => a + b);

  perCategory.print();
  perCategory.saveAsJsonLines('clicks-by-category');
}

// ---- demo input ----------------------------------------------------------------------------

/** The URLs of examples/datasets/pages.jsonl, most clicked first. */
// biome-ignore format: a compact table
export const PAGE_URLS = [
  '/', '/search', '/products/kettle', '/products/grinder', '/products/espresso-machine', '/cart',
  '/blog/brewing-guide', '/products/beans-ethiopia', '/checkout', '/products/beans-colombia', '/help',
  '/blog/latte-art', '/account', '/account/orders', '/about', '/contact', '/careers', '/blog',
] as const;
const pickUrl = zipf(PAGE_URLS);

/**
 * The seq-th click of the `--source generator` demo, a JSON line of about 100 bytes. About 5% of
 * the clicks are on `/promo/<n>` pages, which are not in the dataset.
 */
export function generate(seq: number): string {
  const random = rng(seq);
  const url = random() < 0.05 ? `/promo/${Math.floor(random() * 20)}` : pickUrl(random);
  const user = `user-${String(Math.floor(random() * 1000)).padStart(4, '0')}`;
  return JSON.stringify({
    url,
    user,
    ts: Date.UTC(2024, 4, 1, 12) + seq * 10,
    referrer: 'https://example.com/',
  });
}
