import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gatherInto, poolInto } from '../../../shard-server/inference/embeddings.js';
import { cachedSum, combine, HotRows } from '../../../shard-server/inference/hot-rows.js';
import type { EmbeddingTable } from '../../../shard-server/model/load.js';

function table(rows: number, dim: number, seed: number): EmbeddingTable {
  let x = seed | 1;
  const data = Float32Array.from({ length: rows * dim }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32 - 0.5;
  });
  return { index: 3, meta: { name: 't', rows, dim, dtype: 'fp32', net: 'n', poolingFactor: 1, file: '', sha256: '', bytes: rows * dim * 4 }, data };
}

describe('the hot-row cache', () => {
  it('keeps the most used rows that fit its budget', () => {
    const hot = new HotRows(new Map([[3, { dim: 4, rows: 200 }]]), 3 * 16); // three rows of dim 4
    // rows 7, 8 and 9 used most, in that order; row 1 once
    const uses = [7, 7, 7, 7, 8, 8, 8, 9, 9, 1];
    hot.observe(3, Uint32Array.from(uses));
    expect(Array.from(hot.choose().get(3)!)).toEqual([7, 8, 9]);
    hot.observe(4, Uint32Array.of(1, 1, 1)); // a table it does not cache
    expect([...hot.choose().keys()]).toEqual([3]);
  });

  it('the shard pools what the cache does not hold; with the cached rows added the sums and means are the unsplit ones within fp32 rounding', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 20 }),
        fc.constantFrom('sum' as const, 'mean' as const),
        fc.integer(),
        (dim, counts, pooling, seed) => {
          const t = table(200, dim, seed);
          const batch = counts.length;
          const offsets = new Uint32Array(batch + 1);
          counts.forEach((c, b) => (offsets[b + 1] = offsets[b]! + c));
          const indices = Uint32Array.from({ length: offsets[batch]! }, (_, i) => ((i * 7919 + Math.abs(seed)) % (i % 2 ? 200 : 6)) % 200);
          const hot = new HotRows(new Map([[3, { dim, rows: 200 }]]), 4 * dim * 4);
          hot.observe(3, indices);
          const rows = hot.choose().get(3) ?? new Uint32Array();
          const values = new Float32Array(rows.length * dim);
          gatherInto(t, rows, values);
          hot.install(3, rows, values);
          const split = hot.split(3, offsets, indices, batch)!;
          expect(split.indices.length + split.slots.length).toBe(indices.length);
          for (const i of split.indices) expect(rows.includes(i)).toBe(false);
          const shard = new Float32Array(batch * dim);
          poolInto(t, split.offsets, split.indices, batch, 'sum', shard);
          const got = combine(cachedSum(split, batch), split.indices.length ? shard : undefined, offsets, batch, pooling);
          const want = new Float32Array(batch * dim);
          poolInto(t, offsets, indices, batch, pooling, want);
          for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, ...counts));
        },
      ),
      { numRuns: 200 },
    );
  });
});
