// The main's binary predict API, the equivalent of the JSON form (sections.ts has the word layout and the table
// section, here without pooling: the request's pooling applies to every table):
//   request : PREDICT_MAGIC, batch, denseFeatures, pooling, f32 dense[batch * denseFeatures], nTables, sections
//   response: PREDICT_MAGIC, batch, outputs, f32 scores[batch * outputs]
import { ErrorCode, fail } from '../errors.js';
import { poolingCode, readSection, sectionWords, words, writeSection, type Pooling, type TableLookup } from './sections.js';

export const PREDICT_MAGIC = 0x31505352; // "RSP1"
export const PREDICT_CONTENT_TYPE = 'application/x-recshard-predict';

export function encodePredict(
  batch: number,
  denseFeatures: number,
  pooling: Pooling,
  dense: Float32Array,
  tables: { table: number; offsets: Uint32Array; indices: Uint32Array }[],
): Uint8Array {
  let n = 5 + dense.length;
  for (const t of tables) n += sectionWords(t, false);
  const buf = new ArrayBuffer(n * 4);
  const u = new Uint32Array(buf);
  new Float32Array(buf).set(dense, 4);
  u.set([PREDICT_MAGIC, batch, denseFeatures, poolingCode(pooling)]);
  let p = 4 + dense.length;
  u[p++] = tables.length;
  for (const t of tables) p = writeSection(u, p, { ...t, pooling }, false);
  return new Uint8Array(buf);
}

export interface PredictHeader {
  batch: number;
  pooling: Pooling;
  /** batch x denseFeatures, a view into the body. */
  dense: Float32Array;
}

/**
 * Decodes a request against what the reader expects (its batch limit and the model's dense width), checking
 * structure in order and handing each table section to `onTable` as it is read, so the reader's checks of a
 * table (is it known, are its indices in range) come before the next table is read.
 */
export function decodePredict(
  body: Uint8Array,
  expect: { maxBatch: number; denseFeatures: number },
  onTable: (t: number, lookup: TableLookup) => void,
): PredictHeader {
  const u = words(body);
  if (u.length < 5 || u[0] !== PREDICT_MAGIC) fail(ErrorCode.InvalidRequest, 'not a recshard predict request (bad magic)');
  const batch = u[1]!;
  if (batch < 1) fail(ErrorCode.InvalidField, 'batch must be at least 1');
  if (batch > expect.maxBatch) fail(ErrorCode.BatchTooLarge, `batch of ${batch} samples exceeds the limit of ${expect.maxBatch}`);
  const features = expect.denseFeatures;
  if (u[2] !== features) fail(ErrorCode.InvalidField, `denseFeatures is ${u[2]}; the model takes ${features}`);
  if (u[3]! > 1) fail(ErrorCode.InvalidField, `pooling must be 0 (sum) or 1 (mean), got ${u[3]}`);
  const pooling: Pooling = u[3] === 1 ? 'mean' : 'sum';
  const nDense = batch * features;
  if (4 + nDense + 1 > u.length) fail(ErrorCode.InvalidRequest, 'truncated in dense features');
  const dense = new Float32Array(u.buffer, u.byteOffset + 16, nDense);
  for (let i = 0; i < nDense; i++)
    if (!Number.isFinite(dense[i]!)) fail(ErrorCode.InvalidField, `dense[${Math.floor(i / features)}][${i % features}] must be a finite number`);
  let p = 4 + nDense;
  const n = u[p++]!;
  for (let t = 0; t < n; t++) {
    const { lookup, next } = readSection(u, p, batch, t, false, pooling);
    p = next;
    onTable(t, lookup);
  }
  if (p !== u.length) fail(ErrorCode.InvalidRequest, `${u.length - p} trailing words`);
  return { batch, pooling, dense };
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
