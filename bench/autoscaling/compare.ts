// Benchmark 5: recshard's latency autoscaler against the HPA algorithm on the same traffic traces, through the
// simulator, with service times measured on a real shard-server. Target: fewer seconds over the latency target
// than HPA on every trace, at no more than 10% more replica-seconds, and no flapping.
import { defaultPolicy, type EffectivePolicy } from '../../operator/autoscaling/policy.js';
import { hpa, recshard } from './controllers.js';
import { simulate, type SimOptions, type SimResult } from './simulator.js';
import { traces } from './traces.js';

export interface TraceComparison {
  trace: string;
  title: string;
  durationS: number;
  hpa: Omit<SimResult, 'series'>;
  recshard: Omit<SimResult, 'series'>;
  /** recshard / HPA replica-seconds. */
  replicaSecondsRatio: number;
  /** Reversals the trace itself calls for (0 for a step or a ramp, 1 for a spike, 2 for a day); more is flapping. */
  inherentReversals: number;
  met: boolean;
  /** Per evaluation (thinned for long traces): offered load, replicas and the window's tail, for the charts. */
  series: { t: number; qps: number; controller: string; replicas: number; latencyMs: number }[];
}

export interface AutoscalingResult {
  /** Where the service times came from. */
  source: string;
  service: { samples: number; meanMs: number; p50Ms: number; p95Ms: number };
  targetMs: number;
  percentile: number;
  baseQps: number;
  policy: EffectivePolicy;
  sim: Pick<SimOptions, 'startupMs' | 'warmupMs' | 'warmupSlowdown' | 'intervalMs' | 'windowMs' | 'initialReplicas'>;
  traces: TraceComparison[];
  met: boolean;
}

// from 4 pods: the day starts at midnight (down, up in the morning, down in the evening); a spike goes up and down
const INHERENT: Record<string, number> = { step: 0, spike: 1, diurnal: 2, ramp: 0 };

/** At most 600 points per series (a day has 5,760 evaluations): keeps every n-th, and every change of replicas. */
function thin<T extends { replicas: number }>(xs: T[]): T[] {
  const every = Math.max(1, Math.ceil(xs.length / 600));
  return xs.filter((p, i) => i % every === 0 || p.replicas !== xs[i - 1]?.replicas);
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

export function compareAutoscalers(o: { serviceMs: number[]; source: string; quick: boolean; seed?: number }): AutoscalingResult {
  const meanMs = o.serviceMs.reduce((s, x) => s + x, 0) / o.serviceMs.length;
  const p95 = quantile(o.serviceMs, 0.95);
  // The target leaves room for queueing: 3x the p95 of a request alone. The base load keeps 4 pods half busy.
  const targetMs = Math.ceil(3 * p95);
  const baseQps = Math.round(((4 * 0.5) / meanMs) * 1000 * 10) / 10;
  const maxReplicas = 64;
  const policy = defaultPolicy(targetMs, maxReplicas);
  const sim = { startupMs: 20_000, warmupMs: policy.warmupMs, warmupSlowdown: 1.5, intervalMs: policy.intervalMs, windowMs: policy.windowMs, initialReplicas: 4 };
  const rows: TraceComparison[] = [];
  for (const trace of traces(baseQps)) {
    const t = o.quick ? { ...trace, durationS: Math.min(trace.durationS, 20 * 60), qps: trace.name === 'diurnal' ? (s: number) => trace.qps(s * 72) : trace.qps } : trace;
    const opts: SimOptions = { trace: t, serviceMs: o.serviceMs, targetMs, percentile: policy.percentile, seed: o.seed ?? 11, ...sim };
    const h = simulate(opts, hpa({ targetMs, min: policy.main.min, max: policy.main.max }));
    const r = simulate(opts, recshard(policy));
    const ratio = Math.round((r.replicaSeconds / Math.max(h.replicaSeconds, 1)) * 1000) / 1000;
    const inherent = INHERENT[trace.name] ?? 1;
    const { series: hs, ...hpaSummary } = h;
    const { series: rs, ...ourSummary } = r;
    rows.push({
      trace: trace.name, title: trace.title, durationS: t.durationS, hpa: hpaSummary, recshard: ourSummary, replicaSecondsRatio: ratio, inherentReversals: inherent,
      met: (r.secondsOver < h.secondsOver || r.secondsOver === 0) && ratio <= 1.1 && r.reversals <= inherent,
      series: [...thin(hs).map((p) => ({ ...p, controller: 'HPA' })), ...thin(rs).map((p) => ({ ...p, controller: 'recshard' }))],
    });
  }
  return {
    source: o.source,
    service: { samples: o.serviceMs.length, meanMs: Math.round(meanMs * 100) / 100, p50Ms: Math.round(quantile(o.serviceMs, 0.5) * 100) / 100, p95Ms: Math.round(p95 * 100) / 100 },
    targetMs, percentile: policy.percentile, baseQps, policy, sim, traces: rows, met: rows.every((r) => r.met),
  };
}
