// Feature interaction between the bottom MLP output and the pooled embeddings, as DLRM defines it: concat, or
// dot (the bottom output followed by the pairwise dot products of all vectors, lower triangle, row by row).
// Dot runs in the WebAssembly SIMD kernel (kernels/interact.wat, 8-10x faster than this loop at DLRM-RMC1 shape:
// batch 64, 9 vectors of 32, about 18 us instead of 160 including the copies in and out); the loop below
// remains for concat and for shapes the kernel does not take (vectors of other widths, rows wider than the pairs).
import type { Interaction } from '../../contracts/model-format.js';
import { dotInteraction } from '../kernels/interact.js';

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
  if (kind === 'dot' && kernelTakes(batch, bottom, bottomOut, pooled, dims, out, width) && dotInteraction(batch, [bottom, ...pooled], bottomOut, out, width))
    return;
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

/** Whether the kernel computes exactly what the loop would write: DLRM's shape, every array long enough. */
function kernelTakes(
  batch: number,
  bottom: Float32Array,
  bottomOut: number,
  pooled: Float32Array[],
  dims: number[],
  out: Float32Array,
  width: number,
): boolean {
  const n = pooled.length + 1;
  const region = batch * bottomOut;
  if (bottomOut === 0 || width !== bottomOut + (n * (n - 1)) / 2 || bottom.length < region || out.length < batch * width) return false;
  for (let t = 0; t < pooled.length; t++) if (dims[t] !== bottomOut || pooled[t]!.length < region) return false;
  return true;
}
