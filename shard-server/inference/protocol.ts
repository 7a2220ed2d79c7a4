// The binary protocol between the main and a sparse shard (little-endian u32 words, so every section is a
// typed-array view with no copy):
//   request : MAGIC, batch, nTables, then per table: tableIndex, pooling (0 sum, 1 mean), nIndices,
//             offsets[batch + 1], indices[nIndices]
//   response: MAGIC, nTables, then per table: tableIndex, dim, values f32[batch * dim]
import { ErrorCode, fail } from '../http/errors.js';
import type { Pooling } from './embeddings.js';

export const MAGIC = 0x31534552; // "RES1"
export const CONTENT_TYPE = 'application/x-recshard-lookup';

export interface TableLookup {
  table: number;
  pooling: Pooling;
  offsets: Uint32Array;
  indices: Uint32Array;
}

export interface LookupRequest {
  batch: number;
  lookups: TableLookup[];
}

export function encodeRequest(req: LookupRequest): Uint8Array {
  let words = 3;
  for (const l of req.lookups) words += 3 + l.offsets.length + l.indices.length;
  const u = new Uint32Array(words);
  let p = 0;
  u[p++] = MAGIC;
  u[p++] = req.batch;
  u[p++] = req.lookups.length;
  for (const l of req.lookups) {
    u[p++] = l.table;
    u[p++] = l.pooling === 'mean' ? 1 : 0;
    u[p++] = l.indices.length;
    u.set(l.offsets, p);
    p += l.offsets.length;
    u.set(l.indices, p);
    p += l.indices.length;
  }
  return new Uint8Array(u.buffer);
}

/** Word view of a body, copied only when the bytes are not 4-aligned. */
function words(body: Uint8Array): Uint32Array {
  if (body.byteLength % 4 !== 0) fail(ErrorCode.InvalidRequest, `body length ${body.byteLength} is not a multiple of 4`);
  if (body.byteOffset % 4 === 0) return new Uint32Array(body.buffer, body.byteOffset, body.byteLength / 4);
  return new Uint32Array(body.slice().buffer);
}

/** Decodes and checks structure (not table ranges: the server checks those against its tables). */
export function decodeRequest(body: Uint8Array, maxBatch: number): LookupRequest {
  const u = words(body);
  if (u.length < 3 || u[0] !== MAGIC) fail(ErrorCode.InvalidRequest, 'not a recshard lookup request (bad magic)');
  const batch = u[1]!;
  const n = u[2]!;
  if (batch < 1 || batch > maxBatch) fail(ErrorCode.BatchTooLarge, `batch ${batch} is outside 1..${maxBatch}`);
  let p = 3;
  const lookups: TableLookup[] = [];
  for (let t = 0; t < n; t++) {
    if (p + 3 > u.length) fail(ErrorCode.InvalidRequest, `truncated at table ${t}`);
    const table = u[p++]!;
    const mode = u[p++]!;
    const nIdx = u[p++]!;
    if (mode > 1) fail(ErrorCode.InvalidField, `tables[${t}].pooling must be 0 (sum) or 1 (mean), got ${mode}`);
    if (p + batch + 1 + nIdx > u.length) fail(ErrorCode.InvalidRequest, `truncated in table ${t}`);
    const offsets = u.subarray(p, p + batch + 1);
    p += batch + 1;
    const indices = u.subarray(p, p + nIdx);
    p += nIdx;
    if (offsets[0] !== 0 || offsets[batch] !== nIdx) fail(ErrorCode.InvalidField, `tables[${t}].offsets must start at 0 and end at ${nIdx}`);
    for (let b = 0; b < batch; b++) if (offsets[b + 1]! < offsets[b]!) fail(ErrorCode.InvalidField, `tables[${t}].offsets must not decrease (sample ${b})`);
    lookups.push({ table, pooling: mode === 1 ? 'mean' : 'sum', offsets, indices });
  }
  if (p !== u.length) fail(ErrorCode.InvalidRequest, `${u.length - p} trailing words`);
  return { batch, lookups };
}

export interface LookupResult {
  table: number;
  dim: number;
  values: Float32Array;
}

export function encodeResponse(results: LookupResult[]): Uint8Array {
  let words = 2;
  for (const r of results) words += 2 + r.values.length;
  const buf = new ArrayBuffer(words * 4);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  let p = 0;
  u[p++] = MAGIC;
  u[p++] = results.length;
  for (const r of results) {
    u[p++] = r.table;
    u[p++] = r.dim;
    f.set(r.values, p);
    p += r.values.length;
  }
  return new Uint8Array(buf);
}

export function decodeResponse(body: Uint8Array, batch: number): LookupResult[] {
  const u = words(body);
  const f = new Float32Array(u.buffer, u.byteOffset, u.length);
  if (u[0] !== MAGIC) throw new Error('bad lookup response');
  const n = u[1]!;
  let p = 2;
  const out: LookupResult[] = [];
  for (let t = 0; t < n; t++) {
    const table = u[p++]!;
    const dim = u[p++]!;
    out.push({ table, dim, values: f.subarray(p, p + batch * dim) });
    p += batch * dim;
  }
  return out;
}
