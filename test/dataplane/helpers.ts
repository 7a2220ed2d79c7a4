// Shared by the data-plane suites: RecModels for the zoo, seeded requests, and a JSON predict call.
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { Manifest } from '../../contracts/model-format.js';
import { ZOO } from '../../models/zoo.js';
import type { RecModel, RecModelSpec } from '../../operator/api/v1alpha1/index.js';

export function zooRecModel(arch: string, name: string, sharding: RecModelSpec['sharding']): RecModel {
  return {
    apiVersion: 'recshard.io/v1alpha1',
    kind: 'RecModel',
    metadata: { name },
    spec: { model: structuredClone(ZOO[arch]!) as RecModelSpec['model'], sharding: { shardMemory: '64Gi', ...sharding } },
  };
}

/** A seeded batch touching every table with up to min(poolingFactor, 8) lookups per sample. */
export function randomRequest(m: Manifest, batch: number, seed: number) {
  const g = xoroshiro128plus(seed);
  const u = () => (g.next() >>> 0) / 2 ** 32;
  const dense = m.denseFeatures ? Array.from({ length: batch }, () => Array.from({ length: m.denseFeatures }, () => u() * 2 - 1)) : undefined;
  const sparse: Record<string, number[][]> = {};
  for (const t of m.tables) {
    const k = Math.max(1, Math.min(8, Math.round(t.poolingFactor)));
    sparse[t.name] = Array.from({ length: batch }, () => Array.from({ length: 1 + Math.floor(u() * k) }, () => Math.floor(u() * t.rows)));
  }
  return { ...(dense ? { dense } : {}), sparse };
}

export async function predict(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}
