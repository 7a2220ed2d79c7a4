// For every generated architecture and every strategy, real shard-server processes on loopback give the same
// scores as the monolithic deployment of the same model, on the same requests (within 1e-5 relative).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serveLocal } from '../../cli/local.js';
import type { Manifest } from '../../contracts/model-format.js';
import { generateModel } from '../../models/generate.js';
import { ARCHITECTURES } from '../../models/zoo.js';
import { resolveSpec } from '../../operator/api/v1alpha1/index.js';
import { predict, randomRequest, zooRecModel } from './helpers.js';

const VARIANTS = [
  ['singular', { strategy: 'singular' }],
  ['load-balanced x2', { strategy: 'load-balanced', shards: 2 }],
  ['load-balanced x4', { strategy: 'load-balanced', shards: 4 }],
  ['net-specific', { strategy: 'net-specific' }],
] as const;

async function scoresOf(arch: string, modelDir: string, sharding: object, requests: unknown[]) {
  const d = await serveLocal(zooRecModel(arch, arch, sharding as never), { modelDir, scale: 1, seed: 1 });
  try {
    const out: number[][][] = [];
    for (const r of requests) {
      const { status, json } = await predict(d.predictUrl, r);
      expect(status, JSON.stringify(json)).toBe(200);
      out.push(json.scores);
    }
    return { scores: out, shards: d.plan.shards.length };
  } finally {
    await d.stop();
  }
}

describe.each(ARCHITECTURES)('%s', (arch) => {
  it('every strategy scores exactly like the monolithic reference', async () => {
    const dir = mkdtempSync(join(tmpdir(), `recshard-${arch}-`));
    const spec = resolveSpec(zooRecModel(arch, arch, { strategy: 'monolithic' }).spec);
    if (!spec.ok) throw new Error(JSON.stringify(spec.errors));
    const manifest: Manifest = generateModel({ name: arch, model: spec.spec.model, seed: 7, scale: 0.0005, outDir: dir });
    const requests = [1, 2, 3].map((i) => randomRequest(manifest, 1 + i * 3, i));
    const reference = await scoresOf(arch, dir, { strategy: 'monolithic' }, requests);
    expect(reference.shards).toBe(0);
    // the scores depend on the inputs (so equal scores mean equal embeddings, not a constant model)
    const flat = reference.scores.flat(2);
    expect(Math.max(...flat) - Math.min(...flat)).toBeGreaterThan(1e-4);
    for (const [, sharding] of VARIANTS) {
      const got = await scoresOf(arch, dir, sharding, requests);
      if (sharding.strategy === 'load-balanced') expect(got.shards).toBe(sharding.shards);
      got.scores.forEach((batch, i) =>
        batch.forEach((row, b) =>
          row.forEach((v, j) => {
            const ref = reference.scores[i]![b]![j]!;
            expect(Math.abs(v - ref) / Math.max(Math.abs(ref), 1e-12)).toBeLessThanOrEqual(1e-5);
          }),
        ),
      );
    }
  });
});
