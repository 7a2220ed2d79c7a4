import { describe, expect, it } from 'vitest';
import { uniform } from '../../../loadgen/distributions.js';
import { decide, fitCurve, newMemory, perPodAt, type ComponentSample, type LawInput } from '../../../operator/autoscaling/law.js';
import { defaultPolicy } from '../../../operator/autoscaling/policy.js';

// the CRD's defaults: scale up max(4 pods, 100%) per 15 s; down max(1 pod, 10%) per minute after 5 min under the band;
// target 100 ms
const policy = defaultPolicy(100, 20);
const S = 1000;

/** Drives one component: each call is one evaluation at `t` seconds. */
function component(current: number, o: Partial<Omit<LawInput, 'sample' | 'current' | 'nowMs'>> = {}) {
  const mem = newMemory();
  const at = (t: number, sample: Partial<ComponentSample> & { latencyMs?: number }) => {
    const out = decide(mem, {
      policy,
      bounds: policy.main,
      mayScaleUp: true,
      ...o,
      current,
      nowMs: t * S,
      sample: { rate: 100, readyPods: current, warmPods: current, ...sample },
    });
    current = out.desired;
    return out;
  };
  return {
    at,
    mem,
    get current() {
      return current;
    },
  };
}

describe('the latency control law (target 100 ms, tolerance 0.1: act over 90 ms, remove pods under 80 ms)', () => {
  it('over the band, multiplies the warm pods by the ratio of the tail to the middle of the band, at most doubling', () => {
    expect(component(4).at(0, { latencyMs: 150 })).toMatchObject({ desired: 8, reason: 'LatencyAboveTarget' }); // 4 x 150/85
    expect(component(4).at(0, { latencyMs: 900 })).toMatchObject({ desired: 8, recommended: 8 });
    expect(component(4).at(0, { latencyMs: 101 })).toMatchObject({ desired: 5 });
    expect(component(4).at(0, { latencyMs: 88 })).toMatchObject({ desired: 4, reason: 'WithinTolerance' });
  });

  it("acts on a tail over the band but under the target only once three readings in a row say so (a window's tail is noisy)", () => {
    const c = component(4);
    expect(c.at(0, { latencyMs: 95 })).toMatchObject({
      desired: 4,
      reason: 'WithinTolerance',
      message: expect.stringMatching(/once; acting if the next reading confirms it/),
    });
    expect(c.at(15, { latencyMs: 93 }).desired).toBe(4);
    c.at(30, { latencyMs: 85 }); // back in the band: the count starts again
    expect(c.at(45, { latencyMs: 95 }).desired).toBe(4);
    expect(c.at(60, { latencyMs: 95 }).desired).toBe(4);
    expect(c.at(75, { latencyMs: 95 })).toMatchObject({ desired: 5, reason: 'LatencyAboveTarget' });
    // over the target itself, or a growing backlog, acts at once
    expect(component(4).at(0, { latencyMs: 120 }).desired).toBeGreaterThan(4);
    const backlog = component(4);
    backlog.at(0, { latencyMs: 80, rate: 100, inflight: 0 });
    expect(backlog.at(15, { latencyMs: 95, rate: 100, inflight: 300 }).desired).toBeGreaterThan(4);
  });

  it('adds at least one pod when over the band', () => {
    const thrice = (c: ReturnType<typeof component>) => [0, 15, 30].map((t) => c.at(t, { latencyMs: 91 })).at(-1);
    expect(thrice(component(20, { bounds: { min: 1, max: 40 } }))).toMatchObject({ desired: 22 }); // 20 x 91/85
    expect(thrice(component(1))).toMatchObject({ desired: 2 });
  });

  it('does not act on the same overload again until the pods it added are warm and in the window', () => {
    const c = component(4);
    expect(c.at(0, { latencyMs: 300 }).desired).toBe(8);
    expect(c.at(15, { latencyMs: 300, readyPods: 6, warmPods: 4 })).toMatchObject({ desired: 8, reason: 'WaitingForWarmup' });
    expect(c.at(60, { latencyMs: 300, readyPods: 8, warmPods: 8 })).toMatchObject({ desired: 8, reason: 'WaitingForWarmup' }); // warm, not yet half a window
    expect(c.at(90, { latencyMs: 300, readyPods: 8, warmPods: 8 })).toMatchObject({ desired: 16, reason: 'LatencyAboveTarget' });
  });

  it('in overload, sizes for the demand: served rate plus the backlog growth, even while pods warm up', () => {
    const c = component(4, { bounds: { min: 1, max: 100 } });
    c.at(0, { latencyMs: 85, rate: 140, inflight: 0 });
    const first = c.at(15, { latencyMs: 500, rate: 140, inflight: 4500 }); // backlog grows 300/s: demand 440/s
    expect(first).toMatchObject({ desired: 8, recommended: 14 }); // 440 / (35 x 0.9), rate-limited to max(4, 100%)
    expect(first.message).toMatch(/demand 440 requests\/s/);
    // the new pods are not ready yet but the backlog keeps growing: the demand says more than the 8 asked for
    expect(c.at(30, { latencyMs: 900, rate: 140, readyPods: 4, warmPods: 4, inflight: 9000 })).toMatchObject({ desired: 14 });
  });

  it('respects the scale-up rate limit within a period', () => {
    const c = component(10, {
      bounds: { min: 1, max: 100 },
      policy: { ...policy, scaleUp: { ...policy.scaleUp, maxPods: 2, maxPercent: 10, periodMs: 60_000 } },
    });
    const first = c.at(0, { latencyMs: 300 });
    expect(first).toMatchObject({ desired: 12, recommended: 20 });
    expect(first.limited).toMatch(/rate limit allows 12 now, not 20/);
    c.at(40, { latencyMs: 300 });
    expect(c.at(70, { latencyMs: 300 })).toMatchObject({ desired: 14, recommended: 24 }); // the first period is over
  });

  it('removes pods only after the tail stayed under the band for the stabilization window', () => {
    const c = component(8);
    for (let t = 0; t < 300; t += 15) expect(c.at(t, { latencyMs: 40 }).desired).toBe(8);
    expect(c.at(300, { latencyMs: 40 })).toMatchObject({ desired: 7, reason: 'LatencyBelowTarget' }); // far under: probe one pod
    // one window later, at the new per-pod load, the next step
    expect(c.at(330, { latencyMs: 40 }).desired).toBe(7);
    expect(c.at(360, { latencyMs: 40 }).desired).toBe(6);
    // a sample in the band starts the window again
    c.at(375, { latencyMs: 85 });
    expect(c.at(420, { latencyMs: 40 }).desired).toBe(6);
  });

  it('does not probe when the tail is not far under the target, nor from two pods to one', () => {
    const c = component(8);
    for (let t = 0; t <= 600; t += 15) c.at(t, { latencyMs: 70 });
    expect(c.current).toBe(8);
    const two = component(2);
    for (let t = 0; t <= 600; t += 15) two.at(t, { latencyMs: 30, rate: 20 });
    expect(two.current).toBe(2);
  });

  it('jumps down to a per-pod rate it has served under the band, within the rate limit', () => {
    const c = component(4, { bounds: { min: 1, max: 100 }, policy: { ...policy, scaleDown: { ...policy.scaleDown, maxPercent: 100 } } });
    c.at(0, { latencyMs: 70, rate: 200 }); // 50 requests/s per pod with the tail under the band
    for (let t = 15; t <= 300; t += 15) c.at(t, { latencyMs: 60, rate: 100 });
    expect(c.current).toBe(2); // 100/s at 50 each
  });

  it('never goes back to near a per-pod rate that pushed the tail over the band', () => {
    const c = component(4);
    c.at(0, { latencyMs: 300, rate: 200 }); // 50/s per pod missed: 8 pods
    let t = 45;
    for (; t < 1800; t += 15) c.at(t, { latencyMs: 30, rate: 180 });
    // probing stops at 5 pods (36/s each): 4 would carry 45/s, over 0.8 x the 50/s that missed
    expect(c.current).toBe(5);
    const out = c.at(t, { latencyMs: 30, rate: 180 });
    expect(out).toMatchObject({ desired: 5, reason: 'WithinTolerance' });
  });

  it('forgets a miss that a later pass at a clearly higher per-pod rate refutes (a burst, pods warming), not one barely passed', () => {
    const run = (passPerPod: number) => {
      const c = component(4, { bounds: { min: 1, max: 100 } });
      c.at(0, { latencyMs: 300, rate: 200 }); // 50/s per pod missed: 8 pods
      c.at(45, { latencyMs: 60, rate: 8 * passPerPod }); // then 8 pods serve passPerPod each, well under the band
      let t = 60;
      for (; t < 3600; t += 15) c.at(t, { latencyMs: 30, rate: 180 });
      return { current: c.current, misses: c.mem.failing.length };
    };
    // 60/s passed (over 50 x 1.1): the miss is gone; the pods follow what was served (180 / (60 x 1.1) = 3), then,
    // with the tail under half the target for the whole window, a probe of one pod fewer
    expect(run(60)).toEqual({ current: 2, misses: 0 });
    // 52/s is within the tolerance of the miss: it stands, and 180/s keeps 5 pods (4 would be 45/s, over 0.8 x 50)
    expect(run(52)).toEqual({ current: 5, misses: 1 });
  });

  it('probes one pod fewer only after the tail stayed under half the target for the whole stabilization window', () => {
    const c = component(8);
    // under the band throughout, but back over half the target every 4 minutes: no probe
    for (let t = 0; t <= 1200; t += 15) c.at(t, { latencyMs: t % 240 === 0 ? 60 : 40 });
    expect(c.current).toBe(8);
    for (let t = 1215; t < 1515; t += 15) expect(c.at(t, { latencyMs: 40 }).desired).toBe(8);
    expect(c.at(1515, { latencyMs: 40 })).toMatchObject({ desired: 7, reason: 'LatencyBelowTarget' });
  });

  it('holds when metrics are missing (never to the floor), or adds pods when the policy says ScaleUp', () => {
    const c = component(6);
    for (let t = 0; t < 3600; t += 15) expect(c.at(t, {})).toMatchObject({ desired: 6, reason: 'MetricsUnavailable' });
    const up = component(6, { policy: { ...policy, missingMetrics: 'ScaleUp' } });
    expect(up.at(0, {}).desired).toBe(12);
    expect(up.at(15, {}).desired).toBe(20); // the max
  });

  it('a component off the critical path holds, and the miss does not count against its capacity', () => {
    const c = component(4, { mayScaleUp: false });
    expect(c.at(0, { latencyMs: 300, rate: 200 })).toMatchObject({ desired: 4, reason: 'OtherComponentCritical' });
    expect(c.mem.failing).toEqual([]);
  });

  it('brings replicas outside the bounds back inside, whatever the latency', () => {
    expect(component(30).at(0, { latencyMs: 40 })).toMatchObject({ desired: 20, reason: 'OutsideBounds' });
    expect(component(0).at(0, {})).toMatchObject({ desired: 1, reason: 'OutsideBounds' });
  });

  it('never leaves [min, max] on random samples', () => {
    const u = uniform(3);
    const bounds = { min: 2, max: 9 };
    const c = component(5, { bounds });
    for (let t = 0; t < 20_000; t += 15) {
      const missing = u() < 0.1;
      const out = c.at(
        t,
        missing ? { rate: 300 * u() } : { latencyMs: 300 * u(), rate: 300 * u(), warmPods: Math.floor(c.current * u()), inflight: 1000 * u() },
      );
      expect(out.desired).toBeGreaterThanOrEqual(bounds.min);
      expect(out.desired).toBeLessThanOrEqual(bounds.max);
    }
  });
});

describe('the latency-load curve', () => {
  // a queue: L(x) = 20 / (1 - x / 50)
  const queue = (x: number) => 20 / (1 - x / 50);
  it('recovers the unloaded tail and the per-pod rate where it diverges', () => {
    const f = fitCurve([10, 15, 20, 25, 30, 35, 38, 40].map((x) => ({ perPod: x, latencyMs: queue(x) })));
    expect(f!.a).toBeCloseTo(20, 6);
    expect(f!.c).toBeCloseTo(50, 6);
    expect(perPodAt(f!, 80)).toBeCloseTo(37.5, 6); // 20 / (1 - x/50) = 80
    expect(perPodAt(f!, 10)).toBe(0); // faster than unloaded: no load gets there
  });

  it('says nothing from samples that do not span load, or whose latency did not move', () => {
    expect(fitCurve([30, 30.5, 31, 30, 30.2, 30.8, 31, 30.4].map((x) => ({ perPod: x, latencyMs: queue(x) })))).toBeUndefined();
    expect(fitCurve([10, 15, 20, 25, 30, 35, 38, 40].map((x) => ({ perPod: x, latencyMs: 50 + (x % 2) })))).toBeUndefined();
    expect(fitCurve([10, 20, 30].map((x) => ({ perPod: x, latencyMs: queue(x) })))).toBeUndefined();
  });
});
