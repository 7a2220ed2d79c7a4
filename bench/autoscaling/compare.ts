// Benchmark 5: recshard's latency autoscaler against the HPA algorithm on the same traffic traces, through the
// simulator, with service times measured on a real shard-server. Target: fewer seconds over the latency target
// than HPA on every trace, at no more than 10% more replica-seconds, and no flapping. Each trace runs under
// several seeds (a window's tail is noisy with heavy-tailed service times, and one seed can flip a verdict); the
// runs are spread over one process per core.
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defaultPolicy, type EffectivePolicy } from '../../operator/autoscaling/policy.js';
import { hpa, recshard } from './controllers.js';
import { simulate, type SimOptions, type SimResult } from './simulator.js';
import { traces } from './traces.js';

type Summary = Omit<SimResult, 'series'>;

/** One trace under one seed. */
export interface SeedRun {
  seed: number;
  hpa: Summary;
  recshard: Summary;
  /** recshard / HPA replica-seconds. */
  replicaSecondsRatio: number;
  met: boolean;
}

export interface TraceComparison {
  trace: string;
  title: string;
  durationS: number;
  /** Every seed, the first one charted. */
  runs: SeedRun[];
  /** Reversals the trace itself calls for (0 for a step or a ramp, 1 for a spike, 2 for a day); more is flapping. */
  inherentReversals: number;
  /** Met under every seed. */
  met: boolean;
  /** Per evaluation of the first seed (thinned for long traces): offered load, replicas and the window's tail, for the charts. */
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
  seeds: number[];
  traces: TraceComparison[];
  met: boolean;
}

// from 4 pods: the day starts at midnight (down, up in the morning, down in the evening); a spike goes up and down
const INHERENT: Record<string, number> = { step: 0, spike: 1, diurnal: 2, ramp: 0 };
export const SEEDS = [11, 12, 13];

/** At most 600 points per series (a day has 5,760 evaluations): keeps every n-th, and every change of replicas. */
function thin<T extends { replicas: number }>(xs: T[]): T[] {
  const every = Math.max(1, Math.ceil(xs.length / 600));
  return xs.filter((p, i) => i % every === 0 || p.replicas !== xs[i - 1]?.replicas);
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

/** What one job needs: the measured service times, the trace, the seed. */
export interface Job {
  serviceMs: number[];
  trace: string;
  seed: number;
  quick: boolean;
  /** Keep the per-evaluation series (for the chart). */
  series: boolean;
}

/** The setting every job shares, from the service times alone. */
export function setting(serviceMs: number[]) {
  const meanMs = serviceMs.reduce((s, x) => s + x, 0) / serviceMs.length;
  const p95 = quantile(serviceMs, 0.95);
  // The target leaves room for queueing: 3x the p95 of a request alone. The base load keeps 4 pods half busy.
  const targetMs = Math.ceil(3 * p95);
  const baseQps = Math.round(((4 * 0.5) / meanMs) * 1000 * 10) / 10;
  const policy = defaultPolicy(targetMs, 64);
  const sim = {
    startupMs: 20_000,
    warmupMs: policy.warmupMs,
    warmupSlowdown: 1.5,
    intervalMs: policy.intervalMs,
    windowMs: policy.windowMs,
    initialReplicas: 4,
  };
  return { meanMs, p95, targetMs, baseQps, policy, sim };
}

/** One trace under one seed, both controllers. */
export function runJob(j: Job): SeedRun & { trace: string; durationS: number; series?: TraceComparison['series'] } {
  const { targetMs, baseQps, policy, sim } = setting(j.serviceMs);
  const trace = traces(baseQps).find((t) => t.name === j.trace)!;
  const t = j.quick
    ? { ...trace, durationS: Math.min(trace.durationS, 20 * 60), qps: trace.name === 'diurnal' ? (s: number) => trace.qps(s * 72) : trace.qps }
    : trace;
  const opts: SimOptions = { trace: t, serviceMs: j.serviceMs, targetMs, percentile: policy.percentile, seed: j.seed, ...sim };
  const { series: hs, ...h } = simulate(opts, hpa({ targetMs, min: policy.main.min, max: policy.main.max }));
  const { series: rs, ...r } = simulate(opts, recshard(policy));
  const ratio = Math.round((r.replicaSeconds / Math.max(h.replicaSeconds, 1)) * 1000) / 1000;
  const met = (r.secondsOver < h.secondsOver || r.secondsOver === 0) && ratio <= 1.1 && r.reversals <= (INHERENT[j.trace] ?? 1);
  return {
    trace: j.trace,
    durationS: t.durationS,
    seed: j.seed,
    hpa: h,
    recshard: r,
    replicaSecondsRatio: ratio,
    met,
    ...(j.series ? { series: [...thin(hs).map((p) => ({ ...p, controller: 'HPA' })), ...thin(rs).map((p) => ({ ...p, controller: 'recshard' }))] } : {}),
  };
}

/** Runs the jobs on one child process per core (this module is the child's entry too). */
async function runAll(jobs: Job[]): Promise<ReturnType<typeof runJob>[]> {
  const out: ReturnType<typeof runJob>[] = new Array(jobs.length);
  let next = 0;
  const worker = () =>
    new Promise<void>((resolve, reject) => {
      const child = fork(fileURLToPath(import.meta.url), ['--job-worker'], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      let current = -1;
      const feed = () => {
        if (next >= jobs.length) {
          child.disconnect();
          return;
        }
        current = next++;
        child.send(jobs[current]!);
      };
      child.on('message', (m) => {
        out[current] = m as ReturnType<typeof runJob>;
        feed();
      });
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`autoscaling simulation worker exited ${code}`))));
      feed();
    });
  await Promise.all(Array.from({ length: Math.max(1, Math.min(availableParallelism(), jobs.length)) }, worker));
  return out;
}

if (process.argv.includes('--job-worker')) {
  process.on('message', (j) => process.send!(runJob(j as Job)));
}

export async function compareAutoscalers(o: { serviceMs: number[]; source: string; quick: boolean; seeds?: number[] }): Promise<AutoscalingResult> {
  const { meanMs, p95, targetMs, baseQps, policy, sim } = setting(o.serviceMs);
  const seeds = o.seeds ?? (o.quick ? SEEDS.slice(0, 1) : SEEDS);
  const names = traces(baseQps).map((t) => t.name);
  const jobs = names.flatMap((trace) => seeds.map((seed, i) => ({ serviceMs: o.serviceMs, trace, seed, quick: o.quick, series: i === 0 })));
  const done = await runAll(jobs);
  const rows: TraceComparison[] = traces(baseQps).map((trace) => {
    const mine = done.filter((d) => d.trace === trace.name);
    return {
      trace: trace.name,
      title: trace.title,
      durationS: mine[0]!.durationS,
      inherentReversals: INHERENT[trace.name] ?? 1,
      runs: mine.map(({ seed, hpa: h, recshard: r, replicaSecondsRatio, met }) => ({ seed, hpa: h, recshard: r, replicaSecondsRatio, met })),
      met: mine.every((d) => d.met),
      series: mine[0]!.series!,
    };
  });
  return {
    source: o.source,
    service: {
      samples: o.serviceMs.length,
      meanMs: Math.round(meanMs * 100) / 100,
      p50Ms: Math.round(quantile(o.serviceMs, 0.5) * 100) / 100,
      p95Ms: Math.round(p95 * 100) / 100,
    },
    targetMs,
    percentile: policy.percentile,
    baseQps,
    policy,
    sim,
    seeds,
    traces: rows,
    met: rows.every((r) => r.met),
  };
}
