// Exact bin packing for small instances: can these sizes go into n bins of this capacity, and how. A depth-first
// search over the items in decreasing size that never tries two bins of equal fill for the same item (bins are
// interchangeable), opens at most one new bin per item, and gives up when the items left outweigh the room left.
// The search has a budget of steps: within it the answer is exact (an assignment, or a proof that none exists);
// past it the caller falls back to its heuristics.

/** Steps one search may take: a few milliseconds; instances of a few dozen tables finish well inside it. */
export const EXACT_BUDGET = 200_000;

/** Instances larger than this are never searched exactly (the heuristics' bounds hold there). */
export const EXACT_MAX_ITEMS = 64;

export type ExactResult = { fits: true; bins: number[] } | { fits: false } | undefined;

/**
 * The bin of each item (sizes in any order) when n bins of `capacity` hold them all; `{ fits: false }` when
 * proven impossible; undefined when the instance is too large or the budget ran out before an answer.
 */
export function packExactly(sizes: readonly number[], n: number, capacity: number, budget = EXACT_BUDGET): ExactResult {
  if (sizes.length > EXACT_MAX_ITEMS) return undefined;
  const total = sizes.reduce((s, x) => s + x, 0);
  if (sizes.some((x) => x > capacity) || total > n * capacity) return { fits: false };
  const order = sizes.map((_, i) => i).sort((a, b) => sizes[b]! - sizes[a]! || a - b);
  const fill = new Float64Array(n);
  const at = new Int32Array(sizes.length);
  let steps = 0;
  let exhausted = false;
  // `left`: the sizes still to place; `free`: the room left in every bin
  const place = (k: number, left: number, free: number): boolean => {
    if (k === order.length) return true;
    if (left > free) return false;
    if (++steps > budget) {
      exhausted = true;
      return false;
    }
    const item = order[k]!;
    const size = sizes[item]!;
    const tried: number[] = [];
    for (let b = 0; b < n; b++) {
      const f = fill[b]!;
      if (f + size > capacity || tried.includes(f)) continue;
      tried.push(f);
      fill[b] = f + size;
      at[item] = b;
      if (place(k + 1, left - size, free - size)) return true;
      fill[b] = f;
      if (exhausted) return false;
      if (f === 0) break; // the first empty bin stands for every empty one
    }
    return false;
  };
  if (place(0, total, n * capacity)) return { fits: true, bins: [...at] };
  return exhausted ? undefined : { fits: false };
}

/** The fewest bins that hold the sizes, searched exactly from `from` up to `below` (exclusive); undefined if none proven. */
export function fewestExactly(sizes: readonly number[], capacity: number, from: number, below: number): number | undefined {
  for (let n = Math.max(1, from); n < below; n++) {
    const r = packExactly(sizes, n, capacity);
    if (r === undefined) return undefined; // undecided: no claim about n, so none about the counts above it either
    if (r.fits) return n;
  }
  return undefined;
}
