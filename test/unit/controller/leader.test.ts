// Leader election against an in-memory Lease store with resourceVersion checks (the API server's optimistic
// concurrency), driven by a manual clock.
import type { V1Lease } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../lib/clock.js';
import { silentLogger } from '../../../lib/log.js';
import { LeaderElector } from '../../../operator/controller/leader.js';

class Store {
  lease?: V1Lease;
  rv = 0;
  async getLease() {
    return this.lease && structuredClone(this.lease);
  }
  async createLease(l: V1Lease) {
    if (this.lease) throw Object.assign(new Error('exists'), { code: 409 });
    this.lease = { ...structuredClone(l), metadata: { ...l.metadata, resourceVersion: String(++this.rv) } };
    return this.lease;
  }
  async replaceLease(l: V1Lease) {
    if (l.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw Object.assign(new Error('conflict'), { code: 409 });
    this.lease = { ...structuredClone(l), metadata: { ...l.metadata, resourceVersion: String(++this.rv) } };
    return this.lease;
  }
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

class ManualClock implements Clock {
  t = Date.parse('2026-01-01T00:00:00Z');
  timers: { at: number; fn: () => void }[] = [];
  now = () => new Date(this.t);
  setTimeout = (fn: () => void, ms: number) => {
    const timer = { at: this.t + ms, fn };
    this.timers.push(timer);
    return timer;
  };
  clearTimeout = (h: unknown) => {
    this.timers = this.timers.filter((t) => t !== h);
  };
  async advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.t = next.at;
      next.fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

const opts = (identity: string) => ({ namespace: 'ns', name: 'op', identity, leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });

function candidate(store: Store, clock: ManualClock, id: string) {
  const state = { started: 0, stopped: 0 };
  const e = new LeaderElector(store, opts(id), { onStartedLeading: () => state.started++, onStoppedLeading: () => state.stopped++ }, silentLogger, clock);
  return { e, state };
}

describe('LeaderElector', () => {
  it('one of two candidates leads; the other takes over only after the lease expires', async () => {
    const store = new Store();
    // each candidate has its own clock: a dead candidate's clock simply stops
    const clockA = new ManualClock();
    const clockB = new ManualClock();
    const both = async (ms: number) => {
      for (let t = 0; t < ms; t += 500) {
        await clockA.advance(500);
        await clockB.advance(500);
      }
    };
    const a = candidate(store, clockA, 'a');
    const b = candidate(store, clockB, 'b');
    a.e.start();
    await flush();
    b.e.start();
    await both(30_000);
    expect(a.e.isLeader).toBe(true);
    expect(b.e.isLeader).toBe(false);
    expect(store.lease!.spec!.holderIdentity).toBe('a');
    expect(String(store.lease!.spec!.renewTime)).toMatch(/\.\d{6}Z$/);

    // a dies without releasing: b waits out the lease duration, measured on its own clock
    await clockB.advance(12_000);
    expect(b.e.isLeader).toBe(false);
    await clockB.advance(6_000);
    expect(b.e.isLeader).toBe(true);
    expect(store.lease!.spec!.holderIdentity).toBe('b');
    expect(store.lease!.spec!.leaseTransitions).toBe(1);
  });

  it('a clean stop frees the lease so the standby takes over at its next try', async () => {
    const store = new Store();
    const clock = new ManualClock();
    const a = candidate(store, clock, 'a');
    const b = candidate(store, clock, 'b');
    a.e.start();
    await flush();
    b.e.start();
    await clock.advance(5_000);
    expect(a.e.isLeader).toBe(true);
    await a.e.stop();
    expect(store.lease!.spec!.holderIdentity).toBe('');
    await clock.advance(2_100);
    expect(b.e.isLeader).toBe(true);
  });

  it('gives up leadership when renewals fail past the renew deadline', async () => {
    const store = new Store();
    const clock = new ManualClock();
    const a = candidate(store, clock, 'a');
    a.e.start();
    await flush();
    expect(a.state.started).toBe(1);
    store.replaceLease = async () => {
      throw new Error('apiserver down');
    };
    await clock.advance(9_000);
    expect(a.e.isLeader).toBe(true);
    await clock.advance(3_000);
    expect(a.e.isLeader).toBe(false);
    expect(a.state.stopped).toBe(1);
  });
});
