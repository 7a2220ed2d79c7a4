import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rowBytes, type DType } from '../../../contracts/model-format.js';
import { pieceRows } from '../../../contracts/plan.js';
import { toHalf } from '../../../lib/fp16.js';
import { encoder } from '../../../models/generate.js';
import { gatherInto, poolInto } from '../../../shard-server/inference/embeddings.js';
import { SplitTable } from '../../../shard-server/inference/split.js';
import { createArena } from '../../../shard-server/kernels/pool.js';
import type { EmbeddingTable, TableData } from '../../../shard-server/model/load.js';

/** Random values over several binades (so that the order of additions shows in the last bits). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 2 ** 32 - 0.5) * 2 ** ((x >>> 27) % 12);
  }
  return out;
}

/** The table whole (in a kernel arena when fp32) and each of its pieces as the shard holding it would. */
function tables(rows: number, dim: number, dtype: DType, pieces: number, seed: number) {
  const row = rowBytes(dim, dtype);
  const meta = { name: 't', rows, dim, dtype, net: 'n', poolingFactor: 1, file: '', sha256: '', bytes: rows * row };
  const f32 = values(rows * dim, seed);
  let data: TableData;
  let arena;
  if (dtype === 'fp16') data = Uint16Array.from(f32, toHalf);
  else if (dtype === 'int8') data = Uint8Array.from(encoder('int8', dim, f32, rows)(rows));
  else {
    arena = createArena(f32.byteLength, 1)!;
    data = new Float32Array(arena.memory.buffer, arena.tableOffset, f32.length);
    data.set(f32);
  }
  const whole: EmbeddingTable = { index: 0, meta, data, ...(arena ? { arena } : {}) };
  const held = Array.from({ length: pieces }, (_, p) => {
    const { start, end } = pieceRows(rows, p, pieces);
    const per = dtype === 'int8' ? row : dim;
    const rowsOf = data.subarray(start * per, end * per);
    const piece: EmbeddingTable = { index: 0, meta: { ...meta, rows: end - start }, data: rowsOf, piece: { start, end, rows } };
    return { start, end, piece };
  });
  return {
    whole,
    held,
    split: new SplitTable(
      0,
      dim,
      held.map((h, shard) => ({ shard, start: h.start, end: h.end })),
    ),
  };
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('a table split by rows', () => {
  it('pools bit-for-bit what the unsplit table pools (sum and mean, fp32, fp16 and int8), each piece asked each row once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 8, max: 400 }),
        fc.integer({ min: 2, max: 7 }),
        fc.array(fc.integer({ min: 0, max: 60 }), { minLength: 1, maxLength: 24 }),
        fc.constantFrom('sum' as const, 'mean' as const),
        fc.constantFrom('fp32' as const, 'fp16' as const, 'int8' as const),
        fc.integer(),
        (dim, rows, pieces, counts, pooling, dtype, seed) => {
          const { whole, held, split } = tables(rows, dim, dtype, pieces, seed);
          const batch = counts.length;
          const offsets = new Uint32Array(batch + 1);
          counts.forEach((c, b) => (offsets[b + 1] = offsets[b]! + c));
          // skewed: repeats of a few rows, as Zipf traffic has
          const indices = Uint32Array.from({ length: offsets[batch]! }, (_, i) => ((i * 7919 + Math.abs(seed)) % (i % 3 ? rows : 5)) % rows);
          const route = split.route(indices);
          const answers = held.map((h, p) => {
            const asks = route.asks[p]!;
            expect(new Set(asks).size).toBe(asks.length);
            for (const r of asks) expect(r).toBeLessThan(h.end - h.start);
            const out = new Float32Array(asks.length * dim);
            gatherInto(h.piece, asks, out);
            return out;
          });
          const expected = new Float32Array(batch * dim);
          poolInto(whole, offsets, indices, batch, pooling, expected);
          expect(bits(split.pool(route, offsets, batch, pooling, answers))).toEqual(bits(expected));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a piece with no answer (the zero policy) pools as if its rows were zeros', () => {
    const { whole, held, split } = tables(100, 8, 'fp32', 4, 7);
    const offsets = Uint32Array.of(0, 3, 6);
    const indices = Uint32Array.of(1, 30, 99, 60, 61, 2);
    const route = split.route(indices);
    const answers = held.map((h, p) => {
      const out = new Float32Array(route.asks[p]!.length * 8);
      gatherInto(h.piece, route.asks[p]!, out);
      return p === 2 ? undefined : out;
    });
    const zeroed: EmbeddingTable = { ...whole, arena: undefined, data: Float32Array.from(whole.data as Float32Array) };
    (zeroed.data as Float32Array).fill(0, 50 * 8, 75 * 8);
    const expected = new Float32Array(2 * 8);
    poolInto(zeroed, offsets, indices, 2, 'sum', expected);
    expect(bits(split.pool(route, offsets, 2, 'sum', answers))).toEqual(bits(expected));
  });

  it('routes each row to the piece that holds it, at the edges too', () => {
    const split = new SplitTable(
      0,
      1,
      [0, 1, 2].map((shard) => ({ shard, ...pieceRows(10, shard, 3) })),
    );
    expect([0, 2, 3, 5, 6, 9].map((r) => split.pieceOf(r))).toEqual([0, 0, 1, 1, 2, 2]);
  });
});
