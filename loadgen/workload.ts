// DeepRecInfra queries for one model: a query of N candidate items is one predict request of N samples, with
// each table's pooling factor of lookups per sample, rows drawn uniformly or Zipf-skewed. Bodies are built in
// the binary predict form ahead of time, so the client spends its time sending, not building.
import type { ModelInfo } from '../contracts/model-info.js';
import { encodePredict } from '../contracts/wire/predict.js';
import { sizeSampler, uniform, zipfSampler, type SizeSpec } from './distributions.js';

export interface WorkloadOptions {
  sizes: SizeSpec;
  /** 0 for uniform rows, else the Zipf exponent. */
  zipf: number;
  seed: number;
  /** Distinct bodies generated and then cycled. */
  pool: number;
}

export interface Query {
  size: number;
  body: Uint8Array;
}

/** Queries for the model a main describes at GET /v1/models/NAME (only its dense width and tables matter). */
export function buildQueries(model: Pick<ModelInfo, 'denseFeatures' | 'tables'>, o: WorkloadOptions): Query[] {
  const nextSize = sizeSampler(o.sizes, o.seed);
  const u = uniform(o.seed + 1);
  const rows = model.tables.map((t) => zipfSampler(t.rows, o.zipf, u));
  const out: Query[] = [];
  for (let q = 0; q < o.pool; q++) {
    const batch = nextSize();
    const dense = new Float32Array(batch * model.denseFeatures);
    for (let i = 0; i < dense.length; i++) dense[i] = u() * 2 - 1;
    const tables = model.tables.map((t, ti) => {
      const offsets = new Uint32Array(batch + 1);
      const whole = Math.floor(t.poolingFactor);
      const frac = t.poolingFactor - whole;
      const counts: number[] = [];
      for (let b = 0; b < batch; b++) {
        const c = whole + (u() < frac ? 1 : 0);
        counts.push(c);
        offsets[b + 1] = offsets[b]! + c;
      }
      const indices = new Uint32Array(offsets[batch]!);
      for (let k = 0; k < indices.length; k++) indices[k] = rows[ti]!();
      return { table: ti, offsets, indices };
    });
    out.push({ size: batch, body: encodePredict(batch, model.denseFeatures, 'sum', dense, tables) });
  }
  return out;
}
