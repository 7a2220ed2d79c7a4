// The two controllers the simulator compares: the HPA algorithm as Kubernetes documents it, fed the tail latency
// as an external metric, and recshard's control law under a LatencyScalingPolicy.
import { decide, newMemory } from '../../operator/autoscaling/law.js';
import type { EffectivePolicy } from '../../operator/autoscaling/policy.js';
import type { Controller, Observation } from './simulator.js';

export interface HpaOptions {
  targetMs: number;
  min: number;
  max: number;
  /** --horizontal-pod-autoscaler-tolerance (default 0.1). */
  tolerance?: number;
  /** behavior.scaleDown.stabilizationWindowSeconds (default 300 s). */
  downStabilizationMs?: number;
}

/**
 * HorizontalPodAutoscaler v2 with default behavior, as documented: desired = ceil(readyPods x metric / target),
 * nothing while the ratio is within the tolerance; a scale-down takes the highest recommendation of the last 5
 * minutes; scale-up adds at most max(4 pods, 100%) per 15 s, scale-down removes at most 100% per 15 s; bounds.
 * An empty metric leaves the replicas alone (the HPA's own behaviour; KEDA reads it as 0 and scales to the floor).
 */
export function hpa(o: HpaOptions): Controller {
  const tolerance = o.tolerance ?? 0.1;
  const downWindow = o.downStabilizationMs ?? 300_000;
  const recs: { t: number; n: number }[] = [];
  const changes: { t: number; delta: number }[] = [];
  return {
    name: 'HPA',
    evaluate(obs: Observation): number {
      const current = obs.replicas;
      if (obs.latencyMs === undefined) return current;
      const ratio = obs.latencyMs / o.targetMs;
      const rec = Math.abs(ratio - 1) <= tolerance ? current : Math.ceil(Math.max(obs.readyPods, 1) * ratio);
      recs.push({ t: obs.nowMs, n: rec });
      while (recs.length && obs.nowMs - recs[0]!.t > downWindow) recs.shift();
      const downRec = Math.max(...recs.map((r) => r.n));
      let desired = rec > current ? rec : Math.min(current, downRec);
      // rate limits over the last 15 s
      while (changes.length && obs.nowMs - changes[0]!.t >= 15_000) changes.shift();
      if (desired > current) {
        const start = current - changes.filter((c) => c.delta > 0).reduce((s, c) => s + c.delta, 0);
        desired = Math.min(desired, start + Math.max(4, start));
      }
      desired = Math.min(o.max, Math.max(o.min, desired));
      if (desired !== current) changes.push({ t: obs.nowMs, delta: desired - current });
      return desired;
    },
  };
}

/** recshard's law for one component under `policy` (the component is always on the critical path here). */
export function recshard(policy: EffectivePolicy, role: 'main' | 'sparse' = 'main'): Controller {
  const mem = newMemory();
  return {
    name: 'recshard',
    evaluate(obs: Observation): number {
      const out = decide(mem, {
        policy,
        bounds: policy[role],
        current: obs.replicas,
        sample: {
          ...(obs.warmLatencyMs !== undefined ? { latencyMs: obs.warmLatencyMs } : {}),
          rate: obs.rate,
          readyPods: obs.readyPods,
          warmPods: obs.warmPods,
          inflight: obs.inflight,
        },
        mayScaleUp: true,
        nowMs: obs.nowMs,
      });
      return out.desired;
    },
  };
}
