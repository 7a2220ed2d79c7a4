// What the two binary formats (lookup.ts, predict.ts) share: little-endian u32 words, so every section is a
// typed-array view with no copy, and the per-table section of row indices:
//   tableIndex, [pooling (0 sum, 1 mean, 2 rows),] nIndices, offsets[batch + 1], indices[nIndices]
// Decoders check structure only; whoever holds the tables checks indices against them.
import { ErrorCode, fail } from '../errors.js';

export type Pooling = 'sum' | 'mean';

/**
 * What a shard answers for one table of a lookup: each sample's rows pooled, or (`rows`, asked of the piece of a
 * split table, whose pooling the main does) each row the indices name, in order.
 */
export type LookupMode = Pooling | 'rows';

/** One table's row indices for a batch: sample b reads indices[offsets[b] .. offsets[b + 1]). */
export interface TableLookup {
  table: number;
  pooling: LookupMode;
  offsets: Uint32Array;
  indices: Uint32Array;
}

export const poolingCode = (p: LookupMode) => (p === 'rows' ? 2 : p === 'mean' ? 1 : 0);
const MODES: LookupMode[] = ['sum', 'mean', 'rows'];

/** Word view of a body, copied only when the bytes are not 4-aligned. */
export function words(body: Uint8Array): Uint32Array {
  if (body.byteLength % 4 !== 0) fail(ErrorCode.InvalidRequest, `body length ${body.byteLength} is not a multiple of 4`);
  if (body.byteOffset % 4 === 0) return new Uint32Array(body.buffer, body.byteOffset, body.byteLength / 4);
  return new Uint32Array(body.slice().buffer);
}

/** Words one section takes. */
export const sectionWords = (l: Pick<TableLookup, 'offsets' | 'indices'>, withPooling: boolean) => (withPooling ? 3 : 2) + l.offsets.length + l.indices.length;

/** Writes one section at word p; returns the word after it. */
export function writeSection(u: Uint32Array, p: number, l: TableLookup, withPooling: boolean): number {
  u[p++] = l.table;
  if (withPooling) u[p++] = poolingCode(l.pooling);
  u[p++] = l.indices.length;
  u.set(l.offsets, p);
  p += l.offsets.length;
  u.set(l.indices, p);
  return p + l.indices.length;
}

/** Reads and checks the structure of the section of table t at word p; a section without pooling takes `pooling`. */
export function readSection(
  u: Uint32Array,
  p: number,
  batch: number,
  t: number,
  withPooling: boolean,
  pooling: Pooling = 'sum',
): { lookup: TableLookup; next: number } {
  const head = withPooling ? 3 : 2;
  if (p + head > u.length) fail(ErrorCode.InvalidRequest, `truncated at table ${t}`);
  const table = u[p++]!;
  const mode = withPooling ? u[p++]! : 0;
  const nIdx = u[p++]!;
  if (mode > 2) fail(ErrorCode.InvalidField, `tables[${t}].pooling must be 0 (sum), 1 (mean) or 2 (rows), got ${mode}`);
  if (p + batch + 1 + nIdx > u.length) fail(ErrorCode.InvalidRequest, `truncated in table ${t}`);
  const offsets = u.subarray(p, p + batch + 1);
  p += batch + 1;
  const indices = u.subarray(p, p + nIdx);
  p += nIdx;
  if (offsets[0] !== 0 || offsets[batch] !== nIdx) fail(ErrorCode.InvalidField, `tables[${t}].offsets must start at 0 and end at ${nIdx}`);
  for (let b = 0; b < batch; b++) if (offsets[b + 1]! < offsets[b]!) fail(ErrorCode.InvalidField, `tables[${t}].offsets must not decrease (sample ${b})`);
  return { lookup: { table, pooling: withPooling ? MODES[mode]! : pooling, offsets, indices }, next: p };
}
