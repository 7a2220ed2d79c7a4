// Benchmark 2, the cost of scale-out (Lui et al.): the same model and the same offered load served monolithic,
// singular, load-balanced over 2, 4 and 8 shards and net-specific; p50/p99 latency and the CPU seconds all of
// the deployment's processes spent per 1,000 queries.
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import type { LocalDeployment } from '../cli/local.js';
import type { RecModel } from '../operator/api/v1alpha1/index.js';
import { example, load, log, oneAtATime, queries, round, serve } from './lib.js';
import { percentile } from './reliability.js';

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
  /** Monolithic against the best distributed configuration, measured again side by side: see `splitGap`. */
  split?: GapSplit;
}

/** p99 of the monolithic and of one distributed configuration, and their ratio. */
export interface P99Pair {
  monoP99Ms: number;
  distP99Ms: number;
  p99VsMono: number;
}

/**
 * Where the distributed configuration's p99 gap comes from. `oneClient`: one query at a time (no queueing, the
 * shards' work never overlaps another query's). At the same half load, `shared`: every process on both cores, as
 * in the rows; `pinned`: the main alone on cpu 0, the shards and the load generator on cpu 1 (as if the shards
 * had nodes of their own), and the monolithic main alone on cpu 0 likewise. What pinning removes is CPU
 * contention between the main and its shards; what remains is the protocol (the shard calls' latency and the
 * main's encoding and decoding).
 */
export interface GapSplit {
  config: string;
  oneClient: P99Pair & { monoP50Ms: number; distP50Ms: number; queries: number };
  shared: P99Pair;
  pinned: P99Pair;
  /** Share of the shared gap that pinning removed (0..1), and the rest. */
  contentionShare: number;
  protocolShare: number;
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
  /** Split the best configuration's gap into contention and protocol (needs 2 cores), one-client queries. */
  split?: { queries: number };
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
    const split = o.split ? await splitGap(m.file, best.config, offeredQps, o.seconds, o.split.queries) : undefined;
    out.push({ model: m.model, file: m.file, offeredQps, seconds: o.seconds, rows: full, best: { config: best.config, p99VsMono: best.p99VsMono }, split });
  }
  return out;
}

/** Pins every thread of a process to a CPU list (taskset), e.g. "0" or "0-1". */
function pin(pid: number, cpuList: string): void {
  execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpuList, String(pid)], { stdio: 'ignore' });
}

function pinDeployment(d: LocalDeployment, placement: 'shared' | 'pinned'): void {
  const all = `0-${cpus().length - 1}`;
  for (const p of d.processes) if (p.proc.pid) pin(p.proc.pid, placement === 'shared' ? all : p.name === 'main' ? '0' : '1');
  pin(process.pid, placement === 'shared' ? all : '1'); // the load generator
}

async function splitGap(file: string, config: string, qps: number, seconds: number, count: number): Promise<GapSplit> {
  log(`  contention or protocol: monolithic against ${config}, one client, then ${qps} QPS shared and pinned`);
  type Measured = { p50: number; p99: number; shared: number; pinned: number };
  const measure = async (c: (typeof SCALEOUT_CONFIGS)[number]): Promise<Measured> => {
    const rm = example(file, { ...c.sharding, shardMemory: '8Gi' }, `bench-${file.replace('.yaml', '')}-split-${c.config.replace('/', '')}`);
    const { d, info } = await serve(rm, { scheduler: 'fixed', batchSize: 1024 });
    try {
      const qs = queries(info);
      await oneAtATime(d, qs, 20);
      const one = await oneAtATime(d, qs, count);
      const tail: Record<'shared' | 'pinned', number> = { shared: 0, pinned: 0 };
      for (const placement of ['shared', 'pinned'] as const) {
        pinDeployment(d, placement);
        await load(d, qs, qps / 2, 1); // settle on the new placement
        tail[placement] = (await load(d, qs, qps, seconds, 99)).latencyMs.p99;
      }
      return { p50: round(percentile(one, 50), 2), p99: round(percentile(one, 99), 2), ...tail };
    } finally {
      pinDeployment(d, 'shared');
      await d.stop();
    }
  };
  const mono = await measure(SCALEOUT_CONFIGS[0]!);
  const dist = await measure(SCALEOUT_CONFIGS.find((c) => c.config === config)!);
  const pair = (m: number, x: number): P99Pair => ({ monoP99Ms: m, distP99Ms: x, p99VsMono: round(x / m, 3) });
  const shared = pair(mono.shared, dist.shared);
  const pinned = pair(mono.pinned, dist.pinned);
  const gap = shared.p99VsMono - 1;
  const contentionShare = gap > 0 ? round(Math.min(1, Math.max(0, (shared.p99VsMono - pinned.p99VsMono) / gap)), 3) : 0;
  const split: GapSplit = {
    config,
    oneClient: { ...pair(mono.p99, dist.p99), monoP50Ms: mono.p50, distP50Ms: dist.p50, queries: count },
    shared,
    pinned,
    contentionShare,
    protocolShare: gap > 0 ? round(1 - contentionShare, 3) : 0,
  };
  log(
    `  one client p99 ${split.oneClient.p99VsMono}x; at ${qps} QPS shared ${shared.p99VsMono}x, pinned ${pinned.p99VsMono}x: ` +
      `${Math.round(contentionShare * 100)}% of the gap is contention`,
  );
  return split;
}
