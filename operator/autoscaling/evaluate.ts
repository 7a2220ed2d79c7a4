// One autoscaling evaluation of a RecModel: from what the signals read (per-pod latency bucket rates of the
// main and of each shard) to a replica count per component. Pure apart from the law's memory, which the caller
// keeps per component. The end-to-end tail of the main is what the target applies to; on the critical path,
// the main's per-shard call latencies say whose time dominates it, and only that component adds pods.
import type { Role } from '../../contracts/shard-server-args.js';
import { mergeRates, quantileMs, totalRate, type LatencyReading, type PodRates } from '../signals/latency.js';
import { decide, newMemory, type LawMemory, type LawOutput } from './law.js';
import type { EffectivePolicy } from './policy.js';

export interface PodView {
  name: string;
  ip?: string;
  ready: boolean;
  /** When the pod last became ready (ms since the epoch). */
  readySinceMs?: number;
}

export interface ComponentView {
  /** The Deployment. */
  name: string;
  role: Role;
  shard?: number;
  /** Replicas the Deployment asks for now. */
  replicas: number;
  pods: PodView[];
  /** The plan hash of its pod template: pods of another plan are other pods, and the law learns them afresh. */
  planHash?: string;
}

export interface Readings {
  /** The main's end-to-end buckets by pod; undefined: the source could not answer. */
  main?: LatencyReading;
  /** The main's calls to each shard, by "pod/shard". */
  shardCalls?: LatencyReading;
  /** Each shard's own end-to-end buckets by pod, by shard index. */
  shards: Map<number, LatencyReading | undefined>;
}

export interface ComponentDecision extends LawOutput {
  name: string;
  role: Role;
  shard?: number;
  current: number;
  /** The component's own latency at the percentile (the main's end to end; a shard's own serving time). */
  latencyMs?: number;
  rate: number;
}

export interface Evaluation {
  mainLatencyMs?: number;
  /** The component whose time dominates the main's tail (its Deployment name). */
  critical?: string;
  metricsMissing: boolean;
  components: ComponentDecision[];
}

export class Memories {
  private readonly byComponent = new Map<string, LawMemory>();
  get(key: string): LawMemory {
    let m = this.byComponent.get(key);
    if (!m) this.byComponent.set(key, (m = newMemory()));
    return m;
  }
  /** Drops the memories of a model's components that are gone (a re-plan, a deletion). */
  retain(prefix: string, keep: Set<string>): void {
    for (const k of this.byComponent.keys()) if (k.startsWith(prefix) && !keep.has(k)) this.byComponent.delete(k);
  }
}

const memoryKey = (prefix: string, c: ComponentView) => `${prefix}${c.name}@${c.planHash ?? ''}`;

const warm = (p: PodView, nowMs: number, warmupMs: number) => p.ready && p.readySinceMs !== undefined && nowMs - p.readySinceMs >= warmupMs;

/** The merged buckets of the warm pods (keys "pod" or "pod/sub"), and the total rate of every ready pod. */
function measure(reading: LatencyReading | undefined, pods: PodView[], nowMs: number, warmupMs: number, sub?: number): { rates?: PodRates; rate: number } {
  if (!reading) return { rate: 0 };
  const key = (p: PodView) => (sub === undefined ? p.name : `${p.name}/${sub}`);
  const ready = pods.filter((p) => p.ready && reading.has(key(p)));
  const rate = ready.reduce((s, p) => s + totalRate(reading.get(key(p))!), 0);
  const rates = mergeRates(ready.filter((p) => warm(p, nowMs, warmupMs)).map((p) => reading.get(key(p))!));
  return { ...(rates ? { rates } : {}), rate };
}

/**
 * The critical path: the main's own time (its tail less the slowest shard call) against each shard call; the
 * component whose time dominates the main's tail (the main itself when no shard call reads).
 */
function criticalComponent(
  main: ComponentView,
  mainLatencyMs: number,
  components: ComponentView[],
  shardCalls: LatencyReading | undefined,
  q: number,
  nowMs: number,
  warmupMs: number,
): string {
  let worst = { name: main.name, ms: -1 };
  let slowestCall = 0;
  for (const c of components) {
    if (c.role !== 'sparse') continue;
    const call = measure(shardCalls, main.pods, nowMs, warmupMs, c.shard);
    const ms = call.rates ? quantileMs(call.rates, q) : undefined;
    if (ms === undefined) continue;
    slowestCall = Math.max(slowestCall, ms);
    if (ms > worst.ms) worst = { name: c.name, ms };
  }
  return mainLatencyMs - slowestCall >= worst.ms ? main.name : worst.name;
}

export function evaluate(
  policy: EffectivePolicy,
  components: ComponentView[],
  readings: Readings,
  memories: Memories,
  memoryPrefix: string,
  nowMs: number,
): Evaluation {
  const q = policy.percentile / 100;
  const main = components.find((c) => c.role === 'main');
  const mainMeasure = main ? measure(readings.main, main.pods, nowMs, policy.warmupMs) : { rate: 0 };
  // series for the warm pods but no requests: idle, which is a latency of nothing rather than a missing one
  const idle = mainMeasure.rates !== undefined && totalRate(mainMeasure.rates) === 0;
  const mainLatencyMs = mainMeasure.rates ? (idle ? 0 : quantileMs(mainMeasure.rates, q)) : undefined;
  const critical =
    mainLatencyMs !== undefined && main ? criticalComponent(main, mainLatencyMs, components, readings.shardCalls, q, nowMs, policy.warmupMs) : main?.name;

  const decisions = components.map((c): ComponentDecision => {
    const own = c.role === 'main' ? mainMeasure : measure(readings.shards.get(c.shard!), c.pods, nowMs, policy.warmupMs);
    const ownLatency = c.role === 'main' ? mainLatencyMs : own.rates ? quantileMs(own.rates, q) : undefined;
    const readyPods = c.pods.filter((p) => p.ready).length;
    const warmPods = c.pods.filter((p) => warm(p, nowMs, policy.warmupMs)).length;
    const out = decide(memories.get(memoryKey(memoryPrefix, c)), {
      policy,
      bounds: c.role === 'main' ? policy.main : policy.sparse,
      current: c.replicas,
      sample: { ...(mainLatencyMs !== undefined ? { latencyMs: mainLatencyMs } : {}), rate: own.rate, readyPods, warmPods },
      mayScaleUp: policy.scaleOn === 'all' || c.name === critical,
      nowMs,
    });
    const where = { name: c.name, role: c.role, ...(c.shard !== undefined ? { shard: c.shard } : {}), current: c.replicas };
    return { ...out, ...where, ...(ownLatency !== undefined ? { latencyMs: ownLatency } : {}), rate: own.rate };
  });
  memories.retain(memoryPrefix, new Set(components.map((c) => memoryKey(memoryPrefix, c))));
  return {
    ...(mainLatencyMs !== undefined ? { mainLatencyMs } : {}),
    ...(mainLatencyMs !== undefined && critical ? { critical } : {}),
    metricsMissing: mainLatencyMs === undefined,
    components: decisions,
  };
}
