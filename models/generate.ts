// `recshard model generate`: writes a model with deterministic random weights. The same shape, seed and scale
// give the same bytes. Tables stream to disk in chunks, hashed as they are written.
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { FORMAT, bottomWidth, scaledRows, interactionWidth, type FileRef, type Manifest, type TableManifest } from '../contracts/model-format.js';
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
  onTable?: (done: number, total: number, name: string) => void;
}

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

const CHUNK = 1 << 20;

/** One table's rows (at least 8 after scaling), streamed to disk in chunks and hashed as they are written. */
function writeTable(o: GenerateOptions, t: PlannedTable): TableManifest {
  const rows = scaledRows(t.rows, o.scale);
  const file = `tables/${t.name}.bin`;
  const fd = openSync(join(o.outDir, file), 'w');
  const hash = createHash('sha256');
  const r = stream(o.seed, `table/${t.name}`);
  const limit = Math.sqrt(1 / rows);
  let left = rows * t.dim;
  const f32 = new Float32Array(Math.min(CHUNK, left));
  const f16 = t.dtype === 'fp16' ? new Uint16Array(f32.length) : undefined;
  while (left > 0) {
    const n = Math.min(left, f32.length);
    for (let j = 0; j < n; j++) f32[j] = r() * limit;
    if (f16) for (let j = 0; j < n; j++) f16[j] = toHalf(f32[j]!);
    const bytes = f16 ? new Uint8Array(f16.buffer, 0, n * 2) : new Uint8Array(f32.buffer, 0, n * 4);
    writeSync(fd, bytes);
    hash.update(bytes);
    left -= n;
  }
  closeSync(fd);
  const { name, dim, dtype, net, poolingFactor } = t;
  return { name, rows, dim, dtype, net, poolingFactor, file, sha256: hash.digest('hex'), bytes: rows * dim * (dtype === 'fp16' ? 2 : 4) };
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
