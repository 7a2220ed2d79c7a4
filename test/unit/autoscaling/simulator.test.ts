import { describe, expect, it } from 'vitest';
import { hpa } from '../../../bench/autoscaling/controllers.js';
import { simulate, type Controller, type Observation, type SimOptions } from '../../../bench/autoscaling/simulator.js';
import { uniform } from '../../../loadgen/distributions.js';

const fixed = (n: number): Controller => ({ name: 'fixed', evaluate: () => n });
const exponential = (meanMs: number, n = 20_000) => {
  const u = uniform(9);
  return Array.from({ length: n }, () => -Math.log(1 - u()) * meanMs);
};
const base: Omit<SimOptions, 'trace'> = {
  serviceMs: exponential(10),
  targetMs: 100,
  percentile: 95,
  initialReplicas: 2,
  startupMs: 20_000,
  warmupMs: 30_000,
  warmupSlowdown: 1,
  intervalMs: 15_000,
  windowMs: 60_000,
  seed: 1,
};

describe('the autoscaling simulator', () => {
  it('matches an M/M/1 queue per pod: p95 sojourn = ln(20) / (mu - lambda)', () => {
    // 2 pods, 10 ms mean service, 120 requests/s: 60/s each, utilisation 0.6; p95 = 3.0 / (100 - 60) s = 74.9 ms
    const seen: Observation[] = [];
    const probe: Controller = { name: 'probe', evaluate: (o) => (seen.push(o), 2) };
    const r = simulate({ ...base, trace: { name: 'flat', title: 'flat', durationS: 1200, qps: () => 120 } }, probe);
    const steady = seen.filter((o) => o.nowMs >= 120_000);
    const p95 = steady.reduce((s, o) => s + o.latencyMs!, 0) / steady.length;
    expect(p95).toBeGreaterThan(74.9 * 0.9);
    expect(p95).toBeLessThan(74.9 * 1.1);
    expect(steady.every((o) => Math.abs(o.rate - 120) < 12)).toBe(true);
    expect(r.replicaSeconds).toBe(2 * 1200);
    expect(r.scaleEvents).toBe(0);
  });

  it('counts seconds over the target, replica-seconds of starting pods too, and direction reversals', () => {
    let calls = 0;
    const zigzag: Controller = { name: 'zigzag', evaluate: () => [2, 4, 2, 4][Math.floor(calls++ / 4) % 4]! };
    const r = simulate({ ...base, trace: { name: 'flat', title: 'flat', durationS: 240, qps: () => 190 } }, zigzag);
    expect(r.scaleEvents).toBe(3); // 2 -> 4 at 60 s, -> 2 at 120 s, -> 4 at 180 s
    expect(r.reversals).toBe(2);
    expect(r.replicaSeconds).toBe(2 * 60 + 4 * 60 + 2 * 60 + 4 * 60);
    // 190/s on 2 pods is 95% busy: the tail is far over 100 ms while only two pods serve
    expect(r.secondsOver).toBeGreaterThan(60);
    const one = simulate({ ...base, initialReplicas: 8, trace: { name: 'flat', title: 'flat', durationS: 240, qps: () => 190 } }, fixed(8));
    expect(one.secondsOver).toBe(0);
  });

  it('a new pod serves only once started', () => {
    const seen: Observation[] = [];
    const grow: Controller = { name: 'grow', evaluate: (o) => (seen.push(o), o.nowMs >= 60_000 ? 4 : 2) };
    simulate({ ...base, trace: { name: 'flat', title: 'flat', durationS: 150, qps: () => 50 } }, grow);
    const at = (s: number) => seen.find((o) => o.nowMs === s * 1000)!;
    expect(at(75)).toMatchObject({ replicas: 4, readyPods: 2, warmPods: 2 }); // started at 60 s, ready at 80 s
    expect(at(90)).toMatchObject({ readyPods: 4, warmPods: 2 }); // warm at 110 s
    expect(at(120)).toMatchObject({ readyPods: 4, warmPods: 4 });
  });
});

describe('the HPA algorithm as documented', () => {
  const obs = (nowMs: number, replicas: number, latencyMs?: number): Observation => ({
    nowMs,
    replicas,
    readyPods: replicas,
    warmPods: replicas,
    rate: 100,
    inflight: 0,
    ...(latencyMs !== undefined ? { latencyMs, warmLatencyMs: latencyMs } : {}),
  });

  it('scales by the ratio to the target outside a 10% tolerance, at most max(4 pods, 100%) per 15 s', () => {
    const h = hpa({ targetMs: 100, min: 1, max: 100 });
    expect(h.evaluate(obs(0, 4, 105))).toBe(4);
    expect(h.evaluate(obs(15_000, 4, 150))).toBe(6);
    expect(h.evaluate(obs(30_000, 6, 1000))).toBe(12); // wants 60
  });

  it('scales down to the highest recommendation of the last 5 minutes', () => {
    const h = hpa({ targetMs: 100, min: 1, max: 100 });
    let n = 10;
    const seq: number[] = [];
    for (let t = 0; t <= 360_000; t += 15_000) seq.push((n = h.evaluate(obs(t, n, t === 0 ? 100 : 30))));
    expect(seq.slice(0, 20).every((x) => x === 10)).toBe(true); // the t=0 recommendation (10) holds 5 minutes
    expect(seq.at(-1)).toBe(3); // then ceil(10 x 0.3)
  });

  it('leaves the replicas alone without a metric', () => {
    expect(hpa({ targetMs: 100, min: 1, max: 10 }).evaluate(obs(0, 7))).toBe(7);
  });
});
