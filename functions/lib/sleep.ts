/**
 * The sleeping scheduler (issue 11, item 2). After the stream has been idle (every batch took the
 * idle fast path, docs/ARCHITECTURE.md) for `idleAfterMs`, the scheduler commits its idle span,
 * writes the small marker `meta/asleep.json` and returns. Each later tick asks the queue first:
 *
 *   - messages wait (visible or in flight): run as usual: take the lease, commit the batches missed
 *     while asleep as one idle span without polling (`BatchScheduler.fillIdleUntil`), go on;
 *   - the queue is empty and this container saw the marker less than `markerTtlMs` ago: return
 *     at once: ONE SQS request (GetQueueAttributes), no lease, no S3 request;
 *   - the queue is empty and this container knows nothing (a cold start, or its knowledge is
 *     older than `markerTtlMs`): ONE S3 GET of the marker; present: asleep, return; absent: the
 *     pipeline is awake (it holds state, or another invocation handed over), run as usual.
 *
 * A pipeline only sleeps when it holds no state and no window data (the fast path's rule), so
 * no `mapWithState` timeout can fall due while it sleeps; the marker keeps `wakeAtMs` for a
 * future rule that lets state sleep. The latency this trades: the first event after a sleep waits
 * up to one tick (1 minute) plus one interval; `sluice send`/`SqsProducer` nudge the scheduler
 * (an asynchronous invoke, aws/nudge.ts) when they see the marker, and the construct's `alwaysOn`
 * keeps it awake. A nudge (`NUDGE_EVENT`) skips the queue (a message just sent may not be counted
 * yet): marker present, it wakes the pipeline; absent, the pipeline is awake and the nudge returns
 * after that one GET (no lease, no SQS request).
 *
 * @module
 */

import type { AsleepMarker } from '../../aws/asleep-marker.ts';

export { ASLEEP_KEY, type AsleepMarker } from '../../aws/asleep-marker.ts';

export interface TickPorts {
  /** ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible (one GetQueueAttributes). */
  queueDepth(): Promise<number>;
  /** One GET of the marker. */
  readMarker(): Promise<AsleepMarker | undefined>;
}

/** What a container remembers between ticks (module scope in the Lambda; nothing durable). */
export class SleepMemory {
  private marker: { value: AsleepMarker; seenAtMs: number } | undefined;
  constructor(readonly markerTtlMs = 15 * 60_000) {}
  remember(value: AsleepMarker, nowMs: number): void {
    this.marker = { value, seenAtMs: nowMs };
  }
  forget(): void {
    this.marker = undefined;
  }
  fresh(nowMs: number): AsleepMarker | undefined {
    return this.marker && nowMs - this.marker.seenAtMs < this.markerTtlMs ? this.marker.value : undefined;
  }
}

export type TickDecision =
  | { readonly action: 'sleep-on'; readonly reason: 'remembered' | 'marker' }
  | { readonly action: 'run'; readonly waking: boolean; readonly depth: number };

/** The first thing a tick does (see the module comment). */
export async function decideTick(
  ports: TickPorts,
  memory: SleepMemory,
  nowMs: number,
): Promise<TickDecision> {
  const depth = await ports.queueDepth();
  const due = (m: AsleepMarker) => m.wakeAtMs !== null && m.wakeAtMs <= nowMs;
  if (depth > 0) {
    const waking = memory.fresh(nowMs) !== undefined;
    memory.forget();
    return { action: 'run', waking, depth };
  }
  const known = memory.fresh(nowMs);
  if (known && !due(known)) return { action: 'sleep-on', reason: 'remembered' };
  const marker = await ports.readMarker();
  if (marker && !due(marker)) {
    memory.remember(marker, nowMs);
    return { action: 'sleep-on', reason: 'marker' };
  }
  memory.forget();
  return { action: 'run', waking: marker !== undefined, depth };
}
