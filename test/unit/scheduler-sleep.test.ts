import { describe, expect, it } from 'vitest';
import { type AsleepMarker, decideTick, SleepMemory, type TickPorts } from '../../functions/lib/sleep.ts';

/** Fake queue and bucket that count what a tick asks. */
function ports(depth: number, marker?: AsleepMarker) {
  const calls = { sqs: 0, s3: 0 };
  const p: TickPorts = {
    async queueDepth() {
      calls.sqs++;
      return depth;
    },
    async readMarker() {
      calls.s3++;
      return marker;
    },
  };
  return { p, calls };
}

const asleep: AsleepMarker = { asleepAtMs: 0, lastBatchMs: 1000, wakeAtMs: null };

describe('the sleeping scheduler: what a tick does first (issue 11)', () => {
  it('asleep and the queue empty: one SQS request, no S3 request once the container knows', async () => {
    const memory = new SleepMemory();
    const first = ports(0, asleep);
    expect(await decideTick(first.p, memory, 60_000)).toEqual({ action: 'sleep-on', reason: 'marker' });
    expect(first.calls).toEqual({ sqs: 1, s3: 1 }); // a cold container reads the marker once
    for (let tick = 2; tick <= 10; tick++) {
      const next = ports(0, asleep);
      expect(await decideTick(next.p, memory, tick * 60_000)).toEqual({
        action: 'sleep-on',
        reason: 'remembered',
      });
      expect(next.calls).toEqual({ sqs: 1, s3: 0 });
    }
  });

  it('messages waiting: run and wake, without reading the marker', async () => {
    const memory = new SleepMemory();
    memory.remember(asleep, 0);
    const { p, calls } = ports(3, asleep);
    expect(await decideTick(p, memory, 60_000)).toEqual({ action: 'run', waking: true, depth: 3 });
    expect(calls).toEqual({ sqs: 1, s3: 0 });
    expect(memory.fresh(60_000)).toBeUndefined();
  });

  it('the queue empty and no marker: the pipeline is awake (state, or handed over): run', async () => {
    const { p } = ports(0, undefined);
    expect(await decideTick(p, new SleepMemory(), 0)).toEqual({ action: 'run', waking: false, depth: 0 });
  });

  it('knowledge older than the TTL is checked again; a wake time that fell due wakes it', async () => {
    const memory = new SleepMemory(5 * 60_000);
    memory.remember(asleep, 0);
    const stale = ports(0, undefined);
    expect((await decideTick(stale.p, memory, 6 * 60_000)).action).toBe('run');
    expect(stale.calls.s3).toBe(1);
    const due = ports(0, { ...asleep, wakeAtMs: 100 });
    expect(await decideTick(due.p, new SleepMemory(), 200)).toEqual({
      action: 'run',
      waking: true,
      depth: 0,
    });
  });
});
