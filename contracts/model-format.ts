// The on-disk model format (docs/model-format.md): manifest.json, dense/bottom.onnx and dense/top.onnx, and one
// little-endian binary file per embedding table (rows x dim, row-major, fp32 or fp16), each with a sha256.
export const FORMAT = 'recshard-model/v1';

export type DType = 'fp32' | 'fp16';
export type Interaction = 'dot' | 'concat';

export interface FileRef {
  file: string;
  sha256: string;
  bytes: number;
}

export interface TableManifest extends FileRef {
  name: string;
  rows: number;
  dim: number;
  dtype: DType;
  net: string;
  poolingFactor: number;
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

export const BYTES: Record<DType, number> = { fp32: 4, fp16: 2 };

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
