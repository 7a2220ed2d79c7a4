// Benchmark 2, the cost of scale-out (Lui et al.): the same model and the same offered load served monolithic,
// singular, load-balanced over 2, 4 and 8 shards and net-specific; p50/p99 latency and the CPU seconds all of
// the deployment's processes spent per 1,000 queries.
import type { RecModel } from '../operator/api/v1alpha1/index.js';
import { example, load, log, queries, round, serve } from './lib.js';

export interface ScaleOutRow {
  config: string;
  shards: number;
  processes: number;
  p50Ms: number;
  p99Ms: number;
  achievedQps: number;
  errors: number;
  cpuSecondsPer1000: number;
  /** p99 / monolithic p99 and CPU / monolithic CPU. */
  p99VsMono: number;
  cpuVsMono: number;
}

export interface ScaleOutResult {
  model: string;
  file: string;
  offeredQps: number;
  seconds: number;
  rows: ScaleOutRow[];
  best: { config: string; p99VsMono: number };
}

export const SCALEOUT_CONFIGS: { config: string; sharding: RecModel['spec']['sharding'] }[] = [
  { config: 'monolithic', sharding: { strategy: 'monolithic' } },
  { config: 'singular', sharding: { strategy: 'singular' } },
  { config: 'load-balanced/2', sharding: { strategy: 'load-balanced', shards: 2 } },
  { config: 'load-balanced/4', sharding: { strategy: 'load-balanced', shards: 4 } },
  { config: 'load-balanced/8', sharding: { strategy: 'load-balanced', shards: 8 } },
  { config: 'net-specific', sharding: { strategy: 'net-specific' } },
];

export const SCALEOUT_MODELS = [
  { model: 'DLRM-RMC2 (embedding-heavy)', file: 'dlrm-rmc2.yaml' },
  { model: 'DLRM-RMC3 (compute-heavy)', file: 'dlrm-rmc3.yaml' },
];

export async function benchScaleOut(o: {
  models: typeof SCALEOUT_MODELS;
  configs: typeof SCALEOUT_CONFIGS;
  seconds: number;
  load: (file: string) => number;
}): Promise<ScaleOutResult[]> {
  const out: ScaleOutResult[] = [];
  for (const m of o.models) {
    const offeredQps = o.load(m.file);
    log(`scale-out: ${m.model} at ${offeredQps} QPS`);
    const rows: Omit<ScaleOutRow, 'p99VsMono' | 'cpuVsMono'>[] = [];
    for (const c of o.configs) {
      const rm = example(m.file, { ...c.sharding, shardMemory: '8Gi' }, `bench-${m.file.replace('.yaml', '')}-${c.config.replace('/', '')}`);
      // The same scheduler for every configuration: fixed whole queries, so only the sharding differs.
      const { d, info } = await serve(rm, { scheduler: 'fixed', batchSize: 1024 });
      try {
        const qs = queries(info);
        await load(d, qs, offeredQps / 2, 2); // warm-up
        const cpu0 = d.cpuSeconds();
        const r = await load(d, qs, offeredQps, o.seconds, 99);
        const cpu = d.cpuSeconds() - cpu0;
        const row = {
          config: c.config,
          shards: d.plan.shards.length,
          processes: d.processes.length,
          p50Ms: r.latencyMs.p50,
          p99Ms: r.latencyMs.p99,
          achievedQps: r.achievedQps,
          errors: r.errors + r.timeouts,
          cpuSecondsPer1000: round((cpu / Math.max(r.ok, 1)) * 1000, 2),
        };
        log(`  ${c.config}: p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, ${row.cpuSecondsPer1000} CPU s per 1000 queries (${row.processes} processes)`);
        rows.push(row);
      } finally {
        await d.stop();
      }
    }
    const mono = rows.find((r) => r.config === 'monolithic')!;
    const full = rows.map((r) => ({ ...r, p99VsMono: round(r.p99Ms / mono.p99Ms, 3), cpuVsMono: round(r.cpuSecondsPer1000 / mono.cpuSecondsPer1000, 3) }));
    const distributed = full.filter((r) => r.config !== 'monolithic');
    const best = distributed.reduce((a, b) => (b.p99VsMono < a.p99VsMono ? b : a));
    out.push({ model: m.model, file: m.file, offeredQps, seconds: o.seconds, rows: full, best: { config: best.config, p99VsMono: best.p99VsMono } });
  }
  return out;
}
