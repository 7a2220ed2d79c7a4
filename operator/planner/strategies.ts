// The table-to-shard assignments. Pure and deterministic: inputs are ordered by fixed keys and every tie is
// broken by shard index or table name, so the same model always gives the same plan. Near-linear: a heap finds
// the least-loaded shard, a segment tree the first that fits, and the local search has a fixed budget of steps.
// Where the greedy passes find no packing or more shards than needed, small instances are searched exactly
// (exact.ts); large ones keep first-fit decreasing's bound (at most 11/9 of the fewest shards, plus one).
import { EXACT_MAX_ITEMS, fewestExactly, packExactly } from './exact.js';
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

/** Bins by (load, bytes, index): the least-loaded first, the emptier on a tie, then the lower index. */
class BinHeap {
  private readonly heap: number[];
  constructor(private readonly bins: Bin[]) {
    this.heap = bins.map((_, i) => i);
  }
  private less(i: number, j: number): boolean {
    const a = this.bins[i]!;
    const b = this.bins[j]!;
    return a.load !== b.load ? a.load < b.load : a.bytes !== b.bytes ? a.bytes < b.bytes : i < j;
  }
  get size(): number {
    return this.heap.length;
  }
  pop(): number {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      this.down(0);
    }
    return top;
  }
  push(i: number): void {
    const h = this.heap;
    h.push(i);
    let k = h.length - 1;
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (!this.less(h[k]!, h[p]!)) break;
      [h[k], h[p]] = [h[p]!, h[k]!];
      k = p;
    }
  }
  private down(k: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * k + 1;
      const r = l + 1;
      let m = k;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === k) return;
      [h[k], h[m]] = [h[m]!, h[k]!];
      k = m;
    }
  }
}

/**
 * The least-loaded bin (then emptier, then lower index) that has room for t, placed; false when none has. A bin
 * too full for even the smallest table still to come (`smallestLeft`) leaves the heap for good.
 */
function putLeastLoaded(heap: BinHeap, bins: Bin[], t: PlannedTable, capacity: number, smallestLeft: number): boolean {
  const full: number[] = [];
  let found: number | undefined;
  while (heap.size) {
    const i = heap.pop();
    if (bins[i]!.bytes + t.bytes <= capacity) {
      found = i;
      break;
    }
    if (bins[i]!.bytes + smallestLeft <= capacity) full.push(i);
  }
  if (found !== undefined) {
    put(bins[found]!, t);
    heap.push(found);
  }
  for (const i of full) heap.push(i);
  return found !== undefined;
}

/**
 * Greedy list scheduling (largest expected load first onto the least-loaded shard with room), then local moves
 * and swaps off the most loaded shard while they lower it. When capacity never binds, the result's max load is
 * at most mean + the largest single table load (Graham's list-scheduling bound). Tries load order first, then
 * byte order, which packs tight capacities better. Returns undefined when neither order fits.
 */
export function balance(tables: PlannedTable[], n: number, capacity: number): Bin[] | undefined {
  for (const order of [byLoad, byBytes]) {
    const bins = emptyBins(n);
    const heap = new BinHeap(bins);
    let fits = true;
    const sorted = [...tables].sort(order);
    // the smallest table from each position on (a bin that cannot take it is done)
    const smallest = new Float64Array(sorted.length + 1).fill(Infinity);
    for (let i = sorted.length - 1; i >= 0; i--) smallest[i] = Math.min(smallest[i + 1]!, sorted[i]!.bytes);
    for (let i = 0; i < sorted.length; i++) {
      if (!putLeastLoaded(heap, bins, sorted[i]!, capacity, smallest[i + 1]!)) {
        fits = false;
        break;
      }
    }
    if (fits) {
      improve(bins, capacity);
      return bins;
    }
  }
  // tight: an exact search of a small instance, else first-fit decreasing's packing when it needs no more bins
  const exact = packExactly(
    tables.map((t) => t.bytes),
    n,
    capacity,
  );
  let bins: Bin[] | undefined;
  if (exact?.fits) {
    bins = emptyBins(n);
    tables.forEach((t, i) => put(bins![exact.bins[i]!]!, t));
  } else if (exact === undefined) {
    const ffd = firstFitDecreasing(tables, capacity);
    if (ffd.length <= n && ffd.every((b) => b.bytes <= capacity)) bins = [...ffd, ...emptyBins(n - ffd.length)];
  }
  if (bins) improve(bins, capacity);
  return bins;
}

/** Whether n bins are proven unable to hold the tables (by their total, or by an exact search of a small instance). */
export function provenTooFew(tables: PlannedTable[], n: number, capacity: number): boolean {
  if (tables.reduce((s, t) => s + t.bytes, 0) > n * capacity) return true;
  return (
    packExactly(
      tables.map((t) => t.bytes),
      n,
      capacity,
    )?.fits === false
  );
}

function remove(bin: Bin, t: PlannedTable): void {
  bin.tables.splice(bin.tables.indexOf(t), 1);
  bin.bytes -= t.bytes;
  bin.load -= t.loadBytes;
}

/**
 * Candidate moves and swaps the local search may weigh in all. Each step weighs every move and swap off the most
 * loaded bin (|hi| x tables candidates), so small models search to a local optimum and a 65,536-table model
 * stops after a few steps: the greedy start is already within one table's load of the mean there.
 */
export const IMPROVE_BUDGET = 4_000_000;

/** Moves or swaps tables off the most loaded bin while that strictly lowers the pair's maximum. */
function improve(bins: Bin[], capacity: number): void {
  let budget = IMPROVE_BUDGET;
  for (let iter = 0; iter < 10_000; iter++) {
    let hi = bins[0]!;
    for (const b of bins) if (b.load > hi.load) hi = b;
    let bestGain = 0;
    let bestMove: (() => void) | undefined;
    let total = 0;
    for (const b of bins) total += b.tables.length;
    if ((budget -= hi.tables.length * total) < 0) return;
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

/** The leftmost of n slots whose free bytes reach a size, in O(log n): first fit without scanning every bin. */
class FirstFit {
  private readonly size: number;
  private readonly free: Float64Array;
  constructor(n: number, capacity: number) {
    this.size = 1 << Math.ceil(Math.log2(Math.max(1, n)));
    this.free = new Float64Array(2 * this.size).fill(capacity);
  }
  /** The leftmost slot with at least `bytes` free, or -1. */
  find(bytes: number): number {
    if (this.free[1]! < bytes) return -1;
    let k = 1;
    while (k < this.size) k = this.free[2 * k]! >= bytes ? 2 * k : 2 * k + 1;
    return k - this.size;
  }
  set(slot: number, free: number): void {
    let k = slot + this.size;
    this.free[k] = free;
    for (k >>= 1; k >= 1; k >>= 1) this.free[k] = Math.max(this.free[2 * k]!, this.free[2 * k + 1]!);
  }
}

/** First-fit decreasing by bytes: the fewest bins FFD finds for these tables at this capacity. */
export function firstFitDecreasing(tables: PlannedTable[], capacity: number): Bin[] {
  const bins: Bin[] = [];
  // slots past the last bin are empty bins-to-be, so the leftmost fit is an open bin or the next new one
  const slots = new FirstFit(tables.length, capacity);
  for (const t of [...tables].sort(byBytes)) {
    let i = slots.find(t.bytes);
    if (i < 0 || i >= bins.length) i = bins.length; // a new bin (over capacity when the table alone is)
    if (i === bins.length) bins.push({ tables: [], bytes: 0, load: 0 });
    const bin = bins[i]!;
    put(bin, t);
    if (i < tables.length) slots.set(i, capacity - bin.bytes);
  }
  return bins;
}

/** Tables of each net bin-packed with FFD, then balanced by load across that same number of shards if it fits. */
export function netSpecific(tables: PlannedTable[], capacity: number): { net: string; bins: Bin[] }[] {
  const byNet = new Map<string, PlannedTable[]>();
  for (const t of tables) {
    const own = byNet.get(t.net);
    if (own) own.push(t);
    else byNet.set(t.net, [t]);
  }
  return [...byNet.keys()].sort(cmp).map((net) => {
    const own = byNet.get(net)!;
    const ffd = firstFitDecreasing(own, capacity);
    return { net, bins: balance(own, fewestBins(own, capacity, ffd.length), capacity) ?? ffd };
  });
}

/** The fewest bins for a small instance, searched exactly below first-fit decreasing's count; FFD's count otherwise. */
function fewestBins(tables: PlannedTable[], capacity: number, ffdCount: number): number {
  if (tables.length > EXACT_MAX_ITEMS) return ffdCount;
  const lower = Math.ceil(tables.reduce((s, t) => s + t.bytes, 0) / capacity);
  return (
    fewestExactly(
      tables.map((t) => t.bytes),
      capacity,
      lower,
      ffdCount,
    ) ?? ffdCount
  );
}
