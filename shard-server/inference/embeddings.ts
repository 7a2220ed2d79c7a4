// The pooled-lookup kernel: for each sample, sum (or average) the rows its indices name, writing into a
// caller-owned output with no allocation per sample or per index. fp32 tables in a WebAssembly arena use the
// SIMD kernel (kernels/pool.wat); fp16 tables and tables too large for an arena use the JavaScript loops.
import type { Pooling } from '../../contracts/wire/sections.js';
import { HALF_TO_FLOAT } from '../../lib/fp16.js';
import { poolerFor } from '../kernels/pool.js';
import type { EmbeddingTable } from '../model/load.js';

/**
 * out[(b * dim) + d] for b < batch: pooled rows of `indices[offsets[b] .. offsets[b+1])`.
 * Indices must already be checked against the table's rows.
 */
export function poolInto(
  table: EmbeddingTable,
  offsets: Uint32Array,
  indices: Uint32Array,
  batch: number,
  pooling: Pooling,
  out: Float32Array,
  outOffset = 0,
): void {
  // Two monomorphic kernels: one element type per loop keeps the JIT's typed-array access fast.
  if (table.arena && table.data instanceof Float32Array) poolerFor(table.arena).run(table.meta.dim, offsets, indices, batch, out, outOffset);
  else if (table.data instanceof Uint16Array) poolHalf(table.data, table.meta.dim, offsets, indices, batch, out, outOffset);
  else poolFloat(table.data, table.meta.dim, offsets, indices, batch, out, outOffset);
  if (pooling === 'mean') {
    const dim = table.meta.dim;
    for (let b = 0; b < batch; b++) {
      const count = offsets[b + 1]! - offsets[b]!;
      if (count < 2) continue;
      const inv = 1 / count;
      const o = outOffset + b * dim;
      for (let d = 0; d < dim; d++) out[o + d]! *= inv;
    }
  }
}

function poolFloat(data: Float32Array, dim: number, offsets: Uint32Array, indices: Uint32Array, batch: number, out: Float32Array, outOffset: number): void {
  for (let b = 0; b < batch; b++) {
    const o = outOffset + b * dim;
    out.fill(0, o, o + dim);
    for (let k = offsets[b]!, end = offsets[b + 1]!; k < end; k++) {
      const row = indices[k]! * dim;
      for (let d = 0; d < dim; d++) out[o + d]! += data[row + d]!;
    }
  }
}

function poolHalf(data: Uint16Array, dim: number, offsets: Uint32Array, indices: Uint32Array, batch: number, out: Float32Array, outOffset: number): void {
  for (let b = 0; b < batch; b++) {
    const o = outOffset + b * dim;
    out.fill(0, o, o + dim);
    for (let k = offsets[b]!, end = offsets[b + 1]!; k < end; k++) {
      const row = indices[k]! * dim;
      for (let d = 0; d < dim; d++) out[o + d]! += HALF_TO_FLOAT[data[row + d]!]!;
    }
  }
}
