// The on-disk model format (docs/model-format.md): manifest.json, dense/bottom.onnx and dense/top.onnx, and per
// embedding table one little-endian binary file (rows, row-major: fp32, fp16 or row-wise int8) or, for a large table, its
// rows in consecutive chunk files; every file with its sha256.
export const FORMAT = 'recshard-model/v1';

export type DType = 'fp32' | 'fp16' | 'int8';
export type Interaction = 'dot' | 'concat';

export interface FileRef {
  file: string;
  sha256: string;
  bytes: number;
}

/** One file of a table stored in chunks: `rows` consecutive rows, in table order. */
export interface ChunkRef extends FileRef {
  rows: number;
}

/**
 * A table's rows are one file (`file` and `sha256`), or consecutive chunk files (`chunks`, written for large
 * tables), so that a server holding some of the rows reads and checks only the chunks that have them.
 */
export interface TableManifest {
  name: string;
  rows: number;
  dim: number;
  dtype: DType;
  net: string;
  poolingFactor: number;
  /** rows x dim x element size. */
  bytes: number;
  file?: string;
  sha256?: string;
  chunks?: ChunkRef[];
}

export interface Manifest {
  format: typeof FORMAT;
  name: string;
  architecture: string;
  seed: number;
  /** Written by `recshard model generate` below 1: the tables hold scaledRows(rows, scale) of the spec's rows. */
  scale?: number;
  denseFeatures: number;
  bottomMLP: number[];
  topMLP: number[];
  interaction: Interaction;
  /** Width of the feature vector entering the top MLP. */
  topInput: number;
  tables: TableManifest[];
  dense: { bottom?: FileRef; top: FileRef };
}

/**
 * Bytes of one row. fp32 and fp16 rows are dim values. An int8 row is quantised row-wise, as FBGEMM's fused 8-bit
 * rows are: dim unsigned bytes q (padded with zeros to a multiple of 4), then the row's fp32 scale and fp32 bias;
 * element d is fround(fround(q[d] * scale) + bias), two fp32 operations, the same in every kernel.
 */
export function rowBytes(dim: number, dtype: DType): number {
  return dtype === 'int8' ? int8Stride(dim) + 8 : dim * (dtype === 'fp16' ? 2 : 4);
}

/** Where an int8 row's scale starts (its bias follows): dim rounded up to a multiple of 4. */
export const int8Stride = (dim: number) => Math.ceil(dim / 4) * 4;

/** Element value of an int8 row: q x scale, then + bias, each an fp32 operation (what the SIMD kernel computes too). */
export const int8Value = (q: number, scale: number, bias: number) => Math.fround(Math.fround(q * scale) + bias);

/** The rows a generated table of `rows` has at `scale` (tests and demos serve scaled-down models). */
export const scaledRows = (rows: number, scale = 1) => (scale === 1 ? rows : Math.max(8, Math.round(rows * scale)));

/** Width of the bottom MLP's output (the dense features themselves when there is no bottom MLP). */
export function bottomWidth(m: Pick<Manifest, 'bottomMLP' | 'denseFeatures'>): number {
  return m.bottomMLP.length ? m.bottomMLP[m.bottomMLP.length - 1]! : m.denseFeatures;
}

/** Scores per sample: the top MLP's last width. */
export function outputWidth(m: Pick<Manifest, 'topMLP'>): number {
  return m.topMLP[m.topMLP.length - 1]!;
}

/** Width after the feature interaction, given the bottom output and the table dims. */
export function interactionWidth(interaction: Interaction, bottomOut: number, dims: number[]): number {
  if (interaction === 'concat') return bottomOut + dims.reduce((a, b) => a + b, 0);
  const n = dims.length + (bottomOut > 0 ? 1 : 0);
  return bottomOut + (n * (n - 1)) / 2;
}

/** The one input and one output of each dense network's ONNX graph (batch x width, float32). */
export const ONNX_INPUT = 'x';
export const ONNX_OUTPUT = 'y';
