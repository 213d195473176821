import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CountingObjectStore } from '../../shared/core/counting-store.ts';
import { LeaseKeeper } from '../../shared/core/driver/fencing.ts';
import {
  DriverLease,
  LEASE_HISTORY_EPOCHS,
  LeaseHeldError,
  LeaseLostError,
} from '../../shared/core/lease.ts';
import { MemoryObjectStore } from '../../shared/index.ts';

describe('DriverLease', () => {
  it('lets one driver hold the lease until it releases it', async () => {
    const store = new MemoryObjectStore();
    const a = new DriverLease(store, 'a');
    const b = new DriverLease(store, 'b');
    const now = 1_000_000;
    expect((await a.acquire(10_000, now)).epoch).toBe(1);
    await expect(b.acquire(10_000, now + 1)).rejects.toThrow(LeaseHeldError);
    await expect(b.acquire(10_000, now + 1)).rejects.toThrow(/a\) holds the lease/);
    await a.release();
    expect((await b.acquire(10_000, now + 2)).epoch).toBe(2);
  });

  it('lets another driver take over once the lease expired (plus clock skew)', async () => {
    const store = new MemoryObjectStore();
    const a = new DriverLease(store, 'a', { skewMs: 100 });
    const b = new DriverLease(store, 'b', { skewMs: 100 });
    await a.acquire(1_000, 0);
    await expect(b.acquire(1_000, 1_050)).rejects.toThrow(LeaseHeldError);
    expect((await b.acquire(1_000, 1_200)).owner).toBe('b');
    // the old holder finds out when it tries to renew
    expect(await a.renewIfDue(1_000, 1_300)).toBe(false);
  });

  it('renews by taking the next epoch past half of its duration', async () => {
    const store = new MemoryObjectStore();
    const a = new DriverLease(store, 'a');
    await a.acquire(1_000, 0);
    expect(await a.renewIfDue(1_000, 400)).toBe(true);
    expect(a.record!.epoch).toBe(1);
    expect(await a.renewIfDue(1_000, 600)).toBe(true);
    expect(a.record!.epoch).toBe(2);
    expect(a.record!.expiresAtMs).toBe(1_600);
  });

  it('gives the lease to exactly one of many racing drivers', async () => {
    const store = new MemoryObjectStore();
    const drivers = Array.from({ length: 8 }, (_, i) => new DriverLease(store, `d${i}`));
    const results = await Promise.allSettled(drivers.map((d) => d.acquire(10_000, 5)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('never lets a driver that lost an epoch hold the lease again, even after the taker expired', async () => {
    const store = new MemoryObjectStore();
    const a = new DriverLease(store, 'a', { skewMs: 100 });
    const b = new DriverLease(store, 'b', { skewMs: 100 });
    await a.acquire(1_000, 0);
    expect((await b.acquire(1_000, 1_200)).epoch).toBe(2);
    // b's lease has run out too: a must still not take epoch 3 with its stale view of the store
    expect(await a.renew(1_000, 5_000)).toBe(false);
    expect(a.record).toBeUndefined();
    expect((await a.latest())!.record.owner).toBe('b');
  });

  it('tells its successor: the epoch after its own written by another driver', async () => {
    const store = new MemoryObjectStore();
    const a = new DriverLease(store, 'a');
    const b = new DriverLease(store, 'b');
    await a.acquire(1_000, 0);
    expect(await a.successor()).toBeUndefined();
    await b.acquire(1_000, 0, { force: true });
    expect((await a.successor())?.owner).toBe('b');
  });

  it('finds it has lost the lease even after the epochs after its own were cleaned up', async () => {
    const store = new MemoryObjectStore();
    const a = new DriverLease(store, 'a', { skewMs: 0 });
    const b = new DriverLease(store, 'b', { skewMs: 0 });
    await a.acquire(1_000, 0);
    await b.acquire(1_000, 2_000);
    for (let i = 0; i < 6; i++) expect(await b.renew(1_000, 2_100 + i)).toBe(true);
    // epoch 2 is kept as history (LEASE_HISTORY_EPOCHS): the fence check's GET of it finds b
    expect((await a.successor())?.owner).toBe('b');
    for (let i = 6; i < LEASE_HISTORY_EPOCHS + 2; i++) expect(await b.renew(1_000, 2_100 + i)).toBe(true);
    expect(await store.get('lease/000000000002.json')).toBeUndefined();
    // renewal lists: it finds the later epochs though the one after its own is gone
    expect(await a.renew(1_000, 9_000)).toBe(false);
  });

  it('takes the lease at once from a holder on this host whose process is gone', async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    const deadPid = child.pid!;
    await new Promise((r) => child.on('exit', r));
    const store = new MemoryObjectStore();
    await new DriverLease(store, 'dead', { host: 'h1', pid: deadPid }).acquire(60_000, 0);
    // on another host the same pid proves nothing: wait for the lease
    await expect(new DriverLease(store, 'other', { host: 'h2' }).acquire(60_000, 1)).rejects.toThrow(
      LeaseHeldError,
    );
    const next = new DriverLease(store, 'next', { host: 'h1' });
    expect((await next.acquire(60_000, 2)).epoch).toBe(2);
    expect(next.takeover).toMatchObject({ reason: 'holder-dead', holder: { owner: 'dead', pid: deadPid } });
  });

  it('waits for a live holder on this host, unless forced', async () => {
    const store = new MemoryObjectStore();
    await new DriverLease(store, 'live', { host: 'h1', pid: process.ppid }).acquire(60_000, 0);
    const b = new DriverLease(store, 'b', { host: 'h1' });
    await expect(b.acquire(60_000, 1)).rejects.toThrow(/\(live\) holds the lease.*--force/);
    expect((await b.acquire(60_000, 1, { force: true })).epoch).toBe(2);
    expect(b.takeover).toMatchObject({ reason: 'forced', holder: { owner: 'live' } });
  });

  it("a fence check finds a usurper's epoch with one GET, no LIST, also after the usurper renewed many times", async () => {
    const store = new CountingObjectStore(new MemoryObjectStore());
    const a = new DriverLease(store, 'a');
    const b = new DriverLease(store, 'b');
    const now = Date.now();
    await a.acquire(600_000, now);
    // the scheduler Lambda's keeper: no renewals, every check asks the store
    const keeper = new LeaseKeeper(a, { durationMs: 600_000, renew: false });
    let before = store.snapshot();
    await keeper.check('a write');
    expect(store.since(before)).toMatchObject({ get: 1, list: 0, put: 0 });
    await b.acquire(600_000, now, { force: true });
    // the usurper renews 40 times (epoch 2 to 42) and keeps its history
    for (let i = 0; i < 40; i++) expect(await b.renew(600_000, now + i)).toBe(true);
    expect(b.record!.epoch).toBe(42);
    before = store.snapshot();
    const err = await keeper.check('the manifest').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect(String(err)).toMatch(/to b \(epoch 2\)/);
    expect((err as LeaseLostError).holder?.owner).toBe('b');
    expect(store.since(before)).toMatchObject({ get: 1, list: 0, put: 0 });
    // fenced for good: later checks throw without asking the store
    await expect(keeper.check('again')).rejects.toBeInstanceOf(LeaseLostError);
    // and the epoch after a's stays while b keeps renewing within the history
    expect(await store.get('lease/000000000002.json')).toBeDefined();
  });
});
