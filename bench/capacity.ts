// Benchmark 9, capacity beyond one server: how many rows a shard holds per dtype (the planner's arithmetic), what
// row-wise int8 costs in accuracy (an int8 model against the fp32 model of the same seed: pooled vectors and
// scores) and gains in pooling speed (the SIMD kernels side by side on the same rows and indices), and what a
// table split by rows costs against the same table whole on one larger shard (latency one query at a time, and
// the bytes the shards answer, counted from the queries exactly as the main routes them).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processCpuSeconds, serveLocal } from '../cli/local.js';
import { rowBytes, type DType, type Manifest } from '../contracts/model-format.js';
import { decodePredict, decodeScores, PREDICT_CONTENT_TYPE } from '../contracts/wire/predict.js';
import { parseQuantity } from '../lib/quantity.js';
import { parseSizeSpec } from '../loadgen/distributions.js';
import { buildQueries, type Query } from '../loadgen/workload.js';
import { generateModel } from '../models/generate.js';
import { resolveSpec, type RecModel, type RecModelSpec } from '../operator/api/v1alpha1/index.js';
import { planModel } from '../operator/planner/plan.js';
import { poolInto } from '../shard-server/inference/embeddings.js';
import { loadTables, modelSource, type EmbeddingTable } from '../shard-server/model/load.js';
import { splitTables } from '../shard-server/roles.js';
import { timeKernel } from './kernel.js';
import { log, oneAtATime, round } from './lib.js';

export interface CapacityResult {
  shardMemory: string;
  dim: number;
  rowsPerShard: { dtype: DType; rowBytes: number; rows: number; vsFp32: number }[];
  int8: {
    model: string;
    tables: number;
    queries: number;
    /** Largest |int8 - fp32| of any pooled element and of any score, and the largest score. */
    pooledMaxAbs: number;
    scoreMaxAbs: number;
    scoreMax: number;
    /** Pooled lookups per second of the SIMD kernel on one core, the same rows and indices. */
    kernel: { rows: number; fp32: number; int8: number; speedup: number };
  };
  split: {
    tableMiB: number;
    shardMiB: number;
    pieces: number;
    batch: number;
    zipf: number;
    whole: { p50Ms: number; p99Ms: number; answerKiB: number };
    split: { p50Ms: number; p99Ms: number; answerKiB: number };
    /** The split model's scores equal the whole model's, bit for bit, on every query. */
    exact: boolean;
  };
  hotRows: {
    model: string;
    shards: number;
    zipf: number;
    batch: number;
    cacheKiB: number;
    tableKiB: number;
    off: HotRowRun;
    on: HotRowRun;
    /** Largest |score with the cache - score without| over the largest score. */
    maxRelDiff: number;
  };
}

export interface HotRowRun {
  p50Ms: number;
  p99Ms: number;
  /** Indices the shards pooled per query, and the request bytes they were sent (4 per index plus framing). */
  shardLookups: number;
  shardRequestKiB: number;
  /** CPU of the shard processes per query, and of the main. */
  shardCpuMs: number;
  mainCpuMs: number;
  hitRate: number;
}

/** Rows of a dim-wide table one shard of `shardMemory` holds (no headroom), per dtype. */
function rowsPerShard(shardMemory: string, dim: number): CapacityResult['rowsPerShard'] {
  const bytes = parseQuantity(shardMemory);
  const fp32 = Math.floor(bytes / rowBytes(dim, 'fp32'));
  return (['fp32', 'fp16', 'int8'] as const).map((dtype) => {
    const rows = Math.floor(bytes / rowBytes(dim, dtype));
    return { dtype, rowBytes: rowBytes(dim, dtype), rows, vsFp32: round(rows / fp32, 2) };
  });
}

function withDtype(model: RecModelSpec['model'], dtype: DType): RecModelSpec['model'] {
  return { ...model, tables: model.tables?.map((t) => ({ ...t, dtype })), tableGroups: model.tableGroups?.map((g) => ({ ...g, dtype })) };
}

const recModel = (name: string, model: RecModelSpec['model'], sharding: RecModelSpec['sharding']): RecModel => ({
  apiVersion: 'recshard.io/v1alpha1',
  kind: 'RecModel',
  metadata: { name },
  spec: { model, sharding },
});

function generate(dir: string, name: string, model: RecModelSpec['model'], scale: number, chunkBytes?: number): Manifest {
  const r = resolveSpec({ model, sharding: { strategy: 'monolithic' } });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return generateModel({ name, model: r.spec.model, seed: 9, scale, outDir: join(dir, name), ...(chunkBytes ? { chunkBytes } : {}) });
}

function queriesOf(m: Manifest, batch: number, zipf: number, pool: number): Query[] {
  return buildQueries(m, { sizes: parseSizeSpec(`fixed:${batch}`, () => ''), zipf, seed: 5, pool });
}

async function scoresOf(url: string, qs: Query[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const q of qs) {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': PREDICT_CONTENT_TYPE }, body: q.body as unknown as BodyInit });
    if (!res.ok) throw new Error(`predict answered ${res.status}: ${await res.text()}`);
    out.push(Float32Array.from(decodeScores(new Uint8Array(await res.arrayBuffer())).scores));
  }
  return out;
}

/** Each query's indices per table (manifest order). */
function lookupsOf(m: Manifest, q: Query): Map<number, { offsets: Uint32Array; indices: Uint32Array }> {
  const out = new Map<number, { offsets: Uint32Array; indices: Uint32Array }>();
  decodePredict(q.body, { maxBatch: 1 << 20, denseFeatures: m.denseFeatures }, (_, l) => out.set(l.table, { offsets: l.offsets, indices: l.indices }));
  return out;
}

async function int8Accuracy(dir: string, o: { model: RecModelSpec['model']; scale: number; queries: number; kernelRows: number; seconds: number }) {
  const fp32 = generate(dir, 'acc-fp32', withDtype(o.model, 'fp32'), o.scale);
  const int8 = generate(dir, 'acc-int8', withDtype(o.model, 'int8'), o.scale);
  const qs = queriesOf(fp32, 64, 1.05, o.queries);
  const names = fp32.tables.map((t) => t.name);
  const tf = await loadTables(modelSource(join(dir, 'acc-fp32')), fp32, names);
  const tq = await loadTables(modelSource(join(dir, 'acc-int8')), int8, names);
  let pooledMaxAbs = 0;
  for (const q of qs)
    for (const [t, l] of lookupsOf(fp32, q)) {
      const dim = fp32.tables[t]!.dim;
      const batch = l.offsets.length - 1;
      const [a, b] = [new Float32Array(batch * dim), new Float32Array(batch * dim)];
      poolInto(tf.get(names[t]!)!, l.offsets, l.indices, batch, 'sum', a);
      poolInto(tq.get(names[t]!)!, l.offsets, l.indices, batch, 'sum', b);
      for (let i = 0; i < a.length; i++) pooledMaxAbs = Math.max(pooledMaxAbs, Math.abs(a[i]! - b[i]!));
    }
  const scores: Float32Array[][] = [];
  for (const name of ['acc-fp32', 'acc-int8']) {
    const d = await serveLocal(recModel(name, withDtype(o.model, name === 'acc-int8' ? 'int8' : 'fp32'), { strategy: 'monolithic', shardMemory: '64Gi' }), {
      modelDir: join(dir, name),
      scale: o.scale,
      seed: 9,
    });
    try {
      scores.push(await scoresOf(d.predictUrl, qs));
    } finally {
      await d.stop();
    }
  }
  let scoreMaxAbs = 0;
  let scoreMax = 0;
  scores[0]!.forEach((s, i) =>
    s.forEach((v, j) => {
      scoreMaxAbs = Math.max(scoreMaxAbs, Math.abs(v - scores[1]![i]![j]!));
      scoreMax = Math.max(scoreMax, Math.abs(v));
    }),
  );
  // the SIMD kernels on a table far larger than the caches: the same rows quantised, the same indices
  const dim = fp32.tables[0]!.dim;
  const kernel = { rows: o.kernelRows, fp32: 0, int8: 0, speedup: 0 };
  for (const dtype of ['fp32', 'int8'] as const) {
    const m = generate(
      dir,
      `kernel-${dtype}`,
      { ...withDtype(o.model, dtype), tables: [{ name: 'k', rows: o.kernelRows, dim, poolingFactor: 80 }].map((t) => ({ ...t, dtype })), tableGroups: [] },
      1,
    );
    const table = (await loadTables(modelSource(join(dir, `kernel-${dtype}`)), m, ['k'])).get('k')! as EmbeddingTable;
    const batch = 256;
    const offsets = Uint32Array.from({ length: batch + 1 }, (_, b) => b * 80);
    let x = 7;
    const indices = Uint32Array.from({ length: batch * 80 }, () => ((x = (Math.imul(x, 1103515245) + 12345) | 0) >>> 0) % o.kernelRows);
    kernel[dtype] = Math.round(timeKernel(table, offsets, indices, batch, o.seconds));
  }
  kernel.speedup = round(kernel.int8 / kernel.fp32, 2);
  log(
    `capacity: int8 vs fp32 pooled max abs ${pooledMaxAbs.toExponential(2)}, scores max abs ${scoreMaxAbs.toExponential(2)}; ` +
      `kernel ${(kernel.fp32 / 1e6).toFixed(1)}M vs ${(kernel.int8 / 1e6).toFixed(1)}M lookups/s`,
  );
  return { model: 'dlrm-rmc2 tables', tables: fp32.tables.length, queries: qs.length, pooledMaxAbs, scoreMaxAbs, scoreMax, kernel };
}

async function splitCost(dir: string, o: { rows: number; dim: number; shardMemory: string; queries: number; repeats: number }) {
  const model: RecModelSpec['model'] = {
    architecture: 'custom',
    denseFeatures: 16,
    bottomMLP: [64, o.dim],
    topMLP: [64, 1],
    interaction: 'dot',
    tables: [
      { name: 'big', rows: o.rows, dim: o.dim, poolingFactor: 40 },
      ...Array.from({ length: 4 }, (_, i) => ({ name: `t${i}`, rows: Math.round(o.rows / 16), dim: o.dim, poolingFactor: 20 })),
    ],
  };
  const m = generate(dir, 'split', model, 1, 4 << 20);
  const batch = 64;
  const zipf = 1.05;
  const qs = queriesOf(m, batch, zipf, o.queries);
  const whole = recModel('split', model, { strategy: 'load-balanced', shardMemory: '64Gi', shards: 2 });
  const split = recModel('split', model, { strategy: 'load-balanced', shardMemory: o.shardMemory, headroom: 0 });
  const r = resolveSpec(split.spec);
  if (!r.ok) throw new Error('spec');
  const plan = planModel(r.spec);
  if (!plan.ok) throw plan.error;
  const big = m.tables.findIndex((t) => t.name === 'big');
  const router = splitTables(m, { main: { tables: plan.plan.mainTables }, shards: plan.plan.shards }).find((s) => s.table === big)!;
  const pieces = router.pieces;
  // the bytes the shards answer per query: a pooled vector per sample and table, or a row per distinct index of a piece
  const answerBytes = (splitBig: boolean) =>
    qs.reduce((n, q) => {
      for (const [t, l] of lookupsOf(m, q)) {
        if (t === big && splitBig) n += router.route(l.indices).asks.reduce((k, a) => k + a.length, 0) * o.dim * 4;
        else n += batch * o.dim * 4;
      }
      return n;
    }, 0) /
    qs.length /
    1024;
  const measure = async (rm: RecModel) => {
    const d = await serveLocal(rm, { modelDir: join(dir, 'split'), scale: 1, seed: 9 });
    try {
      const scores = await scoresOf(d.predictUrl, qs);
      await oneAtATime(d, qs, qs.length); // warm-up
      const ms = (await oneAtATime(d, qs, qs.length * o.repeats)).sort((a, b) => a - b);
      const at = (p: number) => round(ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!, 2);
      return { scores, p50Ms: at(0.5), p99Ms: at(0.99) };
    } finally {
      await d.stop();
    }
  };
  const w = await measure(whole);
  const s = await measure(split);
  const exact = w.scores.every((x, i) => x.every((v, j) => Object.is(v, s.scores[i]![j]!)));
  const out = {
    tableMiB: round((o.rows * rowBytes(o.dim, 'fp32')) / 2 ** 20, 1),
    shardMiB: round(parseQuantity(o.shardMemory) / 2 ** 20, 1),
    pieces: pieces.length,
    batch,
    zipf,
    whole: { p50Ms: w.p50Ms, p99Ms: w.p99Ms, answerKiB: round(answerBytes(false), 1) },
    split: { p50Ms: s.p50Ms, p99Ms: s.p99Ms, answerKiB: round(answerBytes(true), 1) },
    exact,
  };
  log(`capacity: split ${JSON.stringify(out)}`);
  return out;
}

/**
 * The hot-row cache: DLRM-RMC2 (scaled rows) load-balanced over 4 shards under Zipf traffic, served without and
 * with a cache of a quarter of the rows, each warmed by the same queries; then the same queries one at a time.
 */
export async function hotRowCost(dir: string, o: { model: RecModelSpec['model']; scale: number; cacheShare: number; queries: number; repeats: number }) {
  const m = generate(dir, 'hot', o.model, o.scale);
  const batch = 64;
  const zipf = 1.05;
  const qs = queriesOf(m, batch, zipf, o.queries);
  const tableBytes = m.tables.reduce((n, t) => n + t.bytes, 0);
  const cacheBytes = Math.round(tableBytes * o.cacheShare);
  const run = async (cache: boolean): Promise<{ run: HotRowRun; scores: Float32Array[] }> => {
    const rm = recModel('hot', o.model, { strategy: 'load-balanced', shards: 4, shardMemory: '64Gi' });
    if (cache) rm.spec.serving = { hotRowCache: String(cacheBytes) };
    const d = await serveLocal(rm, { modelDir: join(dir, 'hot'), scale: o.scale, seed: 9, hotRowRefreshMs: 500 });
    try {
      const shards = d.processes.filter((p) => p.name.startsWith('shard-'));
      const main = d.processes.find((p) => p.name === 'main')!;
      const scrape = async (port: number, name: string) =>
        [...(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))].map(
          (x) => [x[1] ?? '', Number(x[2])] as const,
        );
      const lookups = async () => (await Promise.all(shards.map((p) => scrape(p.port, 'recshard_lookups_total')))).flat().reduce((n, [, v]) => n + v, 0);
      const cpu = (ps: typeof shards) => ps.reduce((n, p) => n + (p.proc.pid ? processCpuSeconds(p.proc.pid) : 0), 0);
      await scoresOf(d.predictUrl, qs); // warms the cache (and the JIT)
      await new Promise((r) => setTimeout(r, 1200));
      const [l0, s0, m0] = [await lookups(), cpu(shards), cpu([main])];
      const n = qs.length * o.repeats;
      const ms = (await oneAtATime(d, qs, n)).sort((a, b) => a - b);
      const [l1, s1, m1] = [await lookups(), cpu(shards), cpu([main])];
      const hits = await scrape(main.port, 'recshard_hot_row_lookups_total');
      const hit = hits.find(([l]) => l.includes('result="hit"'))?.[1] ?? 0;
      const miss = hits.find(([l]) => l.includes('result="miss"'))?.[1] ?? 0;
      const at = (p: number) => round(ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!, 2);
      const shardLookups = (l1 - l0) / n;
      return {
        scores: await scoresOf(d.predictUrl, qs),
        run: {
          p50Ms: at(0.5),
          p99Ms: at(0.99),
          shardLookups: Math.round(shardLookups),
          shardRequestKiB: round((shardLookups * 4) / 1024, 1),
          shardCpuMs: round(((s1 - s0) * 1000) / n, 3),
          mainCpuMs: round(((m1 - m0) * 1000) / n, 3),
          hitRate: hit + miss ? round(hit / (hit + miss), 3) : 0,
        },
      };
    } finally {
      await d.stop();
    }
  };
  const off = await run(false);
  const on = await run(true);
  let maxRelDiff = 0;
  const top = Math.max(...off.scores.flatMap((x) => Array.from(x, Math.abs)));
  off.scores.forEach((x, i) => x.forEach((v, j) => (maxRelDiff = Math.max(maxRelDiff, Math.abs(v - on.scores[i]![j]!) / top))));
  const out = {
    model: 'DLRM-RMC2',
    shards: 4,
    zipf,
    batch,
    cacheKiB: round(cacheBytes / 1024, 1),
    tableKiB: round(tableBytes / 1024, 1),
    off: off.run,
    on: on.run,
    maxRelDiff,
  };
  log(`capacity: hot rows ${JSON.stringify(out)}`);
  return out;
}

export async function benchCapacity(o: {
  int8: { model: RecModelSpec['model']; scale: number; queries: number; kernelRows: number; seconds: number };
  split: { rows: number; dim: number; shardMemory: string; queries: number; repeats: number };
  hotRows: { model: RecModelSpec['model']; scale: number; cacheShare: number; queries: number; repeats: number };
}): Promise<CapacityResult> {
  const dir = mkdtempSync(join(tmpdir(), 'recshard-capacity-'));
  try {
    const shardMemory = '16Gi';
    const dim = 64;
    return {
      shardMemory,
      dim,
      rowsPerShard: rowsPerShard(shardMemory, dim),
      int8: await int8Accuracy(dir, o.int8),
      split: await splitCost(dir, o.split),
      hotRows: await hotRowCost(dir, o.hotRows),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
