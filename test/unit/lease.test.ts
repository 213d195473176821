import { describe, expect, it } from 'vitest';
import { DriverLease, LeaseHeldError } from '../../shared/core/lease.ts';
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
});
