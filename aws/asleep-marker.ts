/**
 * What a sleeping scheduler leaves in its store for others to see (issue 11): the marker
 * `meta/asleep.json`, written when it goes to sleep and deleted when it wakes, and the event a
 * producer sends to wake it early (the nudge). Shared by the scheduler (functions/lib/sleep.ts)
 * and the producer side (aws/nudge.ts). Imports nothing.
 *
 * @module
 */

/** The marker's key in the pipeline's store (under its prefix). */
export const ASLEEP_KEY = 'meta/asleep.json';

export interface AsleepMarker {
  readonly asleepAtMs: number;
  /** The last committed batch when the scheduler went to sleep. */
  readonly lastBatchMs: number | null;
  /** When the scheduler must wake even without messages (null: never). */
  readonly wakeAtMs: number | null;
  /** The scheduler function, for a producer to nudge (absent outside Lambda). */
  readonly functionName?: string;
}

/** The payload of a nudge: an asynchronous invoke of the scheduler by a producer. */
export const NUDGE_EVENT = { sluice: 'nudge' } as const;

/** True for the payload a producer's nudge carries. */
export function isNudge(event: unknown): boolean {
  return (event as { sluice?: unknown } | null)?.sluice === NUDGE_EVENT.sluice;
}

/** The queue tag naming the pipeline's store (`s3://bucket/prefix`), for producers to find the marker. */
export const STORE_TAG = 'sluice:store';

/** Parses `s3://bucket/prefix` (prefix optional); undefined for anything else. */
export function parseStoreUrl(url: string): { bucket: string; prefix: string } | undefined {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  return m ? { bucket: m[1]!, prefix: m[2]!.replace(/\/+$/, '') } : undefined;
}
