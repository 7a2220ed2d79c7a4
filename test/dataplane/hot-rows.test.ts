// The main's hot-row cache on real processes: DLRM-RMC2 load-balanced over 4 shards under Zipf 1.05 traffic. Once
// the cache has filled from that traffic, the shards pool a fraction of the lookups, the main the rest, and the
// scores stay those of the model served monolithic (within fp32 rounding).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveLocal, type LocalDeployment } from '../../cli/local.js';
import type { Manifest } from '../../contracts/model-format.js';
import { decodeScores, PREDICT_CONTENT_TYPE } from '../../contracts/wire/predict.js';
import { parseSizeSpec } from '../../loadgen/distributions.js';
import { buildQueries, type Query } from '../../loadgen/workload.js';
import { generateModel } from '../../models/generate.js';
import { resolveSpec } from '../../operator/api/v1alpha1/index.js';
import { zooRecModel } from './helpers.js';

const SCALE = 0.001; // 500 rows a table
let dir: string;
let manifest: Manifest;
let queries: Query[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'recshard-hot-'));
  const r = resolveSpec(zooRecModel('dlrm-rmc2', 'rmc2', { strategy: 'monolithic' }).spec);
  if (!r.ok) throw new Error('spec');
  manifest = generateModel({ name: 'rmc2', model: r.spec.model, seed: 3, scale: SCALE, outDir: dir });
  queries = buildQueries(manifest, { sizes: parseSizeSpec('fixed:16', () => ''), zipf: 1.05, seed: 9, pool: 40 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function scores(d: LocalDeployment, qs: Query[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const q of qs) {
    const res = await fetch(d.predictUrl, { method: 'POST', headers: { 'content-type': PREDICT_CONTENT_TYPE }, body: q.body as unknown as BodyInit });
    expect(res.status).toBe(200);
    out.push(Float32Array.from(decodeScores(new Uint8Array(await res.arrayBuffer())).scores));
  }
  return out;
}

const metric = async (port: number, name: string) =>
  [...(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))].map(
    (m) => [m[1] ?? '', Number(m[2])] as const,
  );

describe('the hot-row cache', () => {
  it('under Zipf traffic the main pools the hot rows itself: the shards see a fraction of the lookups, the scores stay monolithic', async () => {
    const mono = await serveLocal(zooRecModel('dlrm-rmc2', 'rmc2', { strategy: 'monolithic' }), { modelDir: dir, scale: SCALE, seed: 3 });
    let reference: Float32Array[];
    try {
      reference = await scores(mono, queries);
    } finally {
      await mono.stop();
    }
    const rm = zooRecModel('dlrm-rmc2', 'rmc2', { strategy: 'load-balanced', shards: 4 });
    rm.spec.serving = { hotRowCache: '1Mi' }; // a quarter of the rows
    const d = await serveLocal(rm, { modelDir: dir, scale: SCALE, seed: 3, hotRowRefreshMs: 200 });
    try {
      const main = d.processes.find((p) => p.name === 'main')!.port;
      const shards = d.processes.filter((p) => p.name.startsWith('shard-')).map((p) => p.port);
      // before the cache fills, every lookup goes to a shard
      await scores(d, queries);
      await new Promise((r) => setTimeout(r, 600));
      const bytes = (await metric(main, 'recshard_hot_row_cache_bytes'))[0]![1];
      expect(bytes).toBeGreaterThan(0);
      expect(bytes).toBeLessThanOrEqual(1 << 20);
      const served = async () => (await Promise.all(shards.map((p) => metric(p, 'recshard_lookups_total')))).flat().reduce((n, [, v]) => n + v, 0);
      const before = await served();
      const got = await scores(d, queries);
      const byShards = (await served()) - before;
      const all = queries.reduce((n, q) => n + (q.body.byteLength / 4 - 5 - 16 * manifest.denseFeatures - manifest.tables.length * (2 + 17)), 0);
      // most of the lookups never reach a shard (Zipf 1.05 over 500 rows: a quarter of them take most lookups)
      expect(byShards / all).toBeLessThan(0.5);
      const hits = await metric(main, 'recshard_hot_row_lookups_total');
      expect(hits.find(([l]) => l.includes('result="hit"'))![1]).toBeGreaterThan(0);
      got.forEach((s, i) => s.forEach((v, j) => expect(Math.abs(v - reference[i]![j]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(v)))));
    } finally {
      await d.stop();
    }
  });
});
