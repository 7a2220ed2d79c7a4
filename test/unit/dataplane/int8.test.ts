// Row-wise int8 tables: the generator quantises the same values an fp32 model of the seed holds, each element
// within half its row's step; pooling (the SIMD kernel and the JavaScript loop) dequantises each element the same way.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { int8Stride, int8Value, rowBytes, type Manifest } from '../../../contracts/model-format.js';
import { encoder, generateModel } from '../../../models/generate.js';
import { ZOO } from '../../../models/zoo.js';
import { resolveSpec, type ResolvedModel } from '../../../operator/api/v1alpha1/index.js';
import { planModel } from '../../../operator/planner/plan.js';
import { poolInto } from '../../../shard-server/inference/embeddings.js';
import { createArena } from '../../../shard-server/kernels/pool.js';
import { loadTables, modelSource, type EmbeddingTable } from '../../../shard-server/model/load.js';

let dir: string;
const models: Record<'fp32' | 'int8', { manifest: Manifest; tables: Map<string, EmbeddingTable> }> = {} as never;

function model(dtype: 'fp32' | 'int8'): ResolvedModel {
  const r = resolveSpec({ model: structuredClone(ZOO['ncf']!), sharding: { strategy: 'singular' } });
  if (!r.ok) throw new Error('spec');
  return { ...r.spec.model, tableGroups: r.spec.model.tableGroups?.map((g) => ({ ...g, dtype })), tables: r.spec.model.tables?.map((t) => ({ ...t, dtype })) };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'recshard-int8-'));
  for (const dtype of ['fp32', 'int8'] as const) {
    const manifest = generateModel({ name: 'ncf', model: model(dtype), seed: 4, scale: 0.01, outDir: join(dir, dtype) });
    const tables = await loadTables(
      modelSource(join(dir, dtype)),
      manifest,
      manifest.tables.map((t) => t.name),
    );
    models[dtype] = { manifest, tables };
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Row r of an int8 table: its scale, and each element as the kernels dequantise it. */
function int8Row(t: EmbeddingTable, r: number): { scale: number; values: number[] } {
  const { dim } = t.meta;
  const stride = int8Stride(dim);
  const bytes = t.data as Uint8Array;
  const words = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const at = r * (stride + 8);
  const [scale, bias] = [words[(at + stride) / 4]!, words[(at + stride + 4) / 4]!];
  return { scale, values: Array.from({ length: dim }, (_, d) => int8Value(bytes[at + d]!, scale, bias)) };
}

describe('int8 row-wise tables', () => {
  it('a row is its bytes padded to 4, then an fp32 scale and bias: about 3.6x the rows of fp32 at dim 64', () => {
    expect([rowBytes(64, 'int8'), rowBytes(64, 'fp32'), rowBytes(10, 'int8'), rowBytes(10, 'fp16')]).toEqual([72, 256, 20, 20]);
    const t = models.int8.manifest.tables[0]!;
    expect(t.bytes).toBe(t.rows * 72);
    // the planner sizes them so: the same tables at 1/3.56 of the bytes
    const plan = (dtype: 'fp32' | 'int8') => {
      const r = resolveSpec({ model: model(dtype), sharding: { strategy: 'singular' } });
      if (!r.ok) throw new Error('spec');
      const p = planModel(r.spec);
      if (!p.ok) throw p.error;
      return p.plan.totalBytes;
    };
    expect(plan('fp32') / plan('int8')).toBeCloseTo(256 / 72, 6);
  });

  it('every element is within half its row step of the fp32 value (max abs error reported here)', () => {
    let worst = 0;
    for (const t of models.fp32.manifest.tables) {
      const f = models.fp32.tables.get(t.name)!.data as Float32Array;
      const q = models.int8.tables.get(t.name)!;
      for (let r = 0; r < t.rows; r++) {
        const { scale, values } = int8Row(q, r);
        values.forEach((v, d) => {
          const err = Math.abs(v - f[r * t.dim + d]!);
          worst = Math.max(worst, err);
          expect(err).toBeLessThanOrEqual(scale / 2 + 1e-7);
        });
      }
    }
    // tables are uniform in +-sqrt(1/rows): a step is about 2 sqrt(1/rows) / 255
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan((2 * Math.sqrt(1 / 280)) / 255);
  });

  it('the SIMD kernel pools bit-for-bit what the JavaScript loop pools, for any dim (16-, 4- and 1-value blocks)', () => {
    for (const dim of [1, 3, 4, 5, 15, 16, 17, 33, 64, 100]) {
      const rows = 50;
      const values = Float32Array.from({ length: rows * dim }, (_, i) => Math.sin(i * 12.9898) * 0.3);
      const bytes = encoder('int8', dim, values, rows)(rows);
      const meta = { name: 't', rows, dim, dtype: 'int8' as const, net: 'n', poolingFactor: 1, file: '', sha256: '', bytes: bytes.byteLength };
      const js: EmbeddingTable = { index: 0, meta, data: Uint8Array.from(bytes) };
      const arena = createArena(bytes.byteLength, 1, 'int8')!;
      const view = new Uint8Array(arena.memory.buffer, arena.tableOffset, bytes.byteLength);
      view.set(bytes);
      const simd: EmbeddingTable = { index: 0, meta, data: view, arena };
      const offsets = Uint32Array.of(0, 4, 4, 11, 12);
      const indices = Uint32Array.of(0, 49, 7, 7, 1, 2, 3, 4, 5, 6, 48, 30);
      for (const pooling of ['sum', 'mean'] as const) {
        const [a, b] = [new Float32Array(4 * dim).fill(NaN), new Float32Array(4 * dim).fill(NaN)];
        poolInto(js, offsets, indices, 4, pooling, a);
        poolInto(simd, offsets, indices, 4, pooling, b);
        expect(Array.from(new Uint32Array(b.buffer)), `dim ${dim}`).toEqual(Array.from(new Uint32Array(a.buffer)));
      }
    }
  });

  it('pooling sums the dequantised elements in index order (sum and mean), within the summed errors of fp32', () => {
    for (const t of models.int8.manifest.tables) {
      const q = models.int8.tables.get(t.name)!;
      const f = models.fp32.tables.get(t.name)!;
      const offsets = Uint32Array.of(0, 3, 3, 7);
      const indices = Uint32Array.of(1, 5, 1, t.rows - 1, 0, 2, 9);
      for (const pooling of ['sum', 'mean'] as const) {
        const got = new Float32Array(3 * t.dim);
        poolInto(q, offsets, indices, 3, pooling, got);
        const fp = new Float32Array(3 * t.dim);
        poolInto(f, offsets, indices, 3, pooling, fp);
        for (let b = 0; b < 3; b++) {
          const rows = [...indices.subarray(offsets[b]!, offsets[b + 1]!)];
          const inv = pooling === 'mean' && rows.length > 1 ? 1 / rows.length : 1;
          for (let d = 0; d < t.dim; d++) {
            let s = 0;
            for (const r of rows) s = Math.fround(s + int8Row(q, r).values[d]!);
            expect(got[b * t.dim + d]).toBe(Math.fround(s * inv));
            const bound = rows.reduce((e, r) => e + int8Row(q, r).scale / 2, 0) * inv + 1e-6;
            expect(Math.abs(got[b * t.dim + d]! - fp[b * t.dim + d]!)).toBeLessThanOrEqual(bound);
          }
        }
      }
    }
  });
});
