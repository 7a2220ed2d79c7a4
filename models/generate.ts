// `recshard model generate`: writes a model with deterministic random weights. The same shape, seed and scale
// give the same bytes. Tables stream to disk, hashed as they are written; a large one as chunk files.
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import {
  FORMAT,
  bottomWidth,
  int8Stride,
  interactionWidth,
  rowBytes,
  scaledRows,
  type ChunkRef,
  type DType,
  type FileRef,
  type Manifest,
  type TableManifest,
} from '../contracts/model-format.js';
import { toHalf } from '../lib/fp16.js';
import type { ResolvedModel } from '../operator/api/v1alpha1/index.js';
import { expandTables, type PlannedTable } from '../operator/planner/tables.js';
import { mlpToOnnx, type Layer } from './onnx.js';

export interface GenerateOptions {
  name: string;
  model: ResolvedModel;
  seed: number;
  /** Multiplies every table's rows (at least 8 rows remain). */
  scale: number;
  outDir: string;
  /** Tables larger than this are written as chunk files of at most this many bytes (DEFAULT_CHUNK_BYTES). */
  chunkBytes?: number;
  onTable?: (done: number, total: number, name: string) => void;
}

/** A shard holding part of a table reads only the chunks its rows are in: 64 MiB is a few reads over the network. */
export const DEFAULT_CHUNK_BYTES = 64 << 20;

/** A random stream per named object, so one table's bytes do not depend on the others. */
function stream(seed: number, name: string): () => number {
  const h = createHash('sha256').update(`${seed}/${name}`).digest();
  const g = xoroshiro128plus(h.readInt32LE(0) ^ seed);
  return () => g.next() / 2 ** 31; // [-1, 1)
}

function layers(seed: number, prefix: string, widths: number[]): Layer[] {
  const out: Layer[] = [];
  for (let i = 1; i < widths.length; i++) {
    const inputs = widths[i - 1]!;
    const outputs = widths[i]!;
    const limit = Math.sqrt(6 / (inputs + outputs)); // Glorot uniform keeps activations in range
    const r = stream(seed, `${prefix}/${i}`);
    const weights = new Float32Array(inputs * outputs);
    for (let j = 0; j < weights.length; j++) weights[j] = r() * limit;
    const bias = new Float32Array(outputs);
    for (let j = 0; j < outputs; j++) bias[j] = r() * 0.01;
    out.push({ weights, bias, inputs, outputs });
  }
  return out;
}

function writeFile(dir: string, file: string, data: Uint8Array): FileRef {
  writeFileSync(join(dir, file), data);
  return { file, sha256: createHash('sha256').update(data).digest('hex'), bytes: data.byteLength };
}

const BLOCK = 1 << 20;

/**
 * One table's rows (at least 8 after scaling), streamed to disk a block at a time and hashed as they are written:
 * one file, or (a table over chunkBytes) chunk files of whole rows. The values do not depend on the chunking.
 */
function writeTable(o: GenerateOptions, t: PlannedTable): TableManifest {
  const rows = scaledRows(t.rows, o.scale);
  const row = rowBytes(t.dim, t.dtype);
  const r = stream(o.seed, `table/${t.name}`);
  const limit = Math.sqrt(1 / rows);
  const chunkBytes = o.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const chunkRows = rows * row > chunkBytes ? Math.max(1, Math.floor(chunkBytes / row)) : rows;
  const blockRows = Math.max(1, Math.min(rows, Math.floor(BLOCK / t.dim)));
  const values = new Float32Array(blockRows * t.dim);
  const encode = encoder(t.dtype, t.dim, values, blockRows);
  /** The next n rows of the table's stream into `file`. */
  const writeRows = (file: string, n: number): ChunkRef => {
    const fd = openSync(join(o.outDir, file), 'w');
    const hash = createHash('sha256');
    for (let left = n; left > 0;) {
      const k = Math.min(left, blockRows);
      for (let j = 0; j < k * t.dim; j++) values[j] = r() * limit;
      const bytes = encode(k);
      writeSync(fd, bytes);
      hash.update(bytes);
      left -= k;
    }
    closeSync(fd);
    return { file, sha256: hash.digest('hex'), bytes: n * row, rows: n };
  };
  const { name, dim, dtype, net, poolingFactor } = t;
  const head = { name, rows, dim, dtype, net, poolingFactor, bytes: rows * row };
  if (chunkRows >= rows) {
    const { file, sha256 } = writeRows(`tables/${t.name}.bin`, rows);
    return { ...head, file, sha256 };
  }
  mkdirSync(join(o.outDir, 'tables', t.name), { recursive: true });
  const chunks: ChunkRef[] = [];
  for (let start = 0, i = 0; start < rows; start += chunkRows, i++)
    chunks.push(writeRows(`tables/${t.name}/${String(i).padStart(6, '0')}.bin`, Math.min(chunkRows, rows - start)));
  return { ...head, chunks };
}

/**
 * The stored bytes of the first `n` rows of `values`: fp32 as they are, fp16 rounded to nearest, int8 quantised
 * row-wise (scale = (max - min) / 255 and bias = min of the row, q = round((v - bias) / scale)).
 */
export function encoder(dtype: DType, dim: number, values: Float32Array, blockRows: number): (n: number) => Uint8Array {
  if (dtype === 'fp32') return (n) => new Uint8Array(values.buffer, 0, n * dim * 4);
  if (dtype === 'fp16') {
    const half = new Uint16Array(values.length);
    return (n) => {
      for (let j = 0; j < n * dim; j++) half[j] = toHalf(values[j]!);
      return new Uint8Array(half.buffer, 0, n * dim * 2);
    };
  }
  const stride = int8Stride(dim);
  const row = stride + 8;
  const out = new Uint8Array(blockRows * row);
  const words = new Float32Array(out.buffer);
  return (n) => {
    for (let i = 0; i < n; i++) {
      const v = values.subarray(i * dim, (i + 1) * dim);
      let [min, max] = [Infinity, -Infinity];
      for (const x of v) [min, max] = [Math.min(min, x), Math.max(max, x)];
      const scale = Math.fround((max - min) / 255) || 1;
      const bias = Math.fround(min);
      for (let d = 0; d < dim; d++) out[i * row + d] = Math.max(0, Math.min(255, Math.round((v[d]! - bias) / scale)));
      out.fill(0, i * row + dim, i * row + stride);
      words[(i * row + stride) >> 2] = scale;
      words[(i * row + stride + 4) >> 2] = bias;
    }
    return out.subarray(0, n * row);
  };
}

/** The bottom (when the model has one) and top MLPs as ONNX files. */
function writeDense(o: GenerateOptions, topInput: number): Manifest['dense'] {
  const m = o.model;
  return {
    ...(m.bottomMLP.length
      ? { bottom: writeFile(o.outDir, 'dense/bottom.onnx', mlpToOnnx('bottom', layers(o.seed, 'bottom', [m.denseFeatures, ...m.bottomMLP]), 'Relu')) }
      : {}),
    top: writeFile(o.outDir, 'dense/top.onnx', mlpToOnnx('top', layers(o.seed, 'top', [topInput, ...m.topMLP]), 'Sigmoid')),
  };
}

export function generateModel(o: GenerateOptions): Manifest {
  const m = o.model;
  mkdirSync(join(o.outDir, 'dense'), { recursive: true });
  mkdirSync(join(o.outDir, 'tables'), { recursive: true });
  const tables = expandTables(m);
  const bottomOut = bottomWidth(m);
  if (m.interaction === 'dot') {
    const bad = tables.find((t) => t.dim !== bottomOut);
    if (bad) throw new Error(`dot interaction needs every table dim to equal the bottom MLP output (${bottomOut}); table "${bad.name}" has dim ${bad.dim}`);
  }
  const topInput = interactionWidth(
    m.interaction,
    bottomOut,
    tables.map((t) => t.dim),
  );
  const dense = writeDense(o, topInput);
  const out = tables.map((t, i) => {
    o.onTable?.(i, tables.length, t.name);
    return writeTable(o, t);
  });
  o.onTable?.(tables.length, tables.length, '');
  const { architecture, denseFeatures, bottomMLP, topMLP, interaction } = m;
  const manifest: Manifest = {
    format: FORMAT,
    name: o.name,
    architecture,
    seed: o.seed,
    ...(o.scale !== 1 ? { scale: o.scale } : {}),
    denseFeatures,
    bottomMLP,
    topMLP,
    interaction,
    topInput,
    tables: out,
    dense,
  };
  writeFileSync(join(o.outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}
