// Liveness follows the reconcile loop: a reconcile that never returns (a write that hangs) fails /healthz once
// it has run past --reconcile-timeout, so the kubelet restarts a wedged operator; one that returns clears it.
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../lib/clock.js';
import { silentLogger } from '../../../lib/log.js';
import type { Caches } from '../../../operator/controller/informers.js';
import { Manager } from '../../../operator/controller/manager.js';
import type { Reconciler } from '../../../operator/controller/reconciler.js';
import { OperatorMetrics } from '../../../operator/server/metrics.js';

describe('Manager health', () => {
  it('is not ok while a reconcile has run longer than wedgedAfterMs, and ok again once it returns', async () => {
    let t = 0;
    const clock: Clock = { now: () => new Date(t), setTimeout: () => 0, clearTimeout: () => {} };
    let release!: () => void;
    const hung = new Promise<void>((r) => (release = r));
    const reconciler = { reconcile: async () => (await hung, {}) } as unknown as Reconciler;
    const caches = { allRecModelKeys: () => ['ns/stuck'] } as unknown as Caches;
    const m = new Manager(caches, reconciler, { workers: 1, resyncMs: 60_000, wedgedAfterMs: 300_000 }, new OperatorMetrics(), clock, silentLogger);
    m.start();
    await new Promise((r) => setImmediate(r));
    t = 299_000;
    expect(m.health()).toEqual({ ok: true, detail: '1 reconciling, 0 queued' });
    t = 301_000;
    expect(m.health()).toEqual({ ok: false, detail: 'reconcile of ns/stuck has run for 301 s' });
    release();
    await new Promise((r) => setImmediate(r));
    expect(m.health().ok).toBe(true);
    await m.stop();
  });
});
