// The pooled-lookup kernel: for each sample, sum (or average) the rows its indices name. Typed arrays only,
// writing into a caller-owned output; no allocation per sample or per index.
import { HALF_TO_FLOAT } from '../model/fp16.js';
import type { EmbeddingTable } from '../model/load.js';

export type Pooling = 'sum' | 'mean';

/**
 * out[(b * dim) + d] for b < batch: pooled rows of `indices[offsets[b] .. offsets[b+1])`.
 * Indices must already be checked against the table's rows.
 */
export function poolInto(table: EmbeddingTable, offsets: Uint32Array, indices: Uint32Array, batch: number, pooling: Pooling, out: Float32Array, outOffset = 0): void {
  const dim = table.meta.dim;
  const data = table.data;
  const half = data instanceof Uint16Array;
  for (let b = 0; b < batch; b++) {
    const o = outOffset + b * dim;
    out.fill(0, o, o + dim);
    const start = offsets[b]!;
    const end = offsets[b + 1]!;
    for (let k = start; k < end; k++) {
      const row = indices[k]! * dim;
      if (half) for (let d = 0; d < dim; d++) out[o + d]! += HALF_TO_FLOAT[data[row + d]!]!;
      else for (let d = 0; d < dim; d++) out[o + d]! += data[row + d]!;
    }
    if (pooling === 'mean' && end > start) {
      const inv = 1 / (end - start);
      for (let d = 0; d < dim; d++) out[o + d]! *= inv;
    }
  }
}
