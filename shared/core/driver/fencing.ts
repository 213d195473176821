import { hostname } from 'node:os';
import type { ObjectStore } from '../../ports/object-store.ts';
import { DriverLease, LeaseLostError, type LeaseRecord } from '../lease.ts';
import { DRIVER_DEFAULTS, type LeaseOptions } from './options.ts';

/**
 * Keeps a driver's lease and fences its writes with it.
 *
 * - A timer renews the lease every third of its duration, independent of batch progress, so a
 *   batch that runs longer than the lease keeps it.
 * - `check(what)` runs right before every write that matters (input blocks, the write-ahead entry
 *   with the source positions, the manifest): it verifies from the store that no other driver
 *   took an epoch after ours, renewing first if the lease is due or has run out. Not due, it is
 *   one GET of epoch E+1 (`DriverLease.successor`), not a LIST of `lease/` (a GET costs a twelfth
 *   of a LIST on S3): whoever takes the lease after us writes E+1 first, and E+1 stays while we
 *   may check with E (the newest holder deletes only epochs 64 below its own; we check with E
 *   only within a third of the duration of taking it, or before it expires when not renewing:
 *   see LEASE_HISTORY_EPOCHS in lease.ts). Renewal and acquisition LIST, as they must find the
 *   newest epoch.
 * - Once another driver took over (a renewal or a check finds the next epoch written by someone
 *   else), the driver is fenced for good: every later check throws LeaseLostError, `lost`
 *   rejects (the run loop stops at once) and nothing is renewed or released.
 */
export class LeaseKeeper {
  private readonly lease: DriverLease;
  private readonly durationMs: number;
  private readonly renews: boolean;
  private readonly log: (event: Record<string, unknown>) => void;
  private timer: ReturnType<typeof setInterval> | undefined;
  private paused = false;
  /** Renewals and checks one at a time: two concurrent renewals would race for the same epoch. */
  private queue: Promise<unknown> = Promise.resolve();
  private fencedError: LeaseLostError | undefined;
  private rejectLost!: (err: LeaseLostError) => void;
  /** Rejects with LeaseLostError once this driver is fenced. */
  readonly lost: Promise<never>;

  constructor(
    lease: DriverLease,
    options: { durationMs: number; renew: boolean; log?: (event: Record<string, unknown>) => void },
  ) {
    this.lease = lease;
    this.durationMs = options.durationMs;
    this.renews = options.renew;
    this.log = options.log ?? (() => {});
    this.lost = new Promise<never>((_, reject) => {
      this.rejectLost = reject;
    });
    this.lost.catch(() => {}); // observed through race(); never an unhandled rejection
  }

  get fenced(): LeaseLostError | undefined {
    return this.fencedError;
  }

  /** Starts the renewal timer (a third of the duration; unref'd, it never keeps a process alive). */
  start(): void {
    if (!this.renews || this.timer) return;
    this.timer = setInterval(
      () => {
        if (this.paused || this.fencedError) return;
        void this.serialize(() => this.renewNow('renewal timer')).catch((err) =>
          this.log({ event: 'lease.renewFailed', error: String(err) }),
        );
      },
      Math.max(1, Math.floor(this.durationMs / 3)),
    );
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Fault injection (`longBatch`): the whole driver stalls, renewals too, as a paused process
   * would, for one and a half lease durations plus the allowed clock skew: long enough for
   * another driver to take the lease over.
   */
  async stallPastLease(): Promise<void> {
    const ms = (this.durationMs * 3) / 2 + this.lease.skewMs;
    this.paused = true;
    this.log({ event: 'fault.longBatch', stallMs: ms, epoch: this.lease.record?.epoch });
    await new Promise((r) => setTimeout(r, ms));
    this.paused = false;
  }

  /** Races `work` against losing the lease: a fenced driver stops waiting for its batch at once. */
  race<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.lost]);
  }

  /** Verifies from the store that this driver still holds the lease; throws LeaseLostError if not. */
  check(what: string): Promise<void> {
    return this.serialize(async () => {
      if (this.fencedError) throw this.fencedError;
      const cur = this.lease.record;
      if (!cur) throw this.fence(undefined, `no lease held before ${what}`);
      const now = Date.now();
      if (this.renews) {
        // due (past a third) or run out while the process stood still: renew first
        if (now >= cur.acquiredAtMs + this.durationMs / 3) return this.renewNow(what);
      } else if (now >= cur.expiresAtMs) {
        throw this.fence(undefined, `its lease ran out before ${what}`);
      }
      const next = await this.lease.successor();
      if (next) throw this.fence(next, `found before ${what}`);
    });
  }

  private async renewNow(what: string): Promise<void> {
    if (this.fencedError) throw this.fencedError;
    const epoch = this.lease.record?.epoch;
    if (await this.lease.renew(this.durationMs)) return;
    const holder = await this.lease.latest().catch(() => undefined);
    throw this.fence(holder?.record, `renewing epoch ${epoch} failed (${what})`, epoch);
  }

  private fence(
    holder: LeaseRecord | undefined,
    detail: string,
    epoch = this.lease.record?.epoch ?? 0,
  ): LeaseLostError {
    if (this.fencedError) return this.fencedError;
    const err = new LeaseLostError(this.lease.owner, epoch, holder, detail);
    this.fencedError = err;
    this.stop();
    this.log({ event: 'lease.lost', owner: this.lease.owner, epoch, holder: holder?.owner, detail });
    this.rejectLost(err);
    return err;
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => {});
    return p;
  }
}

/**
 * The driver's fence: the lease it holds (none with `lease: false`) and its keeper. `check` before
 * a write that matters; `race` a batch against losing the lease; `release` on a clean stop.
 */
export class DriverFence {
  private constructor(
    readonly lease: DriverLease | undefined,
    readonly keeper: LeaseKeeper | undefined,
  ) {}

  /** No lease (`lease: false`): every check passes. */
  static readonly none = new DriverFence(undefined, undefined);

  /**
   * Takes the driver lease on `store` as `options` say (see BatchSchedulerOptions.lease) and starts
   * renewing it. Logs a takeover from a dead or forced-out holder.
   */
  static async take(
    store: ObjectStore,
    options: LeaseOptions | undefined,
    log: (event: Record<string, unknown>) => void,
  ): Promise<DriverFence> {
    const durationMs = options?.durationMs ?? DRIVER_DEFAULTS.leaseDurationMs;
    const lease = new DriverLease(store, options?.owner ?? `${hostname()}:${process.pid}`, {
      skewMs: options?.skewMs ?? Math.min(2_000, durationMs / 10),
      // only `<host>:<pid>` drivers (sluice run): a named owner (the scheduler Lambda) may share both
      detectDeadHolders: options?.owner === undefined,
    });
    const record = await lease.acquire(durationMs, Date.now(), { force: options?.force });
    const takeover = lease.takeover;
    if (takeover) log({ event: 'lease.takeover', ...takeover, epoch: record.epoch });
    const keeper = new LeaseKeeper(lease, { durationMs, renew: options?.renew !== false, log });
    keeper.start();
    return new DriverFence(lease, keeper);
  }

  get record(): LeaseRecord | undefined {
    return this.lease?.record;
  }

  /** Verifies the lease from the store right before a write that matters. */
  async check(what: string): Promise<void> {
    await this.keeper?.check(what);
  }

  /** A driver that lost its lease stops waiting for `work` at once (LeaseLostError). */
  race<T>(work: Promise<T>): Promise<T> {
    return this.keeper ? this.keeper.race(work) : work;
  }

  /** Stops renewing (a crashed driver leaves its lease to expire). */
  stop(): void {
    this.keeper?.stop();
  }

  /** Stops renewing and hands the lease over, unless another driver already took it. */
  async release(): Promise<void> {
    this.keeper?.stop();
    if (!this.keeper?.fenced) await this.lease?.release();
  }
}
