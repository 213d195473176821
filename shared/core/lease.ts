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
 * Renewal keeps the sequence unbroken: the holder of epoch E renews by writing E+1 itself, never
 * by taking whatever epoch is latest, so a driver that once lost its epoch (another driver wrote
 * E+1) can never hold the lease again with stale in-memory state: it is fenced (see fencing.ts).
 *
 * @module
 */
import { hostname } from 'node:os';
import { LeaseHeldError, LeaseLostError } from '../errors.ts';

export { LeaseHeldError, LeaseLostError };

import type { ObjectStore } from '../ports/object-store.ts';
import { decodeJson, encodeJson } from './codec.ts';

export interface LeaseRecord {
  readonly owner: string;
  readonly epoch: number;
  readonly acquiredAtMs: number;
  readonly expiresAtMs: number;
  /** Host name and process id of the holder: a holder on this host whose process is gone is dead. */
  readonly host?: string;
  readonly pid?: number;
}

/** How a lease was taken from a holder that had not released it. */
export interface Takeover {
  readonly holder: LeaseRecord;
  readonly reason: 'forced' | 'holder-dead';
}

/** True when `pid` names no process on this host (`kill(pid, 0)` fails with ESRCH). */
export function processIsGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

const PREFIX = 'lease/';
/**
 * How many epochs before the newest stay in the store. A fence check asks only whether epoch E+1
 * exists (one GET, see `successor`), so E+1 must not be deleted while its former holder may still
 * check with E: only the holder of the newest epoch N deletes, and only epochs below N - 64. A
 * holder of E checks with E only within a third of its lease duration of taking E (later it renews,
 * by LIST) or, not renewing (the scheduler Lambda), only before E expires; 64 epochs after E take
 * at least about ten lease durations of renewals (at most one renewal a third of a duration, two
 * with checks) or 64 takeovers, each of which waits for the one before to expire or release.
 */
export const LEASE_HISTORY_EPOCHS = 64;
const epochKey = (epoch: number) => `${PREFIX}${String(epoch).padStart(12, '0')}.json`;
const releasedKey = (epoch: number) => `${PREFIX}${String(epoch).padStart(12, '0')}.released`;

export class DriverLease {
  private readonly store: ObjectStore;
  readonly owner: string;
  private current: LeaseRecord | undefined;
  /** Allowed clock difference between drivers. */
  readonly skewMs: number;

  private readonly host: string;
  private readonly pid: number;
  /** Set by acquire() when it took the lease from a holder that had not released it. */
  takeover: Takeover | undefined;

  constructor(
    store: ObjectStore,
    owner: string,
    options: { skewMs?: number; host?: string; pid?: number; detectDeadHolders?: boolean } = {},
  ) {
    this.store = store;
    this.owner = owner;
    this.skewMs = options.skewMs ?? 2_000;
    this.host = options.host ?? hostname();
    this.pid = options.pid ?? process.pid;
    this.detectDeadHolders = options.detectDeadHolders ?? true;
  }

  /** Off where host name and pid do not identify a process (Lambda sandboxes may share both). */
  private readonly detectDeadHolders: boolean;

  /** A holder on this host whose process no longer exists cannot be writing: no need to wait. */
  private holderIsDead(record: LeaseRecord): boolean {
    if (!this.detectDeadHolders || record.host !== this.host || record.pid === undefined) return false;
    if (record.pid === this.pid) return false;
    return processIsGone(record.pid);
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

  /**
   * Takes the lease for `durationMs`, or throws LeaseHeldError naming the holder. A holder that
   * has not released it is waited out unless it is provably dead (same host, its pid gone) or
   * `force` is set (the caller warns: a live holder is fenced at its next check).
   */
  async acquire(
    durationMs: number,
    now = Date.now(),
    options: { force?: boolean } = {},
  ): Promise<LeaseRecord> {
    const latest = await this.latest();
    let epoch = 1;
    this.takeover = undefined;
    if (latest) {
      const { record, released } = latest;
      // the same owner (the same driver identity restarted) may go on
      const mine = record.owner === this.owner;
      if (!released && !mine && now < record.expiresAtMs + this.skewMs) {
        if (options.force) this.takeover = { holder: record, reason: 'forced' };
        else if (this.holderIsDead(record)) this.takeover = { holder: record, reason: 'holder-dead' };
        else throw new LeaseHeldError(record);
      }
      epoch = record.epoch + 1;
    }
    const record = this.recordFor(epoch, durationMs, now);
    if (!(await this.store.putIfAbsent(epochKey(epoch), encodeJson(record)))) {
      const winner = await this.latest();
      throw new LeaseHeldError(winner?.record ?? record);
    }
    this.current = record;
    // old epochs are history: the holder of the newest deletes those below it minus the history
    // (LEASE_HISTORY_EPOCHS: a former holder's fence check GETs the epoch after its own)
    for (const key of await this.store.list(PREFIX)) {
      const e = Number(key.slice(PREFIX.length).split('.')[0]);
      if (e < epoch - LEASE_HISTORY_EPOCHS) await this.store.delete(key);
    }
    return record;
  }

  private recordFor(epoch: number, durationMs: number, now: number): LeaseRecord {
    return {
      owner: this.owner,
      epoch,
      acquiredAtMs: now,
      expiresAtMs: now + durationMs,
      host: this.host,
      pid: this.pid,
    };
  }

  /**
   * Renews by writing the next epoch (put-if-absent). Returns false, and holds nothing from then
   * on, if another driver wrote it first: the lease was lost, even if that driver is gone since.
   */
  async renew(durationMs: number, now = Date.now()): Promise<boolean> {
    const cur = this.current;
    if (!cur) return false;
    // a later epoch than ours, even one whose E+1 was since cleaned up, means we lost the lease
    if ((await this.latestEpoch()) > cur.epoch) {
      this.current = undefined;
      return false;
    }
    const record = this.recordFor(cur.epoch + 1, durationMs, now);
    if (!(await this.store.putIfAbsent(epochKey(record.epoch), encodeJson(record)))) {
      this.current = undefined;
      return false;
    }
    this.current = record;
    // old epochs are history: the holder of the newest deletes the one that fell out of the
    // history (LEASE_HISTORY_EPOCHS: a former holder's fence check GETs the epoch after its own)
    const old = record.epoch - LEASE_HISTORY_EPOCHS - 1;
    if (old >= 1) {
      await this.store.delete(epochKey(old));
      await this.store.delete(releasedKey(old));
    }
    return true;
  }

  /** Renews before half the lease has passed; returns false if the lease was lost. */
  async renewIfDue(durationMs: number, now = Date.now()): Promise<boolean> {
    const cur = this.current;
    if (!cur) return false;
    if (now < cur.acquiredAtMs + (cur.expiresAtMs - cur.acquiredAtMs) / 2) return true;
    return this.renew(durationMs, now);
  }

  /**
   * The record of another driver that took an epoch after ours, if one did: one GET of epoch E+1.
   * Every driver that takes the lease after ours writes E+1 first (acquire writes latest + 1, renew
   * writes its own + 1, both put-if-absent), so a later epoch exists only if E+1 does, and E+1 is
   * not deleted while we may still check with E (LEASE_HISTORY_EPOCHS). Renew and acquire, which
   * must see the newest epoch, LIST.
   */
  async successor(): Promise<LeaseRecord | undefined> {
    const cur = this.current;
    if (!cur) return undefined;
    const bytes = await this.store.get(epochKey(cur.epoch + 1));
    return bytes ? decodeJson<LeaseRecord>(bytes) : undefined;
  }

  private async latestEpoch(): Promise<number> {
    const keys = await this.store.list(PREFIX);
    return Math.max(
      0,
      ...keys.filter((k) => k.endsWith('.json')).map((k) => Number(k.slice(PREFIX.length, -5))),
    );
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
