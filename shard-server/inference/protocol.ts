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

/** alloc gives the bytes to encode into (4-byte aligned); default a fresh buffer. */
export function encodeRequest(req: LookupRequest, alloc: (bytes: number) => Uint8Array = (n) => new Uint8Array(n)): Uint8Array {
  let words = 3;
  for (const l of req.lookups) words += 3 + l.offsets.length + l.indices.length;
  const bytes = alloc(words * 4);
  const u = new Uint32Array(bytes.buffer, bytes.byteOffset, words);
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
  return bytes;
}

/** Position of the first index >= rows, or -1: one tight loop, run on every index of every request. */
export function firstOutOfRange(indices: Uint32Array, rows: number): number {
  let max = 0;
  for (let k = 0; k < indices.length; k++) if (indices[k]! > max) max = indices[k]!;
  if (max < rows) return -1;
  for (let k = 0; k < indices.length; k++) if (indices[k]! >= rows) return k;
  return -1;
}

/** Word view of a body, copied only when the bytes are not 4-aligned. */
export function words(body: Uint8Array): Uint32Array {
  if (body.byteLength % 4 !== 0) fail(ErrorCode.InvalidRequest, `body length ${body.byteLength} is not a multiple of 4`);
  if (body.byteOffset % 4 === 0) return new Uint32Array(body.buffer, body.byteOffset, body.byteLength / 4);
  return new Uint32Array(body.slice().buffer);
}

/**
 * One table section at word p: tableIndex, [pooling,] nIndices, offsets[batch + 1], indices[nIndices].
 * Checks the structure; table ranges are checked by whoever holds the tables.
 */
export function readSection(u: Uint32Array, p: number, batch: number, t: number, withPooling: boolean): { lookup: TableLookup; next: number } {
  const head = withPooling ? 3 : 2;
  if (p + head > u.length) fail(ErrorCode.InvalidRequest, `truncated at table ${t}`);
  const table = u[p++]!;
  const mode = withPooling ? u[p++]! : 0;
  const nIdx = u[p++]!;
  if (mode > 1) fail(ErrorCode.InvalidField, `tables[${t}].pooling must be 0 (sum) or 1 (mean), got ${mode}`);
  if (p + batch + 1 + nIdx > u.length) fail(ErrorCode.InvalidRequest, `truncated in table ${t}`);
  const offsets = u.subarray(p, p + batch + 1);
  p += batch + 1;
  const indices = u.subarray(p, p + nIdx);
  p += nIdx;
  if (offsets[0] !== 0 || offsets[batch] !== nIdx) fail(ErrorCode.InvalidField, `tables[${t}].offsets must start at 0 and end at ${nIdx}`);
  for (let b = 0; b < batch; b++) if (offsets[b + 1]! < offsets[b]!) fail(ErrorCode.InvalidField, `tables[${t}].offsets must not decrease (sample ${b})`);
  return { lookup: { table, pooling: mode === 1 ? 'mean' : 'sum', offsets, indices }, next: p };
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
    const section = readSection(u, p, batch, t, true);
    lookups.push(section.lookup);
    p = section.next;
  }
  if (p !== u.length) fail(ErrorCode.InvalidRequest, `${u.length - p} trailing words`);
  return { batch, lookups };
}

// The main's binary predict API, the equivalent of the JSON form:
//   request : PREDICT_MAGIC, batch, denseFeatures, pooling, f32 dense[batch * denseFeatures], nTables,
//             then per table: tableIndex, nIndices, offsets[batch + 1], indices[nIndices]
//   response: PREDICT_MAGIC, batch, outputs, f32 scores[batch * outputs]
export const PREDICT_MAGIC = 0x31505352; // "RSP1"
export const PREDICT_CONTENT_TYPE = 'application/x-recshard-predict';

export function encodePredict(batch: number, denseFeatures: number, pooling: Pooling, dense: Float32Array, tables: { table: number; offsets: Uint32Array; indices: Uint32Array }[]): Uint8Array {
  let n = 5 + dense.length;
  for (const t of tables) n += 2 + t.offsets.length + t.indices.length;
  const buf = new ArrayBuffer(n * 4);
  const u = new Uint32Array(buf);
  new Float32Array(buf).set(dense, 4);
  u.set([PREDICT_MAGIC, batch, denseFeatures, pooling === 'mean' ? 1 : 0]);
  let p = 4 + dense.length;
  u[p++] = tables.length;
  for (const t of tables) {
    u[p++] = t.table;
    u[p++] = t.indices.length;
    u.set(t.offsets, p);
    p += t.offsets.length;
    u.set(t.indices, p);
    p += t.indices.length;
  }
  return new Uint8Array(buf);
}

export function encodeScores(batch: number, outputs: number, scores: Float32Array): Uint8Array {
  const buf = new ArrayBuffer((3 + scores.length) * 4);
  new Uint32Array(buf).set([PREDICT_MAGIC, batch, outputs]);
  new Float32Array(buf).set(scores, 3);
  return new Uint8Array(buf);
}

export function decodeScores(body: Uint8Array): { batch: number; outputs: number; scores: Float32Array } {
  const u = words(body);
  if (u[0] !== PREDICT_MAGIC) throw new Error('bad predict response');
  return { batch: u[1]!, outputs: u[2]!, scores: new Float32Array(u.buffer, u.byteOffset + 12, u[1]! * u[2]!) };
}

export interface LookupResult {
  table: number;
  dim: number;
  values: Float32Array;
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
