// Parses and checks a predict request, JSON or binary, against the model: every failure names the field.
import { ErrorCode, fail } from '../../contracts/errors.js';
import type { Manifest } from '../../contracts/model-format.js';
import { decodePredict } from '../../contracts/wire/predict.js';
import type { Pooling } from '../../contracts/wire/sections.js';
import { firstOutOfRange } from './indices.js';

export interface Limits {
  maxBatch: number;
  maxIndicesPerSample: number;
}

export interface SparseInput {
  offsets: Uint32Array;
  indices: Uint32Array;
}

export interface PredictInput {
  batch: number;
  /** batch x denseFeatures */
  dense: Float32Array;
  /** by manifest table index; tables the request does not mention are absent (pooled as zeros) */
  sparse: Map<number, SparseInput>;
  pooling: Pooling;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The samples of the request: the dense rows, or (a model without dense features) the first table's lists. */
function batchOf(dense: unknown, entries: [string, unknown][], m: Manifest, limits: Limits): number {
  let batch: number;
  if (m.denseFeatures > 0 || dense !== undefined) {
    batch = (dense as unknown[]).length; // an array: parsePredict checked it
  } else {
    const first = entries[0]?.[1];
    if (!Array.isArray(first)) fail(ErrorCode.InvalidField, 'sparse must name at least one table when the model has no dense features');
    batch = (first as unknown[]).length;
  }
  if (batch < 1) fail(ErrorCode.InvalidField, 'the request has no samples (dense is empty)');
  if (batch > limits.maxBatch) fail(ErrorCode.BatchTooLarge, `batch of ${batch} samples exceeds the limit of ${limits.maxBatch}`);
  return batch;
}

function parseDense(dense: unknown, batch: number, m: Manifest): Float32Array {
  const x = new Float32Array(batch * m.denseFeatures);
  if (m.denseFeatures === 0 && dense === undefined) return x;
  (dense as unknown[]).forEach((row, i) => {
    if (!Array.isArray(row)) fail(ErrorCode.InvalidField, `dense[${i}] must be an array of ${m.denseFeatures} numbers`);
    if ((row as unknown[]).length !== m.denseFeatures)
      fail(ErrorCode.InvalidField, `dense[${i}] has ${(row as unknown[]).length} values; the model takes ${m.denseFeatures}`);
    (row as unknown[]).forEach((v, j) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(ErrorCode.InvalidField, `dense[${i}][${j}] must be a finite number, got ${JSON.stringify(v)}`);
      x[i * m.denseFeatures + j] = v as number;
    });
  });
  return x;
}

/** One table's per-sample index lists, checked against its rows, as offsets and indices. */
function parseLists(name: string, lists: unknown, batch: number, rows: number, limits: Limits): SparseInput {
  if (!Array.isArray(lists) || lists.length !== batch) fail(ErrorCode.InvalidField, `sparse.${name} must be an array of ${batch} index lists (one per sample)`);
  let total = 0;
  for (const [i, l] of (lists as unknown[]).entries()) {
    if (!Array.isArray(l)) fail(ErrorCode.InvalidField, `sparse.${name}[${i}] must be an array of row indices`);
    if ((l as unknown[]).length > limits.maxIndicesPerSample)
      fail(ErrorCode.InvalidField, `sparse.${name}[${i}] has ${(l as unknown[]).length} indices; the limit is ${limits.maxIndicesPerSample}`);
    total += (l as unknown[]).length;
  }
  const offsets = new Uint32Array(batch + 1);
  const indices = new Uint32Array(total);
  let p = 0;
  (lists as unknown[][]).forEach((l, i) => {
    for (const [k, v] of l.entries()) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
        fail(ErrorCode.InvalidField, `sparse.${name}[${i}][${k}] must be a non-negative integer row index, got ${JSON.stringify(v)}`);
      if ((v as number) >= rows) fail(ErrorCode.IndexOutOfRange, `sparse.${name}[${i}][${k}] = ${v} is out of range: table "${name}" has ${rows} rows`);
      indices[p++] = v as number;
    }
    offsets[i + 1] = p;
  });
  return { offsets, indices };
}

export function parsePredict(body: unknown, m: Manifest, limits: Limits, tableIndex: Map<string, number>): PredictInput {
  if (!isObject(body)) fail(ErrorCode.InvalidField, 'body must be a JSON object with "dense" and "sparse"');
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b))
    if (!['dense', 'sparse', 'pooling'].includes(key)) fail(ErrorCode.InvalidField, `unknown field "${key}" (expected dense, sparse, pooling)`);
  const pooling = b.pooling ?? 'sum';
  if (pooling !== 'sum' && pooling !== 'mean') fail(ErrorCode.InvalidField, `pooling must be "sum" or "mean", got ${JSON.stringify(pooling)}`);
  // a dense of the wrong shape is refused before sparse is read
  if ((m.denseFeatures > 0 || b.dense !== undefined) && !Array.isArray(b.dense))
    fail(ErrorCode.InvalidField, 'dense must be an array with one array of dense features per sample');
  const sparse = b.sparse ?? {};
  if (!isObject(sparse)) fail(ErrorCode.InvalidField, 'sparse must be an object mapping table names to per-sample index lists');
  const entries = Object.entries(sparse as Record<string, unknown>);
  const batch = batchOf(b.dense, entries, m, limits);
  const dense = parseDense(b.dense, batch, m);
  const out = new Map<number, SparseInput>();
  for (const [name, lists] of entries) {
    const t = tableIndex.get(name);
    if (t === undefined) fail(ErrorCode.UnknownTable, `sparse.${name}: the model has no table "${name}"`);
    out.set(t!, parseLists(name, lists, batch, m.tables[t!]!.rows, limits));
  }
  return { batch, dense, sparse: out, pooling: pooling as Pooling };
}

/** The binary predict form (contracts/wire/predict.ts): the same checks as the JSON form, on typed-array views. */
export function parsePredictBinary(body: Uint8Array, m: Manifest, limits: Limits): PredictInput {
  const sparse = new Map<number, SparseInput>();
  const maxPer = limits.maxIndicesPerSample;
  const { batch, dense, pooling } = decodePredict(body, { maxBatch: limits.maxBatch, denseFeatures: m.denseFeatures }, (t, lookup) => {
    const meta = m.tables[lookup.table];
    if (!meta) fail(ErrorCode.UnknownTable, `tables[${t}]: the model has no table index ${lookup.table}`);
    if (sparse.has(lookup.table)) fail(ErrorCode.InvalidField, `tables[${t}]: table index ${lookup.table} appears twice`);
    const { offsets, indices } = lookup;
    for (let b = 0; b + 1 < offsets.length; b++) {
      if (offsets[b + 1]! - offsets[b]! > maxPer) fail(ErrorCode.InvalidField, `tables[${t}] sample ${b} has more than ${maxPer} indices`);
    }
    const k = firstOutOfRange(indices, meta!.rows);
    if (k >= 0) fail(ErrorCode.IndexOutOfRange, `tables[${t}].indices[${k}] = ${indices[k]} is out of range: table "${meta!.name}" has ${meta!.rows} rows`);
    sparse.set(lookup.table, { offsets, indices });
  });
  return { batch, dense, sparse, pooling };
}
