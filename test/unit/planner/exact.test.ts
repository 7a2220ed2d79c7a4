// Exact packing of small instances: the fewest shards a net needs, load-balanced plans the greedy passes miss, and
// an "at least K shards" that K shards really hold; checked against brute force on random tight instances.
import { describe, expect, it } from 'vitest';
import { EXACT_MAX_ITEMS, packExactly } from '../../../operator/planner/exact.js';
import { planModel } from '../../../operator/planner/plan.js';
import { specOf } from '../fixtures.js';

/** A seeded generator (mulberry32): the same cases every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The fewest bins by trying every assignment (items in order, each into a used bin or the next new one). */
function bruteFewest(sizes: number[], capacity: number): number {
  let best = Infinity;
  const fill: number[] = [];
  const go = (i: number) => {
    if (fill.length >= best) return;
    if (i === sizes.length) return void (best = fill.length);
    for (let b = 0; b <= fill.length; b++) {
      if (b === fill.length) fill.push(0);
      if (fill[b]! + sizes[i]! <= capacity) {
        fill[b]! += sizes[i]!;
        go(i + 1);
        fill[b]! -= sizes[i]!;
      }
      if (fill[b] === 0) fill.pop();
    }
  };
  go(0);
  return best;
}

/** Tables of these sizes in MiB (fp32, dim 64: 4,096 rows per MiB), pooled by `pooling`. */
const tablesOf = (mib: number[], pooling: (i: number) => number = () => 1, net = 'default') =>
  mib.map((m, i) => ({ name: `t${i}`, rows: m * 4096, dim: 64, poolingFactor: pooling(i), net }));

const shards = (sizes: number[], strategy: 'load-balanced' | 'net-specific', count?: number, pooling?: (i: number) => number) =>
  planModel(
    specOf({
      tables: tablesOf(sizes, pooling),
      sharding: { strategy, shardMemory: '10Mi', headroom: 0, ...(count ? { shards: count } : {}) },
    }),
  );

describe('packExactly', () => {
  it('finds the packing first-fit decreasing misses, and proves what cannot be', () => {
    const r = packExactly([5, 4, 4, 3, 2, 2], 2, 10);
    expect(r?.fits).toBe(true);
    const fill = [0, 0];
    if (r?.fits) r.bins.forEach((b, i) => (fill[b]! += [5, 4, 4, 3, 2, 2][i]!));
    expect(fill).toEqual([10, 10]);
    expect(packExactly([6, 6, 6], 2, 10)).toEqual({ fits: false });
    expect(packExactly([11], 5, 10)).toEqual({ fits: false });
    expect(
      packExactly(
        Array.from({ length: EXACT_MAX_ITEMS + 1 }, () => 1),
        100,
        10,
      ),
    ).toBeUndefined();
  });

  it('agrees with brute force on 400 random instances', () => {
    const next = rng(18);
    for (let c = 0; c < 400; c++) {
      const sizes = Array.from({ length: 1 + Math.floor(next() * 8) }, () => 1 + Math.floor(next() * 10));
      const fewest = bruteFewest(sizes, 10);
      expect(packExactly(sizes, fewest, 10)?.fits, `${sizes} in ${fewest}`).toBe(true);
      if (fewest > 1) expect(packExactly(sizes, fewest - 1, 10), `${sizes} in ${fewest - 1}`).toEqual({ fits: false });
    }
  });
});

describe('plans of tight instances', () => {
  it('net-specific puts 5, 4, 4, 3, 2, 2 MiB on two 10 MiB shards (first-fit decreasing takes three)', () => {
    const r = shards([5, 4, 4, 3, 2, 2], 'net-specific');
    if (!r.ok) throw r.error;
    expect(r.plan.shards.map((s) => s.bytes / 2 ** 20).sort()).toEqual([10, 10]);
  });

  it('load-balanced holds every feasible random tight case, and an infeasible one names a count that holds it', () => {
    const next = rng(19);
    let refused = 0;
    for (let c = 0; c < 300; c++) {
      const sizes = Array.from({ length: 3 + Math.floor(next() * 8) }, () => 1 + Math.floor(next() * 9));
      const fewest = bruteFewest(sizes, 10);
      const pooling = (i: number) => 1 + ((i * 7 + c) % 5);
      const ask = Math.min(sizes.length, Math.max(1, fewest - 1 + Math.floor(next() * 2)));
      const r = shards(sizes, 'load-balanced', ask, pooling);
      if (ask >= fewest) {
        expect(r.ok, `${sizes} on ${ask} shards`).toBe(true);
        continue;
      }
      refused++;
      expect(r.ok).toBe(false);
      if (r.ok) continue;
      const k = Number(/at least (\d+) shards are needed$/.exec(r.error.message)?.[1]);
      expect(k, r.error.message).toBe(fewest);
      expect(shards(sizes, 'load-balanced', k, pooling).ok).toBe(true);
    }
    expect(refused).toBeGreaterThan(50);
  });
});
