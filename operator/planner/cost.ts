// What a plan is estimated to cost per query, for `strategy: auto`: the planner plans each strategy that holds the
// tables and keeps the cheapest. A query is QUERY_SAMPLES samples that touch every table (a predict request does),
// so every shard is called once. The constants are this machine's measurements (docs/benchmarks.md), kept
// conservative; what decides between plans is their ratios, not their absolute values:
// - a shard call costs CALL_CPU_US of CPU on the main and the shard together (benchmark 4's node:http echo floor
//   for a small body, both sides) and CALL_LATENCY_US on the critical path;
// - each byte moved between the main and a shard (the indices asked, the vectors answered) costs BYTE_CPU_NS of
//   encoding and decoding (benchmark 2: singular against monolithic on DLRM-RMC2, the CPU over the bytes moved);
// - each byte a lookup reads costs LOOKUP_NS_PER_BYTE (benchmark 3: the kernel on a table far larger than the caches).
import { formatBytes } from '../../lib/quantity.js';
import type { PlannedTable } from './tables.js';

export const QUERY_SAMPLES = 64;
export const CALL_CPU_US = 250;
export const CALL_LATENCY_US = 400;
export const BYTE_CPU_NS = 8;
export const LOOKUP_NS_PER_BYTE = 0.2;

export interface PlanCost {
  calls: number;
  /** Bytes moved between the main and its shards per query: indices out, pooled vectors or rows back. */
  movedBytes: number;
  /** CPU of every process per query, us. */
  cpuUs: number;
  /** The slowest shard's lookups plus a call, us: the part of the latency the plan decides. */
  criticalUs: number;
}

/** The shape of a plan the cost needs: where each table is, whole or in pieces. */
export interface CostedPlan {
  tables: PlannedTable[];
  mainTables: string[];
  shards: { tables: string[]; pieces?: { table: string; piece: number; pieces: number }[]; lookupBytesPerSample: number }[];
}

export function planCost(plan: CostedPlan): PlanCost {
  const byName = new Map(plan.tables.map((t) => [t.name, t]));
  const B = QUERY_SAMPLES;
  let moved = 0;
  let slowest = 0;
  for (const s of plan.shards) {
    for (const name of s.tables) {
      const t = byName.get(name)!;
      moved += B * (t.poolingFactor * 4 + t.dim * 4); // the indices, one pooled vector per sample back
    }
    for (const p of s.pieces ?? []) {
      const t = byName.get(p.table)!;
      const share = t.poolingFactor / p.pieces;
      moved += B * share * (4 + t.dim * 4); // a piece answers a row per index of its rows (about one per lookup)
    }
    slowest = Math.max(slowest, B * s.lookupBytesPerSample);
  }
  const mainLookup = plan.mainTables.reduce((n, name) => n + B * byName.get(name)!.loadBytes, 0);
  const lookups = plan.tables.reduce((n, t) => n + B * t.loadBytes, 0);
  const calls = plan.shards.length;
  return {
    calls,
    movedBytes: moved,
    cpuUs: calls * CALL_CPU_US + (moved * BYTE_CPU_NS) / 1000 + (lookups * LOOKUP_NS_PER_BYTE) / 1000,
    criticalUs: (calls ? CALL_LATENCY_US : 0) + (Math.max(slowest, mainLookup) * LOOKUP_NS_PER_BYTE) / 1000,
  };
}

/** "3 shard calls, 1.2 MiB moved, 2.10 ms CPU, 0.80 ms critical path" per query. */
export function describeCost(c: PlanCost): string {
  const ms = (us: number) => `${(us / 1000).toFixed(2)} ms`;
  return `${c.calls} shard call${c.calls === 1 ? '' : 's'}, ${formatBytes(c.movedBytes)} moved, ${ms(c.cpuUs)} CPU, ${ms(c.criticalUs)} critical path`;
}

/** Cheaper: less CPU per query (a tie within 2%), then a shorter critical path, then fewer shards. */
export function cheaper(a: PlanCost, b: PlanCost): boolean {
  if (Math.abs(a.cpuUs - b.cpuUs) > 0.02 * Math.max(a.cpuUs, b.cpuUs)) return a.cpuUs < b.cpuUs;
  if (a.criticalUs !== b.criticalUs) return a.criticalUs < b.criticalUs;
  return a.calls < b.calls;
}
