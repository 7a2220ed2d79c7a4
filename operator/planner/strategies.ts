// The table-to-shard assignments. Pure and deterministic: inputs are ordered by fixed keys and every tie is
// broken by shard index or table name, so the same model always gives the same plan.
import type { PlannedTable } from './tables.js';

/** A shard under construction: its tables, with running totals of bytes and expected load. */
export interface Bin {
  tables: PlannedTable[];
  bytes: number;
  load: number;
}

const emptyBins = (n: number): Bin[] => Array.from({ length: n }, () => ({ tables: [], bytes: 0, load: 0 }));

function put(bin: Bin, t: PlannedTable): void {
  bin.tables.push(t);
  bin.bytes += t.bytes;
  bin.load += t.loadBytes;
}

const byLoad = (a: PlannedTable, b: PlannedTable) => b.loadBytes - a.loadBytes || b.bytes - a.bytes || cmp(a.name, b.name);
const byBytes = (a: PlannedTable, b: PlannedTable) => b.bytes - a.bytes || b.loadBytes - a.loadBytes || cmp(a.name, b.name);
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Greedy list scheduling (largest expected load first onto the least-loaded shard with room), then local moves
 * and swaps off the most loaded shard while they lower it. When capacity never binds, the result's max load is
 * at most mean + the largest single table load (Graham's list-scheduling bound). Tries load order first, then
 * byte order, which packs tight capacities better. Returns undefined when neither order fits.
 */
export function balance(tables: PlannedTable[], n: number, capacity: number): Bin[] | undefined {
  for (const order of [byLoad, byBytes]) {
    const bins = emptyBins(n);
    let fits = true;
    for (const t of [...tables].sort(order)) {
      let best: Bin | undefined;
      for (const b of bins) {
        if (b.bytes + t.bytes > capacity) continue;
        if (!best || b.load < best.load || (b.load === best.load && b.bytes < best.bytes)) best = b;
      }
      if (!best) {
        fits = false;
        break;
      }
      put(best, t);
    }
    if (fits) {
      improve(bins, capacity);
      return bins;
    }
  }
  return undefined;
}

function remove(bin: Bin, t: PlannedTable): void {
  bin.tables.splice(bin.tables.indexOf(t), 1);
  bin.bytes -= t.bytes;
  bin.load -= t.loadBytes;
}

/** Moves or swaps tables off the most loaded bin while that strictly lowers the pair's maximum. */
function improve(bins: Bin[], capacity: number): void {
  for (let iter = 0; iter < 10_000; iter++) {
    let hi = bins[0]!;
    for (const b of bins) if (b.load > hi.load) hi = b;
    let bestGain = 0;
    let bestMove: (() => void) | undefined;
    for (const other of bins) {
      if (other === hi) continue;
      for (const a of hi.tables) {
        // move a: hi -> other
        if (other.bytes + a.bytes <= capacity) {
          const gain = hi.load - Math.max(hi.load - a.loadBytes, other.load + a.loadBytes);
          if (gain > bestGain) {
            bestGain = gain;
            bestMove = () => (remove(hi, a), put(other, a));
          }
        }
        // swap a <-> b
        for (const b of other.tables) {
          const d = a.loadBytes - b.loadBytes;
          if (d <= 0) continue;
          if (other.bytes - b.bytes + a.bytes > capacity || hi.bytes - a.bytes + b.bytes > capacity) continue;
          const gain = hi.load - Math.max(hi.load - d, other.load + d);
          if (gain > bestGain) {
            bestGain = gain;
            bestMove = () => (remove(hi, a), remove(other, b), put(other, a), put(hi, b));
          }
        }
      }
    }
    if (!bestMove) return;
    bestMove();
  }
}

/** First-fit decreasing by bytes: the fewest bins FFD finds for these tables at this capacity. */
export function firstFitDecreasing(tables: PlannedTable[], capacity: number): Bin[] {
  const bins: Bin[] = [];
  for (const t of [...tables].sort(byBytes)) {
    let bin = bins.find((b) => b.bytes + t.bytes <= capacity);
    if (!bin) {
      bin = { tables: [], bytes: 0, load: 0 };
      bins.push(bin);
    }
    put(bin, t);
  }
  return bins;
}

/** Tables of each net bin-packed with FFD, then balanced by load across that same number of shards if it fits. */
export function netSpecific(tables: PlannedTable[], capacity: number): { net: string; bins: Bin[] }[] {
  const nets = [...new Set(tables.map((t) => t.net))].sort(cmp);
  return nets.map((net) => {
    const own = tables.filter((t) => t.net === net);
    const ffd = firstFitDecreasing(own, capacity);
    return { net, bins: balance(own, ffd.length, capacity) ?? ffd };
  });
}
