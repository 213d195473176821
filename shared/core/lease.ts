/**
 * The driver lease: at most one driver runs batches on a store at a time.
 *
 * Built on put-if-absent alone (S3 conditional writes), as a sequence of epochs:
 * `lease/<epoch>.json` holds the owner and an expiry time. A driver takes epoch E+1 when epoch E
 * is released or expired; among drivers racing for E+1 only one put succeeds. The holder renews
 * by taking E+1 itself before E expires, and hands over by writing `lease/<E>.released`.
 *
 * On AWS the lease of the scheduler Lambda expires at the invocation's deadline: Lambda stops the
 * function then, so an expired holder cannot still be writing (the fencing a lease needs).
 *
 * @module
 */
import { SluiceError } from '../errors.ts';
import type { ObjectStore } from '../ports/object-store.ts';
import { decodeJson, encodeJson } from './codec.ts';

export interface LeaseRecord {
  readonly owner: string;
  readonly epoch: number;
  readonly acquiredAtMs: number;
  readonly expiresAtMs: number;
}

export class LeaseHeldError extends SluiceError {
  readonly holder: LeaseRecord;
  constructor(holder: LeaseRecord) {
    super(
      `Another driver (${holder.owner}) holds the lease on this store until ${new Date(holder.expiresAtMs).toISOString()}; ` +
        'stop it first, wait for its lease to expire, or use another store.',
    );
    this.name = 'LeaseHeldError';
    this.holder = holder;
  }
}

const PREFIX = 'lease/';
const epochKey = (epoch: number) => `${PREFIX}${String(epoch).padStart(12, '0')}.json`;
const releasedKey = (epoch: number) => `${PREFIX}${String(epoch).padStart(12, '0')}.released`;

export class DriverLease {
  private readonly store: ObjectStore;
  readonly owner: string;
  private current: LeaseRecord | undefined;
  /** Allowed clock difference between drivers. */
  private readonly skewMs: number;

  constructor(store: ObjectStore, owner: string, options: { skewMs?: number } = {}) {
    this.store = store;
    this.owner = owner;
    this.skewMs = options.skewMs ?? 2_000;
  }

  get record(): LeaseRecord | undefined {
    return this.current;
  }

  /** The latest lease record and whether it was released. */
  async latest(): Promise<{ record: LeaseRecord; released: boolean } | undefined> {
    const keys = await this.store.list(PREFIX);
    const epochs = keys.filter((k) => k.endsWith('.json')).map((k) => Number(k.slice(PREFIX.length, -5)));
    if (epochs.length === 0) return undefined;
    const epoch = Math.max(...epochs);
    const bytes = await this.store.get(epochKey(epoch));
    if (!bytes) return undefined;
    return { record: decodeJson<LeaseRecord>(bytes), released: keys.includes(releasedKey(epoch)) };
  }

  /** Takes the lease for `durationMs`, or throws LeaseHeldError naming the holder. */
  async acquire(durationMs: number, now = Date.now()): Promise<LeaseRecord> {
    const latest = await this.latest();
    let epoch = 1;
    if (latest) {
      const { record, released } = latest;
      // the same owner (this driver renewing, or the same driver identity restarted) may go on
      const mine = record.owner === this.owner;
      if (!released && !mine && now < record.expiresAtMs + this.skewMs) throw new LeaseHeldError(record);
      epoch = record.epoch + 1;
    }
    const record: LeaseRecord = {
      owner: this.owner,
      epoch,
      acquiredAtMs: now,
      expiresAtMs: now + durationMs,
    };
    if (!(await this.store.putIfAbsent(epochKey(epoch), encodeJson(record)))) {
      const winner = await this.latest();
      throw new LeaseHeldError(winner?.record ?? record);
    }
    this.current = record;
    // old epochs are history; keep the last few for inspection
    for (const key of await this.store.list(PREFIX)) {
      const e = Number(key.slice(PREFIX.length).split('.')[0]);
      if (e < epoch - 3) await this.store.delete(key);
    }
    return record;
  }

  /** Renews before half the lease has passed; returns false if the lease was lost. */
  async renewIfDue(durationMs: number, now = Date.now()): Promise<boolean> {
    const cur = this.current;
    if (!cur) return false;
    if (now < cur.acquiredAtMs + (cur.expiresAtMs - cur.acquiredAtMs) / 2) return true;
    try {
      await this.acquire(durationMs, now);
      return true;
    } catch (err) {
      if (err instanceof LeaseHeldError) {
        this.current = undefined;
        return false;
      }
      throw err;
    }
  }

  /** Time left on the lease. */
  remainingMs(now = Date.now()): number {
    return this.current ? this.current.expiresAtMs - now : 0;
  }

  /** Hands the lease over so the next driver need not wait for it to expire. */
  async release(): Promise<void> {
    const cur = this.current;
    if (!cur) return;
    await this.store.put(releasedKey(cur.epoch), new Uint8Array(0));
    this.current = undefined;
  }
}
