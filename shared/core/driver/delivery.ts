/**
 * Redeliveries made visible: a source with at-least-once delivery (SQS) reports, per batch, the
 * messages it received again and did not count (`redelivered`: committed by an earlier batch;
 * `duplicates`: twice within this batch). The driver keeps them in the write-ahead entry and sums
 * them into the manifest's `delivery`, which the metrics and `sluice status` show.
 */
import type { ReceivedEntry } from './manifest.ts';

/** `{ delivery }` summed over the batch's streams, or `{}` when no source reported any counts. */
export function deliveryOf(entry: ReceivedEntry): {
  delivery?: { redelivered: number; duplicates: number };
} {
  const reported = Object.values(entry.streams).filter((s) => s.delivery !== undefined);
  if (reported.length === 0) return {};
  return {
    delivery: {
      redelivered: reported.reduce((n, s) => n + s.delivery!.redelivered, 0),
      duplicates: reported.reduce((n, s) => n + s.delivery!.duplicates, 0),
    },
  };
}
