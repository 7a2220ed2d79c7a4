// The control law of the latency autoscaler, for one component (the main or one sparse shard). Pure: samples
// and the clock in, replicas out; the memory it keeps is a plain object the caller holds.
//
// Why not HPA's ceil(current x metric / target): a percentile is not proportional to load. Far below the target
// the tail is the service time and says nothing about how many pods are idle (HPA then removes most of them);
// past the knee it grows without bound (HPA then overshoots). And a target is a ceiling, not a setpoint: a
// window's tail that sits at the target has many seconds above it. So, with t the tolerance:
// - Up: when the end-to-end tail passes (1 - t) x target and this component is allowed to act (critical path),
//   take the largest of: the warm pods times the ratio of the tail to the middle of the band (at most twice as
//   many); when overloaded, the demand (served rate plus the backlog's growth) over what a pod serves now, less
//   t; and the pods that bring the load per pod to where the fitted latency-load curve puts the middle of the
//   band. New pods count once warm and a half window later; until then only a larger demand adds more.
// - Down: only after the tail stayed under (1 - 2t) x target for the whole scale-down stabilization window, and
//   only to a per-pod request rate this component has served with the tail under the band (its learned
//   latency-bounded capacity, plus t, or where the fitted latency-load curve puts the band's bottom, at most a
//   quarter beyond the load per pod now); with nothing better known, one pod of three or more at a time once the
//   tail stayed under half the target for the whole window; never to within 2t of a per-pod rate that once
//   pushed the tail over the band (remembered for a day, unless a later pass at a clearly higher rate refutes it).
// - Missing metrics: hold (or add pods, if the policy says so); never remove pods.
// Then the policy's rate limits and bounds apply; both are reported when they cut the recommendation.
import { ScaleReason } from '../api/reasons.js';
import type { Bounds, EffectivePolicy, RateLimit } from './policy.js';

/** What the signals said about the component over the policy's window. */
export interface ComponentSample {
  /** The end-to-end tail latency the target applies to (the main's), at the policy's percentile; absent: missing. */
  latencyMs?: number;
  /** Requests per second this component's ready pods served. */
  rate: number;
  /** Pods that are ready. */
  readyPods: number;
  /** Ready pods past their warm-up, whose samples the latency is made of. */
  warmPods: number;
  /** Requests in the ready pods now (queued or being served); its growth is demand the rate does not show. */
  inflight?: number;
}

export interface LawInput {
  policy: Pick<EffectivePolicy, 'targetMs' | 'tolerance' | 'windowMs' | 'scaleUp' | 'scaleDown' | 'missingMetrics'>;
  bounds: Bounds;
  /** Replicas the Deployment asks for now. */
  current: number;
  sample: ComponentSample;
  /** False when another component dominates the tail (critical path): this one may not add pods for it. */
  mayScaleUp: boolean;
  nowMs: number;
}

export interface LawOutput {
  desired: number;
  /** What the recommendation was before rate limits and bounds. */
  recommended: number;
  /** A constant CamelCase reason and a sentence. */
  reason: ScaleReason;
  message: string;
  /** Set when a rate limit or a bound cut the recommendation. */
  limited?: string;
}

/** What the law remembers between evaluations of one component. */
export interface LawMemory {
  /** Since when the latency has been under the band (the scale-down stabilization window counts from here). */
  lowSince?: number;
  /** Since when it has been under half the target (a probe needs that for the whole stabilization window). */
  halfSince?: number;
  /** Replica changes, for the rate limits. */
  changes: { atMs: number; delta: number }[];
  /** Per-pod rates served with the tail under the band, and rates that pushed it over the band, with when. */
  passing: { atMs: number; perPod: number }[];
  failing: { atMs: number; perPod: number }[];
  /** Steady samples (every pod warm) of per-pod rate and tail latency, for the latency-load curve. */
  curve: { atMs: number; perPod: number; latencyMs: number }[];
  /** While new pods warm up: the replicas they bring the component to. */
  pendingUntilWarm?: number;
  /** When they all were warm: the window must then pass once more before the tail shows what they do. */
  warmSince?: number;
  /** Consecutive evaluations over the band: one reading over the band but under the target is not yet acted on. */
  overStreak?: number;
  /** The last in-flight reading, for the backlog's growth. */
  inflight?: { atMs: number; value: number };
}

/** How long a per-pod rate served under the band is remembered (the workload mix drifts). */
export const CAPACITY_MEMORY_MS = 30 * 60_000;
/** How long steady samples feed the latency-load curve. */
export const CURVE_MEMORY_MS = 60 * 60_000;
/** How long a miss is remembered: a day, so that each quiet night does not probe the same miss again (pods of a new plan start afresh). */
export const MISS_MEMORY_MS = 24 * 3600_000;

export const newMemory = (): LawMemory => ({ changes: [], passing: [], failing: [], curve: [] });

/**
 * The per-pod latency-load curve fitted to steady samples: L(x) = a / (1 - x / c), the shape of a queue's
 * sojourn time (a: the unloaded tail, c: the per-pod rate where it diverges), by least squares on 1/L, which is
 * linear in x. Undefined until the samples say something: 8 or more, their loads spread over 20% of the mean and
 * their latencies over 10%, latency rising with load.
 */
export function fitCurve(samples: { perPod: number; latencyMs: number }[]): { a: number; c: number } | undefined {
  if (samples.length < 8) return undefined;
  const n = samples.length;
  const mx = samples.reduce((s, p) => s + p.perPod, 0) / n;
  const my = samples.reduce((s, p) => s + 1 / p.latencyMs, 0) / n;
  const spread = Math.max(...samples.map((p) => p.perPod)) - Math.min(...samples.map((p) => p.perPod));
  const lat = samples.map((p) => p.latencyMs);
  // the samples must span load, and latency must have moved with it (else the curve is a guess)
  if (spread < 0.2 * mx || Math.max(...lat) - Math.min(...lat) < 0.1 * (n / samples.reduce((s, p) => s + 1 / p.latencyMs, 0))) return undefined;
  let sxy = 0;
  let sxx = 0;
  for (const p of samples) {
    sxy += (p.perPod - mx) * (1 / p.latencyMs - my);
    sxx += (p.perPod - mx) ** 2;
  }
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  if (!(slope < 0) || !(intercept > 0)) return undefined;
  return { a: 1 / intercept, c: -intercept / slope };
}

/** The per-pod rate at which the fitted curve reaches `latencyMs` (0 when it cannot). */
export const perPodAt = (f: { a: number; c: number }, latencyMs: number) => (latencyMs > f.a ? f.c * (1 - f.a / latencyMs) : 0);

/** What one sample says once learned from: the latency against the band, the load, and what memory knows. */
interface Reading {
  ratio: number;
  /** The band's top and bottom, as shares of the target. */
  high: number;
  low: number;
  perPod: number;
  growth: number;
  demand: number;
  overloaded: boolean;
  /** Over the band and confirmed (over the target, a growing backlog, or three readings in a row). */
  confirmed: boolean;
  curve?: { a: number; c: number };
  /** The highest per-pod rate served under the band, the lowest that missed. */
  passMax: number;
  failMin: number;
  /** "N ms against T ms", for messages. */
  lat: string;
}

type Finish = (recommended: number, reason: ScaleReason, message: string) => LawOutput;

/** The recommendation after the rate limits and bounds, recorded in memory. */
function finisher(mem: LawMemory, i: LawInput): Finish {
  const { policy, bounds, current, nowMs } = i;
  const clamp = (n: number) => Math.min(bounds.max, Math.max(bounds.min, n));
  return (recommended, reason, message) => {
    if (current < bounds.min || current > bounds.max) {
      const desired = clamp(current);
      return record(mem, nowMs, current, policy, {
        desired,
        recommended,
        reason: ScaleReason.OutsideBounds,
        message: `${current} replicas is outside [${bounds.min}, ${bounds.max}]; ${message}`,
      });
    }
    const limitedByRate = rateLimited(mem, nowMs, current, recommended, recommended > current ? policy.scaleUp : policy.scaleDown);
    const desired = clamp(limitedByRate);
    const limited =
      desired !== limitedByRate
        ? `the policy bounds [${bounds.min}, ${bounds.max}] cap ${limitedByRate} at ${desired}`
        : limitedByRate !== recommended
          ? `the ${recommended > current ? 'scale-up' : 'scale-down'} rate limit allows ${limitedByRate} now, not ${recommended}`
          : undefined;
    return record(mem, nowMs, current, policy, { desired, recommended, reason, message, ...(limited ? { limited } : {}) });
  };
}

/** Demand the served rate does not show: how fast the backlog (requests in flight) grew since the last look. */
function backlogGrowth(mem: LawMemory, inflight: number | undefined, nowMs: number): number {
  const prev = mem.inflight;
  if (inflight !== undefined) mem.inflight = { atMs: nowMs, value: inflight };
  return inflight !== undefined && prev && nowMs > prev.atMs ? Math.max(0, (inflight - prev.value) / ((nowMs - prev.atMs) / 1000)) : 0;
}

/** Pods added last count once all are warm and half a window more has passed (the window still holds the time before). */
function settleWarmup(mem: LawMemory, i: LawInput): void {
  if (mem.pendingUntilWarm === undefined || i.sample.warmPods < Math.min(mem.pendingUntilWarm, i.current)) return;
  mem.warmSince ??= i.nowMs;
  // a tail that kept rising is acted on at half a window
  if (i.nowMs - mem.warmSince >= i.policy.windowMs / 2) {
    mem.pendingUntilWarm = undefined;
    mem.warmSince = undefined;
  }
}

/** Learns from a sample with a latency: demand, passes and misses, the curve, the warm-up of pods added last. */
function learn(mem: LawMemory, i: LawInput, latencyMs: number): Reading {
  const { policy, current, sample, nowMs } = i;
  const ratio = latencyMs / policy.targetMs;
  const high = 1 - policy.tolerance;
  const low = 1 - 2 * policy.tolerance;
  const perPod = sample.readyPods > 0 ? sample.rate / sample.readyPods : 0;
  const growth = backlogGrowth(mem, sample.inflight, nowMs);
  if (perPod > 0 && ratio < low) {
    mem.passing.push({ atMs: nowMs, perPod });
    // a later pass at a per-pod rate clearly higher (by the tolerance) refutes a miss: it was a transient (a
    // burst, pods warming), not the component's capacity
    mem.failing = mem.failing.filter((f) => f.perPod * (1 + policy.tolerance) > perPod);
  }
  const steady = mem.pendingUntilWarm === undefined && sample.warmPods === sample.readyPods && sample.readyPods === current;
  if (perPod > 0 && steady) mem.curve.push({ atMs: nowMs, perPod, latencyMs });
  const curve = fitCurve(mem.curve);
  // a miss counts against this component's capacity only when it is the one on the critical path
  mem.overStreak = ratio > high ? (mem.overStreak ?? 0) + 1 : 0;
  const overloaded = growth > policy.tolerance * sample.rate;
  // a window's tail is noisy (a few slow requests at a low rate): a reading over the band but still under the
  // target, without a growing backlog, must be confirmed by the next one before it counts or adds pods
  const confirmed = ratio > 1 || overloaded || mem.overStreak >= 3;
  if (perPod > 0 && ratio > high && confirmed && i.mayScaleUp && mem.pendingUntilWarm === undefined) mem.failing.push({ atMs: nowMs, perPod });
  settleWarmup(mem, i);
  return {
    ratio,
    high,
    low,
    perPod,
    growth,
    demand: sample.rate + growth,
    overloaded,
    confirmed,
    ...(curve ? { curve } : {}),
    passMax: Math.max(0, ...mem.passing.map((p) => p.perPod)),
    failMin: Math.min(Infinity, ...mem.failing.map((p) => p.perPod)),
    lat: `${round(latencyMs)} ms against ${round(policy.targetMs)} ms`,
  };
}

/** Over the band: add pods if this component may and the reading is confirmed. */
function scaleUp(mem: LawMemory, i: LawInput, r: Reading, done: Finish): LawOutput {
  const { policy, current, sample } = i;
  mem.lowSince = mem.halfSince = undefined;
  if (!i.mayScaleUp) return done(current, ScaleReason.OtherComponentCritical, `${r.lat}; another component dominates the tail`);
  if (!r.confirmed)
    return done(current, ScaleReason.WithinTolerance, `${r.lat}, over ${Math.round(r.high * 100)}% of the target once; acting if the next reading confirms it`);
  // when the backlog grows (overload), pods for the demand at the per-pod rate known to hold the target: the
  // lowest of what a pod serves now (less the tolerance), the highest rate served under the band and, less the
  // tolerance, the lowest that missed; and the latency ratio to the middle of the band, at most doubling
  const safe = Math.min(r.perPod * (1 - policy.tolerance), r.passMax > 0 ? r.passMax : Infinity, r.failMin * (1 - policy.tolerance));
  const byDemand = r.overloaded && safe > 0 ? Math.ceil(r.demand / safe) : 0;
  if (mem.pendingUntilWarm !== undefined && byDemand <= mem.pendingUntilWarm) {
    return done(current, ScaleReason.WaitingForWarmup, `${r.lat}; waiting for the pods added last to warm up and show in the window`);
  }
  const mid = (r.high + r.low) / 2;
  const base = Math.max(1, sample.warmPods);
  const byRatio = mem.pendingUntilWarm !== undefined ? 0 : Math.ceil(base * Math.min(r.ratio / mid, 2));
  // the fitted curve: pods that bring the load per pod to where it predicts the middle of the band
  const xMid = r.curve ? perPodAt(r.curve, mid * policy.targetMs) : 0;
  const byCurve = xMid > 0 ? Math.min(Math.ceil(sample.rate / xMid), 2 * current) : 0;
  const want = Math.max(current + 1, byRatio, byDemand, byCurve);
  return done(
    want,
    ScaleReason.LatencyAboveTarget,
    `${r.lat}, over ${Math.round(r.high * 100)}% of the target${r.growth > 0 ? `; demand ${round(r.demand)} requests/s` : ''}`,
  );
}

/** Under the band: remove pods once it stayed there for the stabilization window, to a per-pod rate known to hold. */
function scaleDown(mem: LawMemory, i: LawInput, r: Reading, done: Finish): LawOutput {
  const { policy, current, sample, nowMs } = i;
  mem.lowSince ??= nowMs;
  const quietFor = nowMs - mem.lowSince;
  if (r.ratio < 0.5) mem.halfSince ??= nowMs;
  else mem.halfSince = undefined;
  if (quietFor < policy.scaleDown.stabilizationMs)
    return done(
      current,
      ScaleReason.WithinTolerance,
      `${r.lat}; under the band for ${Math.round(quietFor / 1000)} s of the ${Math.round(policy.scaleDown.stabilizationMs / 1000)} s stabilization window`,
    );
  if (mem.pendingUntilWarm !== undefined || sample.readyPods < current) return done(current, ScaleReason.WaitingForWarmup, `${r.lat}; not every pod is ready`);
  // the fewest pods at a per-pod rate up to a tolerance beyond one already served under the band (none when
  // idle), else (far under the target) one fewer. Not the fitted curve: it extrapolates, and a heavy tail makes
  // it optimistic (it cost misses and reversals in the simulator).
  const served = Math.max(r.passMax, r.perPod);
  const known = sample.rate === 0 ? 0 : served > 0 ? Math.ceil(sample.rate / (served * (1 + policy.tolerance))) : current;
  // (a probe raises the load per pod by current / (current - 1): only where that is at most 1.5x, and to well
  // under any remembered miss)
  const floor = r.failMin * (1 - 2 * policy.tolerance);
  const probe = mem.halfSince !== undefined && nowMs - mem.halfSince >= policy.scaleDown.stabilizationMs && current >= 3 && sample.rate / (current - 1) < floor;
  let want = known < current ? known : probe ? current - 1 : current;
  // never back to a per-pod rate that missed the target
  while (want < current && sample.rate / Math.max(want, 1) >= floor) want++;
  if (want >= current)
    return done(
      current,
      ScaleReason.WithinTolerance,
      `${r.lat}; no per-pod rate served under the band would let fewer pods carry ${round(sample.rate)} requests/s`,
    );
  return done(Math.max(want, 1), ScaleReason.LatencyBelowTarget, `${r.lat} for ${Math.round(quietFor / 1000)} s`);
}

export function decide(mem: LawMemory, i: LawInput): LawOutput {
  const { policy, current, sample } = i;
  prune(mem, i.nowMs, policy);
  const done = finisher(mem, i);
  if (sample.latencyMs === undefined) {
    mem.lowSince = mem.halfSince = undefined;
    if (policy.missingMetrics === 'ScaleUp') return done(current * 2, ScaleReason.MetricsUnavailable, 'latency unavailable; adding pods as the policy says');
    return done(current, ScaleReason.MetricsUnavailable, 'latency unavailable; holding replicas');
  }
  const r = learn(mem, i, sample.latencyMs);
  if (r.ratio > r.high) return scaleUp(mem, i, r, done);
  if (r.ratio >= r.low) {
    mem.lowSince = mem.halfSince = undefined;
    return done(current, ScaleReason.WithinTolerance, `${r.lat}, in the band ${Math.round(r.low * 100)}-${Math.round(r.high * 100)}% of the target`);
  }
  return scaleDown(mem, i, r, done);
}

/** The recommendation after the rate limit of its direction: changes within the last period count against it. */
function rateLimited(mem: LawMemory, nowMs: number, current: number, recommended: number, l: RateLimit): number {
  if (recommended === current) return current;
  const recent = mem.changes.filter((c) => nowMs - c.atMs < l.periodMs);
  if (recommended > current) {
    const start = current - recent.filter((c) => c.delta > 0).reduce((s, c) => s + c.delta, 0);
    const allowed = start + Math.max(l.maxPods, Math.ceil((start * l.maxPercent) / 100));
    return Math.max(current, Math.min(recommended, allowed));
  }
  const start = current - recent.filter((c) => c.delta < 0).reduce((s, c) => s + c.delta, 0);
  const allowed = start - Math.max(l.maxPods, Math.floor((start * l.maxPercent) / 100));
  return Math.min(current, Math.max(recommended, allowed));
}

function record(mem: LawMemory, nowMs: number, current: number, p: LawInput['policy'], out: LawOutput): LawOutput {
  if (out.desired !== current) {
    mem.changes.push({ atMs: nowMs, delta: out.desired - current });
    if (out.desired > current) {
      mem.pendingUntilWarm = out.desired;
      mem.warmSince = undefined;
    }
    // a further step down waits until a whole window (and period) has measured the new load per pod
    else if (mem.lowSince !== undefined) mem.lowSince = nowMs - p.scaleDown.stabilizationMs + Math.max(p.windowMs, p.scaleDown.periodMs);
  }
  return out;
}

function prune(mem: LawMemory, nowMs: number, p: LawInput['policy']): void {
  const keep = Math.max(p.scaleUp.periodMs, p.scaleDown.periodMs);
  mem.changes = mem.changes.filter((c) => nowMs - c.atMs < keep);
  mem.passing = mem.passing.filter((c) => nowMs - c.atMs < CAPACITY_MEMORY_MS);
  mem.failing = mem.failing.filter((c) => nowMs - c.atMs < MISS_MEMORY_MS);
  mem.curve = mem.curve.filter((c) => nowMs - c.atMs < CURVE_MEMORY_MS);
}

const round = (v: number) => Math.round(v * 10) / 10;
