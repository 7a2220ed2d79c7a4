import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitQuery, joinScores } from '../../../shard-server/inference/batching.js';
import { poolInto } from '../../../shard-server/inference/embeddings.js';
import { interact } from '../../../shard-server/inference/interaction.js';
import type { PredictInput } from '../../../shard-server/inference/request.js';
import { createArena, poolerFor, setThreadSlot } from '../../../shard-server/kernels/pool.js';
import type { EmbeddingTable } from '../../../shard-server/model/load.js';

function tables(rows: number, dim: number, seed: number): { js: EmbeddingTable; wasm: EmbeddingTable } {
  const meta = { name: 't', rows, dim, dtype: 'fp32' as const, net: 'n', poolingFactor: 1, file: '', sha256: '', bytes: rows * dim * 4 };
  const data = new Float32Array(rows * dim);
  let x = seed | 1;
  for (let i = 0; i < data.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = ((x >>> 0) / 2 ** 32 - 0.5) * 8;
  }
  const arena = createArena(data.byteLength, 2)!;
  const view = new Float32Array(arena.memory.buffer, arena.tableOffset, data.length);
  view.set(data);
  return { js: { index: 0, meta, data }, wasm: { index: 0, meta, data: view, arena } };
}

describe('the WebAssembly SIMD pooling kernel', () => {
  it('sums exactly what the JavaScript loop sums, for any dim (SIMD body plus scalar tail) and pooling', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 40 }),
        fc.constantFrom('sum' as const, 'mean' as const),
        fc.integer(),
        (dim, rows, counts, pooling, seed) => {
          const { js, wasm } = tables(rows, dim, seed);
          const offsets = new Uint32Array(counts.length + 1);
          counts.forEach((c, b) => (offsets[b + 1] = offsets[b]! + c));
          const indices = Uint32Array.from({ length: offsets[counts.length]! }, (_, i) => (i * 7919 + Math.abs(seed)) % rows);
          const a = new Float32Array(counts.length * dim).fill(NaN);
          const b = new Float32Array(counts.length * dim).fill(NaN);
          poolInto(js, offsets, indices, counts.length, pooling, a);
          poolInto(wasm, offsets, indices, counts.length, pooling, b);
          expect(b).toEqual(a);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('chunks requests larger than its scratch area (many samples, many indices) without changing the sums', () => {
    const { js, wasm } = tables(5000, 64, 3);
    const batch = 5000; // more samples than one chunk's offsets hold, and more output than its scratch
    const offsets = Uint32Array.from({ length: batch + 1 }, (_, b) => b * 40); // 200,000 indices > 131,072 per chunk
    const indices = Uint32Array.from({ length: batch * 40 }, (_, i) => (i * 104729) % 5000);
    const a = new Float32Array(batch * 64);
    const b = new Float32Array(batch * 64);
    poolInto(js, offsets, indices, batch, 'sum', a);
    poolInto(wasm, offsets, indices, batch, 'sum', b, 0);
    expect(b).toEqual(a);
  });

  it('pools rows wider than its scratch output (a manifest may say any dim) without writing past it', () => {
    const dim = 140_000; // 560 KB per row > the scratch's output area
    const { js, wasm } = tables(3, dim, 4);
    const offsets = Uint32Array.of(0, 2, 3);
    const indices = Uint32Array.of(0, 2, 0);
    const a = new Float32Array(2 * dim);
    const b = new Float32Array(2 * dim);
    poolInto(js, offsets, indices, 2, 'sum', a);
    // in the last slot, twice: an output written past its scratch would land on the rows themselves
    setThreadSlot(1);
    try {
      poolInto(wasm, offsets, indices, 2, 'sum', b, 0);
      poolInto(wasm, offsets, indices, 2, 'sum', b, 0);
    } finally {
      setThreadSlot(0);
    }
    expect(b).toEqual(a);
  });

  it('writes at an output offset and keeps threads apart by slot', () => {
    const { js, wasm } = tables(10, 4, 9);
    const offsets = Uint32Array.of(0, 2);
    const indices = Uint32Array.of(1, 3);
    const out = new Float32Array(12).fill(-1);
    poolInto(wasm, offsets, indices, 1, 'sum', out, 8);
    expect([...out.subarray(0, 8)]).toEqual(new Array(8).fill(-1));
    expect([...out.subarray(8)]).toEqual([0, 1, 2, 3].map((d) => Math.fround(js.data[4 + d]! + js.data[12 + d]!)));
    expect(() => poolerFor({ ...wasm.arena!, memory: new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }), slots: 0 })).toThrow(/slot 0 outside/);
  });

  it('sums the same whether it streams a small table in first or touches each row of a large one', () => {
    // 4 KiB of rows read 12 times over (streamed); 2 MiB read at a few rows (each row's other lines touched as the
    // first block is summed), at widths of one block, several, and several plus 16-byte blocks and single floats
    for (const [rows, dim, lookups] of [
      [16, 64, 200],
      [20_000, 16, 300],
      [5_000, 100, 300],
      [16_000, 33, 300],
    ] as const) {
      const { js, wasm } = tables(rows, dim, rows + dim);
      const batch = 10;
      const offsets = Uint32Array.from({ length: batch + 1 }, (_, b) => Math.floor((lookups * b) / batch));
      const indices = Uint32Array.from({ length: lookups }, (_, i) => (i * 7919 + 13) % rows);
      const a = new Float32Array(batch * dim);
      const b = new Float32Array(batch * dim).fill(NaN);
      poolInto(js, offsets, indices, batch, 'sum', a);
      poolInto(wasm, offsets, indices, batch, 'sum', b);
      expect(b).toEqual(a);
    }
  });

  it('declines tables an arena cannot hold (wasm32 memories stop at 4 GiB), which then pool in JavaScript', () => {
    expect(createArena(4 * 2 ** 30, 1)).toBeUndefined();
  });
});

/** The dot interaction as the kernel documents it, in float32 step by step: lanes of 16-byte blocks, (l0 + l2) + (l1 + l3), the rest one by one. */
function dotRows(batch: number, vectors: Float32Array[], dim: number): Float32Array {
  const f = Math.fround;
  const n = vectors.length;
  const width = dim + (n * (n - 1)) / 2;
  const out = new Float32Array(batch * width);
  for (let b = 0; b < batch; b++) {
    out.set(vectors[0]!.subarray(b * dim, (b + 1) * dim), b * width);
    let p = b * width + dim;
    for (let i = 1; i < n; i++)
      for (let j = 0; j < i; j++) {
        const x = [0, 0, 0, 0];
        const at = (v: number, d: number) => vectors[v]![b * dim + d]!;
        let d = 0;
        for (; d + 4 <= dim; d += 4) for (let l = 0; l < 4; l++) x[l] = f(x[l]! + f(at(i, d + l) * at(j, d + l)));
        let s = f(f(x[0]! + x[2]!) + f(x[1]! + x[3]!));
        for (; d < dim; d++) s = f(s + f(at(i, d) * at(j, d)));
        out[p++] = s;
      }
  }
  return out;
}

describe('the WebAssembly SIMD dot interaction', () => {
  const random = (length: number, seed: number) => {
    let x = seed | 1;
    return Float32Array.from({ length }, () => {
      x = (Math.imul(x, 1103515245) + 12345) | 0;
      return ((x >>> 8) / 2 ** 24 - 0.5) * 4;
    });
  };

  it('writes the bottom output and each pair dot product in its one summation order, close to the double-precision loop', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer(),
        (batch, dim, tables, seed) => {
          const bottom = random(batch * dim, seed);
          const pooled = Array.from({ length: tables }, (_, t) => random(batch * dim, seed + t + 1));
          const n = tables + 1;
          const width = dim + (n * (n - 1)) / 2;
          const out = new Float32Array(batch * width).fill(NaN);
          interact('dot', batch, bottom, dim, pooled, new Array<number>(tables).fill(dim), out, width);
          const want = dotRows(batch, [bottom, ...pooled], dim);
          expect(out).toEqual(want);
          // and within float rounding of the products summed in double
          for (let b = 0; b < batch; b++) {
            let p = b * width + dim;
            for (let i = 1; i < n; i++)
              for (let j = 0; j < i; j++) {
                const vs = [bottom, ...pooled];
                let s = 0;
                let mag = 0;
                for (let d = 0; d < dim; d++) {
                  s += vs[i]![b * dim + d]! * vs[j]![b * dim + d]!;
                  mag += Math.abs(vs[i]![b * dim + d]! * vs[j]![b * dim + d]!);
                }
                expect(Math.abs(out[p++]! - s)).toBeLessThanOrEqual(mag * dim * 2 ** -23 + 1e-30);
              }
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('grows its scratch for large batches and gives the same rows as for the same samples in a small one', () => {
    const dim = 32;
    const tables = 8;
    const width = dim + ((tables + 1) * tables) / 2;
    const big = 3000; // 3000 x 9 x 32 floats and the rows: more than the kernel's first memory
    const bottom = random(big * dim, 1);
    const pooled = Array.from({ length: tables }, (_, t) => random(big * dim, t + 2));
    const out = new Float32Array(big * width);
    interact('dot', big, bottom, dim, pooled, new Array<number>(tables).fill(dim), out, width);
    const small = new Float32Array(2 * width);
    const at = (v: Float32Array) => v.subarray(1234 * dim, 1236 * dim);
    interact('dot', 2, at(bottom), dim, pooled.map(at), new Array<number>(tables).fill(dim), small, width);
    expect(out.subarray(1234 * width, 1236 * width)).toEqual(small);
  });

  it('leaves concat and shapes outside DLRM (other widths, rows wider than the pairs) to the JavaScript loop', () => {
    const bottom = Float32Array.of(1, 2, 3, 4);
    const pooled = [Float32Array.of(5, 6, 7, 8)];
    const concat = new Float32Array(8);
    interact('concat', 2, bottom, 2, pooled, [2], concat, 4);
    expect([...concat]).toEqual([1, 2, 5, 6, 3, 4, 7, 8]);
    // a row wider than bottom + pairs: the loop writes what it always did and leaves the rest
    const wide = new Float32Array(2 * 5).fill(-1);
    interact('dot', 2, bottom, 2, pooled, [2], wide, 5);
    expect([...wide]).toEqual([1, 2, 17, -1, -1, 3, 4, 53, -1, -1]);
  });
});

describe('query splitting', () => {
  const input = (): PredictInput => ({
    batch: 5,
    dense: Float32Array.from({ length: 10 }, (_, i) => i),
    pooling: 'sum',
    sparse: new Map([[2, { offsets: Uint32Array.of(0, 1, 3, 3, 6, 7), indices: Uint32Array.of(10, 11, 12, 13, 14, 15, 16) }]]),
  });

  it('cuts a query into parts of B samples with their own dense rows and rebased offsets', () => {
    const parts = splitQuery(input(), 2, 2);
    expect(parts.map((p) => [p.start, p.input.batch])).toEqual([
      [0, 2],
      [2, 2],
      [4, 1],
    ]);
    expect([...parts[1]!.input.dense]).toEqual([4, 5, 6, 7]);
    expect([...parts[1]!.input.sparse.get(2)!.offsets]).toEqual([0, 0, 3]);
    expect([...parts[1]!.input.sparse.get(2)!.indices]).toEqual([13, 14, 15]);
    expect([...parts[2]!.input.sparse.get(2)!.indices]).toEqual([16]);
    // parts are views: splitting copies no dense rows or indices
    const whole = input();
    for (const p of splitQuery(whole, 2, 2)) {
      expect(p.input.dense.buffer).toBe(whole.dense.buffer);
      expect(p.input.sparse.get(2)!.indices.buffer).toBe(whole.sparse.get(2)!.indices.buffer);
    }
  });

  it('keeps a query whole when B is at least its size, and joins scores back in order', () => {
    const one = input();
    const [only] = splitQuery(one, 64, 2);
    expect(only!.input.sparse.get(2)).toBe(one.sparse.get(2));
    const parts = splitQuery(input(), 2, 2).map((p) => ({
      start: p.start,
      scores: Float32Array.from({ length: p.input.batch * 2 }, (_, i) => p.start * 2 + i),
    }));
    expect([...joinScores(parts, 5, 2)]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
