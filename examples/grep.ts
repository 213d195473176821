/**
 * Grep, from the D-Streams paper: counts the input lines that contain a pattern, per batch.
 *
 *   lines --filter(contains pattern)--> matches --count--> one number per batch
 *
 * The pattern comes from the environment variable SLUICE_GREP_PATTERN (default `ERROR`, which
 * appears in about 3% of the generated log lines). It is read when the pipeline is built, so the
 * driver and every worker must see the same value.
 *
 *   SLUICE_GREP_PATTERN=timeout npx sluice run examples/grep.ts --source generator --duration 10s
 */
import type { StreamingContext } from '../shared/index.ts';
import { rng, WORDS, zipf } from './lib/demo-data.ts';

export const options = { batchIntervalMs: 1000, partitions: 2 };

export const DEFAULT_PATTERN = 'ERROR';

export default function grep(ctx: StreamingContext): void {
  const pattern = process.env.SLUICE_GREP_PATTERN || DEFAULT_PATTERN;
  const lines = ctx.inputStream<string>();

  // count() gives exactly one record per batch, 0 when nothing matched.
  const matches = lines.filter((line) => line.includes(pattern)).count();

  matches.print();
  matches.saveAsJsonLines('grep'); // one number per batch: outputs/grep/dt=.../batch=<time>/
}

// ---- demo input: log lines ----------------------------------------------------------------

const SERVICES = ['api', 'auth', 'billing', 'search', 'checkout', 'catalog', 'gateway', 'mailer'] as const;
const pickService = zipf(SERVICES, 0.8);
const pickWord = zipf(WORDS);

/**
 * The seq-th line of the `--source generator` demo, a log line of about 100 bytes:
 * `2024-05-01T12:00:07.123Z WARN  [search] req=1f2e... stream window latency ...`.
 * About 80% INFO, 17% WARN and 3% ERROR.
 */
export function generate(seq: number): string {
  const random = rng(seq);
  const r = random();
  const level = r < 0.03 ? 'ERROR' : r < 0.2 ? 'WARN ' : 'INFO ';
  const time = new Date(Date.UTC(2024, 4, 1, 12) + seq * 7).toISOString();
  const request = Math.floor(random() * 0xffffffff)
    .toString(16)
    .padStart(8, '0');
  let line = `${time} ${level} [${pickService(random)}] req=${request}`;
  while (line.length < 92) line += ` ${pickWord(random)}`;
  return line;
}
