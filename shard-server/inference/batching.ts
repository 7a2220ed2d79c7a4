// DeepRecSched's request splitting: a query of N samples becomes ceil(N / B) parts of at most B samples. Parts
// are views into the query (dense rows and indices) with their own offsets rebased to 0, so splitting copies
// nothing large; what goes to a worker thread is copied once, by partTask, into buffers the worker then owns.
import type { PredictInput, SparseInput } from './request.js';

export interface Part {
  /** First sample of the part in the query. */
  start: number;
  input: PredictInput;
}

/** Splits into parts of at most `batchSize` samples; batchSize >= batch returns the query as one part. */
export function splitQuery(input: PredictInput, batchSize: number, denseFeatures: number): Part[] {
  const n = input.batch;
  const size = Math.max(1, Math.floor(batchSize));
  const parts: Part[] = [];
  for (let start = 0; start < n; start += size) {
    const end = Math.min(n, start + size);
    const sparse = new Map<number, SparseInput>();
    for (const [t, sp] of input.sparse) sparse.set(t, sliceSparse(sp, start, end));
    parts.push({
      start,
      input: { batch: end - start, dense: input.dense.subarray(start * denseFeatures, end * denseFeatures), sparse, pooling: input.pooling },
    });
  }
  return parts;
}

function sliceSparse(sp: SparseInput, start: number, end: number): SparseInput {
  const first = sp.offsets[start]!;
  if (first === 0 && end === sp.offsets.length - 1) return sp;
  const offsets = new Uint32Array(end - start + 1);
  for (let b = 0; b <= end - start; b++) offsets[b] = sp.offsets[start + b]! - first;
  return { offsets, indices: sp.indices.subarray(first, sp.offsets[end]!) };
}

/** Writes each part's scores (batch x outputs) back at its position in the query. */
export function joinScores(parts: { start: number; scores: Float32Array }[], batch: number, outputs: number): Float32Array {
  if (parts.length === 1 && parts[0]!.scores.length === batch * outputs) return parts[0]!.scores;
  const out = new Float32Array(batch * outputs);
  for (const p of parts) out.set(p.scores, p.start * outputs);
  return out;
}
