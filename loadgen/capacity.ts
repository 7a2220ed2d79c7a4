// Latency-bounded throughput (DeepRecSys): the highest offered QPS whose tail latency stays under the target.
// Doubles the load until a level fails, then bisects between the last pass and the first fail.
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
