// Latency-bounded throughput (DeepRecSys): the highest offered QPS whose tail latency stays under the target.
// Doubles the load until a level fails, then bisects between the last pass and the first fail.
import { runLoad } from './run.js';
import type { Query } from './workload.js';

export interface Level {
  qps: number;
  latencyMs: number;
  errors: number;
  pass: boolean;
}

export interface CapacityOptions {
  targetMs: number;
  startQps: number;
  /** Stop bisecting when fail/pass is below this ratio. */
  precision: number;
  maxLevels: number;
  /** Runs one load level; returns the tail latency at the chosen percentile and the error count. */
  measure: (qps: number) => Promise<{ latencyMs: number; errors: number }>;
  onLevel?: (l: Level) => void;
}

export interface Capacity {
  /** Highest QPS that met the target, or 0 when even the first level failed. */
  qps: number;
  levels: Level[];
}

export async function findCapacity(o: CapacityOptions): Promise<Capacity> {
  const levels: Level[] = [];
  const run = async (qps: number) => {
    const m = await o.measure(qps);
    const level = { qps, latencyMs: m.latencyMs, errors: m.errors, pass: m.errors === 0 && m.latencyMs <= o.targetMs };
    levels.push(level);
    o.onLevel?.(level);
    return level.pass;
  };
  let pass = 0;
  let fail = Infinity;
  let qps = o.startQps;
  while (levels.length < o.maxLevels && fail === Infinity) {
    if (await run(qps)) {
      pass = qps;
      qps *= 2;
    } else fail = qps;
  }
  while (levels.length < o.maxLevels && fail / Math.max(pass, 1e-9) > o.precision) {
    const mid = pass > 0 ? Math.sqrt(pass * fail) : fail / 2;
    if (await run(round(mid))) pass = round(mid);
    else fail = round(mid);
  }
  return { qps: pass, levels };
}

const round = (q: number) => (q >= 10 ? Math.round(q) : Math.round(q * 100) / 100);

export interface CapacityRunOptions {
  predictUrl: string;
  queries: Query[];
  targetMs: number;
  percentile: number;
  startQps: number;
  levelMs: number;
  precision: number;
  maxLevels: number;
  timeoutMs: number;
  seed: number;
  /** Seed of the warm-up run (default: seed). */
  warmupSeed?: number;
  onLevel?: (l: Level) => void;
}

/**
 * The search against a live main: a discarded warm-up at the first level (JIT compilation and connection set-up
 * are not the server's steady state), then one open-loop run per level.
 */
export async function measureCapacity(o: CapacityRunOptions): Promise<Capacity> {
  const run = (qps: number, durationMs: number, seed: number) =>
    runLoad({ predictUrl: o.predictUrl, qps, durationMs, timeoutMs: o.timeoutMs, queries: o.queries, seed, tailPercentile: o.percentile });
  await run(o.startQps, Math.min(o.levelMs, 2000), o.warmupSeed ?? o.seed);
  return findCapacity({
    targetMs: o.targetMs,
    startQps: o.startQps,
    precision: o.precision,
    maxLevels: o.maxLevels,
    onLevel: o.onLevel,
    measure: async (qps) => {
      const r = await run(qps, o.levelMs, o.seed);
      return { latencyMs: r.latencyMs.tail, errors: r.errors + r.timeouts };
    },
  });
}
