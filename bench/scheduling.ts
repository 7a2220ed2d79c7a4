// Benchmark 1, DeepRecSched: latency-bounded throughput (p95 under the model's target) of the main with the
// auto scheduler, with fixed B = whole query, and with fixed B over a sweep, for four DeepRecInfra models
// served monolithic (so the main's scheduling is all that differs).
import type { LocalDeployment } from '../cli/local.js';
import { modelPath } from '../contracts/endpoints.js';
import type { ModelInfo } from '../contracts/model-info.js';
import { durationMs } from '../lib/duration.js';
import type { Query } from '../loadgen/workload.js';
import { resolveSpec } from '../operator/api/v1alpha1/index.js';
import { capacity, example, gridCapacity, load, log, queries, round, serve, type CapacityRun } from './lib.js';

export interface SchedulingRow {
  model: string;
  file: string;
  /** The target measured against: the model's, or 3x the unloaded p95 where this machine cannot meet that. */
  targetMs: number;
  modelTargetMs: number;
  meanQuerySize: number;
  whole: CapacityRun;
  sweep: { batchSize: number; run: CapacityRun }[];
  auto: CapacityRun & { finalBatchSize: number };
  best: { batchSize: number; qps: number };
  /** auto / best fixed and auto / whole query. */
  autoVsBest: number;
  autoVsWhole: number;
}

export const SCHEDULING_MODELS = [
  { model: 'DLRM-RMC1', file: 'dlrm-rmc1.yaml' },
  { model: 'DLRM-RMC2', file: 'dlrm-rmc2.yaml' },
  { model: 'DLRM-RMC3', file: 'dlrm-rmc3.yaml' },
  { model: 'Wide&Deep', file: 'wide-and-deep.yaml' },
];

export interface SchedulingOptions {
  models: typeof SCHEDULING_MODELS;
  sweep: number[];
  levelSeconds: number;
  /** Load levels as multiples of the calibrated capacity of the whole-query configuration. */
  grid: number[];
  calibration: { levelSeconds: number; maxLevels: number };
}

/**
 * The paper's targets assume its servers: where this machine cannot serve the largest queries within the model's
 * target even unloaded, the target becomes 3x the unloaded p95 (and the auto scheduler is configured with it too).
 * Then a coarse adaptive search on the whole-query configuration places the grid of load levels.
 */
async function calibrate(model: string, d: LocalDeployment, qs: Query[], modelTargetMs: number, o: SchedulingOptions) {
  const idle = await load(d, qs, 2, o.calibration.levelSeconds * 2);
  const targetMs = Math.max(modelTargetMs, Math.ceil(idle.latencyMs.p95 * 3));
  if (targetMs !== modelTargetMs)
    log(`  ${model}: unloaded p95 ${idle.latencyMs.p95} ms; target raised from ${modelTargetMs} to ${targetMs} ms on this machine`);
  const c = await capacity(d, qs, { targetMs, startQps: 2, levelSeconds: o.calibration.levelSeconds, precision: 1.25, maxLevels: o.calibration.maxLevels });
  const grid = o.grid.map((g) => round(Math.max(c.qps, 1) * g, 1));
  log(`  ${model} calibration: about ${c.qps} QPS; levels ${grid.join(', ')}`);
  return { targetMs, grid };
}

/** One model: whole query, the sweep of fixed B, and auto, on the same grid of load levels. */
async function benchModel(m: (typeof SCHEDULING_MODELS)[number], o: SchedulingOptions): Promise<SchedulingRow> {
  const rm = example(m.file, { strategy: 'monolithic' }, `bench-${m.file.replace('.yaml', '')}`);
  const r = resolveSpec(rm.spec);
  if (!r.ok) throw new Error(`${m.file}: invalid`);
  const modelTargetMs = durationMs(r.spec.serving.latencyTarget)!;
  let levels: { targetMs: number; grid: number[] } | undefined;
  let meanQuerySize = 0;
  const measure = async (label: string, scheduler: 'auto' | 'fixed', batchSize: number) => {
    const targetMs = levels?.targetMs ?? modelTargetMs;
    const served = { ...rm, spec: { ...rm.spec, serving: { ...rm.spec.serving, latencyTarget: `${targetMs}ms` } } };
    const { d, info } = await serve(served, { scheduler, batchSize });
    try {
      const qs = queries(info);
      meanQuerySize = qs.reduce((s, q) => s + q.size, 0) / qs.length;
      levels ??= await calibrate(m.model, d, qs, modelTargetMs, o);
      const run = await gridCapacity(d, qs, { targetMs: levels.targetMs, grid: levels.grid, levelSeconds: o.levelSeconds, warmupQps: levels.grid[0]! });
      const state = (await (await fetch(`${d.mainUrl}${modelPath(rm.metadata.name)}`)).json()) as ModelInfo;
      const p95s = run.levels.map((l) => Math.round(l.latencyMs)).join('/');
      log(
        `  ${m.model} ${label}: ${run.qps}${run.censored ? '+' : ''} QPS (p95 ${p95s} ms)${scheduler === 'auto' ? `, B now ${state.scheduler.batchSize}` : ''}`,
      );
      return { run, finalBatchSize: state.scheduler.batchSize };
    } finally {
      await d.stop();
    }
  };
  log(`scheduling: ${m.model} (model target p95 <= ${modelTargetMs} ms)`);
  const whole = (await measure('whole query (B = 1024)', 'fixed', 1024)).run;
  const sweep = [];
  for (const b of o.sweep) sweep.push({ batchSize: b, run: (await measure(`B = ${b}`, 'fixed', b)).run });
  const auto = await measure('auto', 'auto', 64);
  const fixed = [{ batchSize: 1024, qps: whole.qps }, ...sweep.map((s) => ({ batchSize: s.batchSize, qps: s.run.qps }))];
  const best = fixed.reduce((a, b) => (b.qps > a.qps ? b : a));
  return {
    model: m.model,
    file: m.file,
    targetMs: levels!.targetMs,
    modelTargetMs,
    meanQuerySize: round(meanQuerySize),
    whole,
    sweep,
    auto: { ...auto.run, finalBatchSize: auto.finalBatchSize },
    best,
    autoVsBest: round(auto.run.qps / Math.max(best.qps, 1e-9), 3),
    autoVsWhole: round(auto.run.qps / Math.max(whole.qps, 1e-9), 3),
  };
}

export async function benchScheduling(o: SchedulingOptions): Promise<SchedulingRow[]> {
  const rows: SchedulingRow[] = [];
  for (const m of o.models) rows.push(await benchModel(m, o));
  return rows;
}
