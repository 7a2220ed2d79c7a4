// The pooled-lookup kernel: for each sample, sum (or average) the rows its indices name, writing into a
// caller-owned output with no allocation per sample or per index. fp32 and int8 tables in a WebAssembly arena use
// the SIMD kernels (kernels/pool.wat); fp16 tables and tables too large for an arena use the JavaScript loops.
// Every element is summed in index order from +0 in fp32, so all of them agree bit for bit.
import { int8Stride, int8Value } from '../../contracts/model-format.js';
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
  if (table.arena) poolerFor(table.arena).run(table.meta.dim, offsets, indices, batch, out, outOffset);
  else if (table.data instanceof Uint16Array) poolHalf(table.data, table.meta.dim, offsets, indices, batch, out, outOffset);
  else if (table.data instanceof Uint8Array) poolInt8(table.data, table.meta.dim, offsets, indices, batch, out, outOffset);
  else poolFloat(table.data, table.meta.dim, offsets, indices, batch, out, outOffset);
  if (pooling === 'mean') meanInPlace(out, offsets, batch, table.meta.dim, outOffset);
}

/** A mean from the sums: each sample of two or more indices times 1 / its count (the same rounding everywhere). */
export function meanInPlace(out: Float32Array, offsets: Uint32Array, batch: number, dim: number, outOffset = 0): void {
  for (let b = 0; b < batch; b++) {
    const count = offsets[b + 1]! - offsets[b]!;
    if (count < 2) continue;
    const inv = 1 / count;
    const o = outOffset + b * dim;
    for (let d = 0; d < dim; d++) out[o + d]! *= inv;
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

/** An int8 table's rows as words: each row's scale and bias are at word (row start + stride) / 4 and the next. */
const words = (data: Uint8Array) => new Float32Array(data.buffer, data.byteOffset, data.byteLength >> 2);

function poolInt8(data: Uint8Array, dim: number, offsets: Uint32Array, indices: Uint32Array, batch: number, out: Float32Array, outOffset: number): void {
  const stride = int8Stride(dim);
  const rowBytes = stride + 8;
  const w = words(data);
  for (let b = 0; b < batch; b++) {
    const o = outOffset + b * dim;
    out.fill(0, o, o + dim);
    for (let k = offsets[b]!, end = offsets[b + 1]!; k < end; k++) {
      const row = indices[k]! * rowBytes;
      const scale = w[(row + stride) >> 2]!;
      const bias = w[(row + stride + 4) >> 2]!;
      for (let d = 0; d < dim; d++) out[o + d]! += int8Value(data[row + d]!, scale, bias);
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

/**
 * out[k * dim ..] = the row indices[k] names, as fp32 (an fp16 row widened exactly, an int8 row dequantised as the
 * pooling loop does): what a piece of a split table
 * answers, so that the main pools each sample's rows in their order, as the unsplit table would.
 */
export function gatherInto(table: EmbeddingTable, indices: Uint32Array, out: Float32Array, outOffset = 0): void {
  const { dim } = table.meta;
  const data = table.data;
  if (data instanceof Float32Array) {
    for (let k = 0; k < indices.length; k++) out.set(data.subarray(indices[k]! * dim, indices[k]! * dim + dim), outOffset + k * dim);
    return;
  }
  if (data instanceof Uint8Array) {
    const stride = int8Stride(dim);
    const w = words(data);
    for (let k = 0; k < indices.length; k++) {
      const row = indices[k]! * (stride + 8);
      const [scale, bias] = [w[(row + stride) >> 2]!, w[(row + stride + 4) >> 2]!];
      for (let d = 0; d < dim; d++) out[outOffset + k * dim + d] = int8Value(data[row + d]!, scale, bias);
    }
    return;
  }
  for (let k = 0; k < indices.length; k++) {
    const row = indices[k]! * dim;
    const o = outOffset + k * dim;
    for (let d = 0; d < dim; d++) out[o + d] = HALF_TO_FLOAT[data[row + d]!]!;
  }
}
