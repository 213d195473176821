/**
 * User sessions with mapWithState and a timeout: counts the pages each user views in a
 * session, and emits a summary when the session ends, i.e. when the user has sent no event for
 * more than TIMEOUT_MS (3 batches).
 *
 *   lines --flatMap(parse)--> (user, page)
 *         --mapWithState(count pages; on timeout emit {user, pages, closedAt})--> summaries
 *   stateSnapshots() --count--> open sessions after each batch
 *
 * As in Spark, a key times out at the first batch whose time is more than `timeoutMs` after
 * the key's last record: with a 1 s interval and a 3 s timeout, a user last seen at t closes at
 * t + 4 s (the fourth batch without events), with `closedAt` that batch's time.
 *
 *   npx sluice run examples/sessions.ts --source generator --duration 20s
 */
import type { State, StreamingContext } from '../shared/index.ts';
import { rng, zipf } from './lib/demo-data.ts';
import { asObject } from './lib/json-record.ts';

export const options = { batchIntervalMs: 1000, partitions: 2 };

export const TIMEOUT_MS = 3 * options.batchIntervalMs;

export interface ClickEvent {
  readonly user: string;
  readonly page: string;
}

export interface SessionSummary {
  readonly user: string;
  readonly pages: number;
  readonly closedAt: number;
}

/** A JSON line or an already parsed event (`--format json`) as (user, page); [] when it is neither. */
export function parseEvent(record: unknown): [string, string][] {
  const e = asObject(record);
  if (typeof e?.user === 'string' && typeof e.page === 'string') return [[e.user, e.page]];
  return [];
}

/** Called once per event, and once with `page` undefined when the user's session times out. */
function trackSession(
  user: string,
  page: string | undefined,
  state: State<number>,
  timeMs: number,
): SessionSummary | undefined {
  if (state.isTimingOut()) {
    // The session is over: emit it (the state is removed after this call).
    return { user, pages: state.get(), closedAt: timeMs };
  }
  if (page !== undefined) state.update((state.getOption() ?? 0) + 1);
  return undefined; // nothing to emit while the session goes on
}

export default function sessions(ctx: StreamingContext): void {
  const events = ctx.inputStream<unknown>().flatMap(parseEvent);

  const summaries = events.mapWithState({ fn: trackSession, timeoutMs: TIMEOUT_MS });

  summaries.print();
  summaries.saveAsJsonLines('sessions'); // closed sessions: outputs/sessions/dt=.../batch=<time>/

  // The whole user -> pages table after each batch: how many sessions are open.
  summaries.stateSnapshots().count().print();
}

// ---- demo input ----------------------------------------------------------------------------

const USERS = Array.from({ length: 300 }, (_, i) => `user-${String(i).padStart(4, '0')}`);
const pickUser = zipf(USERS, 1.2);
const PAGES = [
  '/',
  '/search',
  '/products',
  '/products/kettle',
  '/cart',
  '/checkout',
  '/blog',
  '/help',
] as const;
const pickPage = zipf(PAGES, 0.9);

/**
 * The seq-th event of the `--source generator` demo, a JSON line of about 100 bytes. A few
 * users are very active (their sessions stay open); most appear rarely, so their sessions time out.
 */
export function generate(seq: number): string {
  const random = rng(seq);
  const event = {
    user: pickUser(random),
    page: pickPage(random),
    ref: `campaign-${Math.floor(random() * 50)}`,
  };
  return JSON.stringify({ ...event, ts: Date.UTC(2024, 4, 1, 12) + seq * 10, agent: 'Mozilla/5.0 (X11)' });
}
