// Feature interaction between the bottom MLP output and the pooled embeddings, as DLRM defines it: concat, or
// dot (the bottom output followed by the pairwise dot products of all vectors, lower triangle, row by row).
import type { Interaction } from '../../contracts/model-format.js';

/**
 * bottom: batch x bottomOut (bottomOut may be 0); pooled[t]: batch x dims[t]. Writes batch x width into out.
 */
export function interact(
  kind: Interaction,
  batch: number,
  bottom: Float32Array,
  bottomOut: number,
  pooled: Float32Array[],
  dims: number[],
  out: Float32Array,
  width: number,
): void {
  for (let b = 0; b < batch; b++) {
    const o = b * width;
    for (let d = 0; d < bottomOut; d++) out[o + d] = bottom[b * bottomOut + d]!;
    let p = o + bottomOut;
    if (kind === 'concat') {
      for (let t = 0; t < pooled.length; t++) {
        const dim = dims[t]!;
        out.set(pooled[t]!.subarray(b * dim, (b + 1) * dim), p);
        p += dim;
      }
      continue;
    }
    // dot: vectors are [bottom, pooled_0, ..., pooled_{T-1}], all of width bottomOut
    const n = pooled.length + 1;
    const base = b * bottomOut;
    for (let i = 1; i < n; i++) {
      const a = pooled[i - 1]!;
      for (let j = 0; j < i; j++) {
        const c = j === 0 ? bottom : pooled[j - 1]!;
        let s = 0;
        for (let d = 0; d < bottomOut; d++) s += a[base + d]! * c[base + d]!;
        out[p++] = s;
      }
    }
  }
}
