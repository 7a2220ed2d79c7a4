// Benchmark 4, server overhead: the end-to-end latency of one query at a time through the main (HTTP, parsing,
// scheduling, a worker thread, embeddings, interaction) against the bare onnxruntime time of the same batch
// through the same dense networks in-process. The difference is what recshard adds; the server's own stage
// metrics split it into the embedding and interaction work (real compute) and the rest.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'hdr-histogram-js';
import type { Manifest } from '../contracts/model-format.js';
import { loadDenseNets } from '../shard-server/inference/dense.js';
import { example, log, oneAtATime, queries, round, serve, stageSums } from './lib.js';

export interface OverheadRow {
  model: string;
  batch: number;
  /** Medians in microseconds. */
  endToEndUs: number;
  bareOrtUs: number;
  overheadUs: number;
  overheadPct: number;
  /** Per query, from the server's stage histograms (means, microseconds). */
  server: { endToEnd: number; embeddings: number; interaction: number; dense: number; queue: number };
}

const median = (xs: number[]) => {
  const h = build({ lowestDiscernibleValue: 1, highestTrackableValue: 1e9, numberOfSignificantValueDigits: 3 });
  for (const x of xs) h.recordValue(Math.max(1, Math.round(x)));
  return h.getValueAtPercentile(50);
};

/** Mean microseconds per predict of each stage so far. */
async function stageMeans(url: string): Promise<Record<string, number>> {
  const { sums, count } = await stageSums(url);
  return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, (v / Math.max(count, 1)) * 1e6]));
}

/** Microseconds of each of `queries` batches through the same dense networks, bare: one single-threaded session each. */
async function bareOnnxruntime(modelDir: string, batch: number, queries: number): Promise<number[]> {
  const manifest = JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8')) as Manifest;
  const { bottom, top } = await loadDenseNets(
    manifest,
    manifest.dense.bottom && readFileSync(join(modelDir, manifest.dense.bottom.file)),
    readFileSync(join(modelDir, manifest.dense.top.file)),
  );
  const x = Float32Array.from({ length: batch * manifest.denseFeatures }, (_, i) => Math.sin(i));
  const z = Float32Array.from({ length: batch * manifest.topInput }, (_, i) => Math.cos(i));
  const out: number[] = [];
  for (let i = 0; i < 50 + queries; i++) {
    const t = performance.now();
    if (bottom) await bottom.run(x, batch);
    await top.run(z, batch);
    if (i >= 50) out.push((performance.now() - t) * 1000);
  }
  return out;
}

export async function benchOverhead(o: { models: { model: string; file: string }[]; batch: number; queries: number }): Promise<OverheadRow[]> {
  const rows: OverheadRow[] = [];
  for (const m of o.models) {
    const rm = example(m.file, { strategy: 'monolithic' }, `bench-${m.file.replace('.yaml', '')}`);
    const { d, info } = await serve(rm, { scheduler: 'fixed', batchSize: 1024 });
    try {
      const qs = queries(info, `fixed:${o.batch}`, 16);
      await oneAtATime(d, qs, 50); // warm-up
      const before = await stageMeans(d.mainUrl);
      const e2e = (await oneAtATime(d, qs, o.queries)).map((ms) => ms * 1000);
      const after = await stageMeans(d.mainUrl);
      const bare = await bareOnnxruntime(d.modelDir, o.batch, o.queries);
      // stage means over the measured queries only: (sum_after - sum_before) / queries
      const stage = (k: string) => round(((after[k] ?? 0) * (50 + o.queries) - (before[k] ?? 0) * 50) / o.queries, 0);
      const endToEndUs = median(e2e);
      const bareOrtUs = median(bare);
      const row: OverheadRow = {
        model: m.model,
        batch: o.batch,
        endToEndUs,
        bareOrtUs,
        overheadUs: endToEndUs - bareOrtUs,
        overheadPct: round(((endToEndUs - bareOrtUs) / endToEndUs) * 100, 1),
        server: {
          endToEnd: stage('end_to_end'),
          embeddings: stage('embeddings'),
          interaction: stage('interaction'),
          dense: stage('bottom_mlp') + stage('top_mlp'),
          queue: stage('queue'),
        },
      };
      log(
        `overhead: ${m.model} batch ${o.batch}: end to end ${endToEndUs} us, bare onnxruntime ${bareOrtUs} us, overhead ` +
          `${row.overheadUs} us (${row.overheadPct}%)`,
      );
      rows.push(row);
    } finally {
      await d.stop();
    }
  }
  return rows;
}
