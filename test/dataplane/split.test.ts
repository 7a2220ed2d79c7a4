// A model whose largest table is four times a shard's memory, served by real shard-server processes on loopback
// (`serve --local`, rows scaled): the planner splits it by rows, each shard loads only its piece, and the scores
// are bit-for-bit those of the unsplit model, in load-balanced and net-specific, with sum and mean pooling.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveLocal } from '../../cli/local.js';
import type { Manifest } from '../../contracts/model-format.js';
import { generateModel } from '../../models/generate.js';
import { resolveSpec, type RecModel, type RecModelSpec } from '../../operator/api/v1alpha1/index.js';
import { predict, randomRequest } from './helpers.js';

const SCALE = 0.001;
// big: 4,000,000 x 16 fp32 = 256 MB, four times a 64Mi shard (so 4 pieces); big16: the same rows in fp16 (2 pieces)
const model: RecModelSpec['model'] = {
  architecture: 'custom',
  denseFeatures: 8,
  bottomMLP: [16],
  topMLP: [16, 1],
  interaction: 'dot',
  nets: ['user', 'item'],
  tables: [
    { name: 'big', rows: 4_000_000, dim: 16, poolingFactor: 20, net: 'user' },
    { name: 'big16', rows: 4_000_000, dim: 16, dtype: 'fp16', poolingFactor: 8, net: 'item' },
    { name: 'a', rows: 20_000, dim: 16, poolingFactor: 4, net: 'user' },
    { name: 'b', rows: 50_000, dim: 16, poolingFactor: 2, net: 'item' },
  ],
};

const recModel = (sharding: RecModelSpec['sharding']): RecModel => ({
  apiVersion: 'recshard.io/v1alpha1',
  kind: 'RecModel',
  metadata: { name: 'split' },
  spec: { model: structuredClone(model), sharding },
});

let dir: string;
let manifest: Manifest;
let requests: ReturnType<typeof randomRequest>[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'recshard-split-'));
  const r = resolveSpec(recModel({ strategy: 'monolithic', shardMemory: '1Gi' }).spec);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  manifest = generateModel({ name: 'split', model: r.spec.model, seed: 11, scale: SCALE, outDir: dir, chunkBytes: 16 << 10 });
  requests = [1, 2, 3].map((i) => randomRequest(manifest, 4 + i * 5, i));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function served(sharding: RecModelSpec['sharding'], pooling: 'sum' | 'mean') {
  const d = await serveLocal(recModel(sharding), { modelDir: dir, scale: SCALE, seed: 11 });
  try {
    const scores: number[][][] = [];
    for (const r of requests) {
      const { status, json } = await predict(d.predictUrl, { ...r, pooling });
      expect(status, JSON.stringify(json)).toBe(200);
      scores.push(json.scores);
    }
    const resident: Record<string, number> = {};
    for (const p of d.processes) {
      const text = await (await fetch(`http://127.0.0.1:${p.port}/metrics`)).text();
      resident[p.name] = Number(/^recshard_table_resident_bytes\{[^}]*\} (\d+)$/m.exec(text)?.[1]);
    }
    return { scores, plan: d.plan, resident };
  } finally {
    await d.stop();
  }
}

describe('a table four times a shard, split by rows', () => {
  it.each(['sum', 'mean'] as const)('load-balanced and net-specific score bit-for-bit like the unsplit model (%s pooling)', async (pooling) => {
    const reference = await served({ strategy: 'monolithic', shardMemory: '1Gi' }, pooling);
    const flat = reference.scores.flat(2);
    expect(Math.max(...flat) - Math.min(...flat)).toBeGreaterThan(1e-4);
    for (const sharding of [
      { strategy: 'load-balanced', shardMemory: '64Mi', headroom: 0 },
      { strategy: 'net-specific', shardMemory: '64Mi', headroom: 0 },
    ] as const) {
      const got = await served(sharding, pooling);
      const pieces = got.plan.shards.flatMap((s) => (s.pieces ?? []).map((p) => `${p.table}[${p.piece}/${p.pieces}]`)).sort();
      expect(pieces).toEqual(['big16[0/2]', 'big16[1/2]', 'big[0/4]', 'big[1/4]', 'big[2/4]', 'big[3/4]']);
      expect(got.scores).toEqual(reference.scores);
      // each shard holds its piece's rows of the scaled artifact (4,000 rows a table): 1,000 rows of big, 2,000 of big16
      for (const s of got.plan.shards) {
        const whole = s.tables.reduce((n, t) => n + manifest.tables.find((m) => m.name === t)!.bytes, 0);
        const rows = (s.pieces ?? []).reduce((n, p) => n + (p.table === 'big' ? 1000 * 16 * 4 : 2000 * 16 * 2), 0);
        expect(got.resident[`shard-${s.index}`], s.name).toBe(whole + rows);
      }
    }
  });
});
