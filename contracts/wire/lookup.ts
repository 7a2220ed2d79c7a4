// The binary protocol between the main and a sparse shard (sections.ts has the word layout and the table section):
//   request : LOOKUP_MAGIC, planVersion, artifactVersion, batch, nTables, then per table a section with pooling
//   response: LOOKUP_MAGIC, nTables, then per table: tableIndex, dim, values f32[batch * dim] (pooled), or for a
//             table asked for its rows (pooling 2, a piece of a split table): f32[nIndices * dim], row k for index k
// Every lookup names the serving version it was planned for (the plan and the model artifact, versions.ts); a shard
// of another version refuses it (VERSION_MISMATCH) rather than answer with rows of other tables or other weights.
import { ErrorCode, fail } from '../errors.js';
import { readSection, sectionWords, words, writeSection, type TableLookup } from './sections.js';
import type { LookupVersion } from './versions.js';

export const LOOKUP_MAGIC = 0x32534552; // "RES2" (RES1 had no versions)
export const LOOKUP_CONTENT_TYPE = 'application/x-recshard-lookup';
const HEADER_WORDS = 5;

export interface LookupRequest {
  version: LookupVersion;
  batch: number;
  lookups: TableLookup[];
}

/** alloc gives the bytes to encode into (4-byte aligned); default a fresh buffer. */
export function encodeRequest(req: LookupRequest, alloc: (bytes: number) => Uint8Array = (n) => new Uint8Array(n)): Uint8Array {
  let n = HEADER_WORDS;
  for (const l of req.lookups) n += sectionWords(l, true);
  const bytes = alloc(n * 4);
  const u = new Uint32Array(bytes.buffer, bytes.byteOffset, n);
  u[0] = LOOKUP_MAGIC;
  u[1] = req.version.plan;
  u[2] = req.version.artifact;
  u[3] = req.batch;
  u[4] = req.lookups.length;
  let p = HEADER_WORDS;
  for (const l of req.lookups) p = writeSection(u, p, l, true);
  return bytes;
}

/** Decodes and checks structure (not table ranges: the server checks those against its tables). */
export function decodeRequest(body: Uint8Array, maxBatch: number): LookupRequest {
  const u = words(body);
  if (u.length < HEADER_WORDS || u[0] !== LOOKUP_MAGIC) fail(ErrorCode.InvalidRequest, 'not a recshard lookup request (bad magic)');
  const version = { plan: u[1]!, artifact: u[2]! };
  const batch = u[3]!;
  const n = u[4]!;
  if (batch < 1 || batch > maxBatch) fail(ErrorCode.BatchTooLarge, `batch ${batch} is outside 1..${maxBatch}`);
  let p = HEADER_WORDS;
  const lookups: TableLookup[] = [];
  for (let t = 0; t < n; t++) {
    const section = readSection(u, p, batch, t, true);
    lookups.push(section.lookup);
    p = section.next;
  }
  if (p !== u.length) fail(ErrorCode.InvalidRequest, `${u.length - p} trailing words`);
  return { version, batch, lookups };
}

export interface LookupResult {
  table: number;
  dim: number;
  values: Float32Array;
}

/** Vectors a shard answers for one table of a lookup: one per sample, or one per index (rows). */
export const answerVectors = (l: Pick<TableLookup, 'pooling' | 'indices'>, batch: number) => (l.pooling === 'rows' ? l.indices.length : batch);

/**
 * Encodes a response straight into one buffer: `fill(i, out, offset)` writes table i's vectors (`vectors` of them,
 * `dim` wide) into `out` at float offset `offset` (so a shard pools into the response with no copy).
 */
export function encodeResponse(
  tables: { table: number; dim: number; vectors: number }[],
  fill: (i: number, out: Float32Array, offset: number) => void,
  alloc: (bytes: number) => Uint8Array = (n) => new Uint8Array(n),
): Uint8Array {
  let n = 2;
  for (const t of tables) n += 2 + t.vectors * t.dim;
  const response = alloc(n * 4);
  const u = new Uint32Array(response.buffer, response.byteOffset, n);
  const f = new Float32Array(response.buffer, response.byteOffset, n);
  u[0] = LOOKUP_MAGIC;
  u[1] = tables.length;
  let p = 2;
  tables.forEach((t, i) => {
    u[p++] = t.table;
    u[p++] = t.dim;
    fill(i, f, p);
    p += t.vectors * t.dim;
  });
  return response;
}

/** The answer to `req`: per table asked, in order, its vectors (answerVectors of them). */
export function decodeResponse(body: Uint8Array, req: Pick<LookupRequest, 'batch' | 'lookups'>): LookupResult[] {
  const u = words(body);
  const f = new Float32Array(u.buffer, u.byteOffset, u.length);
  if (u[0] !== LOOKUP_MAGIC) throw new Error('bad lookup response');
  const n = u[1]!;
  if (n !== req.lookups.length) throw new Error(`lookup response has ${n} tables for ${req.lookups.length} asked`);
  let p = 2;
  const out: LookupResult[] = [];
  for (let t = 0; t < n; t++) {
    const table = u[p++]!;
    const dim = u[p++]!;
    const size = answerVectors(req.lookups[t]!, req.batch) * dim;
    if (table !== req.lookups[t]!.table || p + size > u.length) throw new Error(`lookup response table ${t} is not the one asked or is truncated`);
    out.push({ table, dim, values: f.subarray(p, p + size) });
    p += size;
  }
  return out;
}
