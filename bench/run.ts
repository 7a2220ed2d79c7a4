#!/usr/bin/env node
// `make bench`: the nine benchmarks of docs/benchmarks.md, written there with their charts and raw JSON.
// `--quick` runs each at smoke-test size (seconds, not minutes) into a directory of your choice; `--only` reruns
// some and keeps the other sections of the results already in --out.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';
import { Command, Option } from 'commander';
import { ZOO } from '../models/zoo.js';
import { compareAutoscalers } from './autoscaling/compare.js';
import { benchCapacity } from './capacity.js';
import { autoscalingChart, kernelChart, overheadChart, rolloutChart, scaleOutChart, schedulingChart, servingChart, svg } from './charts.js';
import { benchKernel } from './kernel.js';
import { capacity, example, log, machine, oneAtATime, queries, round, serve } from './lib.js';
import { benchOperatorScale } from './operator.js';
import { benchOverhead } from './overhead.js';
import { renderReport, type BenchResults } from './report.js';
import { benchRollout } from './rollout.js';
import { benchScaleOut, SCALEOUT_CONFIGS, SCALEOUT_MODELS } from './scaleout.js';
import { benchScheduling, SCHEDULING_MODELS } from './scheduling.js';
import { benchServing } from './serving.js';
import { torchPython } from './torch.js';

const ALL = ['scheduling', 'scaleout', 'kernel', 'overhead', 'autoscaling', 'rollout', 'serving', 'operator', 'capacity'] as const;
const flags = new Command('bench')
  .option('--quick', 'smoke-test sizes: every benchmark in about a minute (numbers are not meaningful)')
  .option('--out <dir>', 'where benchmarks.md goes (charts and results.json in <dir>/bench)', 'docs')
  .addOption(new Option('--only <names...>', 'run only these').choices([...ALL]))
  .parse(process.argv)
  .opts<{ quick?: boolean; out: string; only?: (typeof ALL)[number][] }>();

const quick = flags.quick === true;
const only = new Set(flags.only ?? ALL);
const started = new Date();
const t0 = performance.now();
const results: BenchResults = {
  command: ['make bench', ...(quick ? ['--quick'] : []), ...(flags.only ? [`--only ${flags.only.join(' ')}`] : [])]
    .join(' ')
    .replace('make bench --', 'npx tsx bench/run.ts --'),
  quick,
  startedAt: started.toISOString(),
  durationS: 0,
  machine: machine(),
};
if (!quick && !flags.only) results.command = 'make bench';
// --only into a directory that holds results: the sections not rerun are kept, each with the command that made it
const previous = join(flags.out, 'bench', 'results.json');
const merged = flags.only !== undefined && existsSync(previous);
const sectionKey = (name: (typeof ALL)[number]) => (name === 'scaleout' ? 'scaleOut' : name);
if (merged) {
  const kept = JSON.parse(readFileSync(previous, 'utf8')) as BenchResults;
  for (const [key, value] of Object.entries(kept)) if (!(key in results) || key === 'durationS') (results as unknown as Record<string, unknown>)[key] = value;
  results.command = kept.command;
  results.startedAt = kept.startedAt;
  results.quick = kept.quick;
  results.machine = kept.machine; // the header's run; a section rerun names its own
  for (const name of only) delete (results as unknown as Record<string, unknown>)[sectionKey(name)];
}
const sectionCommand = flags.only ? `npx tsx bench/run.ts${quick ? ' --quick' : ''} --only ${flags.only.join(' ')}` : results.command;
results.produced = { ...results.produced };
for (const name of only) results.produced[sectionKey(name)] = { command: sectionCommand, day: started.toISOString().slice(0, 10), machine: machine() };
const step = (name: string) => log(`\n== ${name} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);

if (only.has('scheduling')) {
  step('1/9 scheduling');
  results.scheduling = await benchScheduling(
    quick
      ? { models: SCHEDULING_MODELS.slice(0, 1), sweep: [32], levelSeconds: 1, grid: [0.5, 1], calibration: { levelSeconds: 0.5, maxLevels: 4 } }
      : {
          models: SCHEDULING_MODELS,
          sweep: [8, 32, 128],
          levelSeconds: 2.25,
          grid: [0.6, 0.8, 1, 1.25, 1.5, 1.8],
          calibration: { levelSeconds: 2, maxLevels: 8 },
        },
  );
}

if (only.has('scaleout')) {
  step('2/9 scale-out');
  const half = async (file: string) => {
    const row = results.scheduling?.find((s) => s.file === file);
    if (row) return round(Math.max(row.whole.qps, 1) / 2, 1);
    const { d, info } = await serve(example(file, { strategy: 'monolithic' }, 'bench-calibrate'), { scheduler: 'fixed', batchSize: 1024 });
    try {
      const c = await capacity(d, queries(info), { targetMs: 100, startQps: 2, levelSeconds: quick ? 0.5 : 2, precision: 1.25, maxLevels: quick ? 3 : 8 });
      return round(Math.max(c.qps, 1) / 2, 1);
    } finally {
      await d.stop();
    }
  };
  const models = quick ? SCALEOUT_MODELS.slice(0, 1) : SCALEOUT_MODELS;
  const loads = new Map<string, number>();
  for (const m of models) loads.set(m.file, await half(m.file));
  results.scaleOut = await benchScaleOut({
    models,
    configs: quick ? SCALEOUT_CONFIGS.slice(0, 3) : SCALEOUT_CONFIGS,
    seconds: quick ? 1 : 6,
    load: (f) => loads.get(f)!,
    split: cpus().length >= 2 ? { queries: quick ? 20 : 200 } : undefined,
  });
}

// the PyTorch baseline's venv (built once, minutes; cached outside the repository)
const python = only.has('kernel') || only.has('serving') ? await torchPython() : '';

if (only.has('kernel')) {
  step('3/9 kernel');
  results.kernel = await benchKernel(
    quick
      ? { sizes: [{ label: 'cache-resident', rows: 4096 }], dim: 64, seconds: 0.2, bandwidthMiB: 64, python }
      : {
          python,
          sizes: [
            { label: 'cache-resident', rows: 4096 },
            { label: 'DRAM', rows: 1 << 20 },
          ],
          dim: 64,
          seconds: 1.5,
          bandwidthMiB: 1024,
        },
  );
}

if (only.has('overhead')) {
  step('4/9 overhead');
  results.overhead = await benchOverhead({
    models: quick ? [SCHEDULING_MODELS[0]!] : [SCHEDULING_MODELS[0]!, SCHEDULING_MODELS[2]!],
    batch: 64,
    queries: quick ? 20 : 300,
  });
}

if (only.has('autoscaling')) {
  step('5/9 autoscaling');
  // service times of a real main, one query at a time (production query sizes), feed the simulated pods
  const file = 'dlrm-rmc3.yaml';
  const { d, info } = await serve(example(file, { strategy: 'monolithic' }, 'bench-autoscaling'), { scheduler: 'fixed', batchSize: 1024 });
  let serviceMs: number[];
  try {
    const qs = queries(info);
    await oneAtATime(d, qs, quick ? 10 : 50);
    serviceMs = await oneAtATime(d, qs, quick ? 60 : 400);
  } finally {
    await d.stop();
  }
  results.autoscaling = await compareAutoscalers({
    serviceMs,
    source: `DLRM-RMC3 main (examples/${file}, monolithic, whole queries), ${serviceMs.length} production-size queries one at a time`,
    quick,
  });
  for (const t of results.autoscaling.traces) {
    for (const r of t.runs)
      log(
        `  ${t.trace} seed ${r.seed}: seconds over target HPA ${r.hpa.secondsOver} / recshard ${r.recshard.secondsOver}; ` +
          `replica-seconds ratio ${r.replicaSecondsRatio}; reversals HPA ${r.hpa.reversals} / recshard ${r.recshard.reversals}`,
      );
  }
}

if (only.has('rollout')) {
  step('6/9 rollout');
  results.rollout = await benchRollout(quick ? { rows: 20_000, qps: 10, steadyS: 5 } : { rows: 1_000_000, qps: 20, steadyS: 20 }, sectionCommand);
  const r = results.rollout;
  log(
    `  ${r.from} -> ${r.to}: ${r.switchS} s from apply to the last old pod gone; ${r.during.answered} answered, ${r.during.failed} failed, ` +
      `${r.during.timeouts} timeouts; p99 ${r.during.p99Ms} ms (steady ${r.steady.p99Ms} ms); shard start-up ${r.shardStartupS.join(', ')} s`,
  );
}

if (only.has('serving')) {
  step('7/9 serving');
  results.serving = await benchServing({
    file: 'dlrm-rmc1.yaml',
    model: 'DLRM-RMC1',
    batches: [1, 64, 512],
    queries: quick ? 40 : 600,
    warmup: quick ? 10 : 60,
    python,
  });
}

if (only.has('operator')) {
  step('8/9 operator at scale');
  results.operator = await benchOperatorScale(
    quick
      ? { models: 20, bigTables: 4096, bigShards: 64, fairTables: 2048, fairShards: 32, idleS: 5 }
      : { models: 200, bigTables: 65_536, bigShards: 1000, fairTables: 16_384, fairShards: 256, idleS: 30 },
  );
}

if (only.has('capacity')) {
  step('9/9 capacity');
  results.capacity = await benchCapacity({
    int8: {
      model: ZOO['dlrm-rmc2']!,
      scale: quick ? 0.0005 : 0.002,
      queries: quick ? 4 : 40,
      kernelRows: quick ? 100_000 : 2_000_000,
      seconds: quick ? 0.2 : 3,
    },
    hotRows: { model: ZOO['dlrm-rmc2']!, scale: 0.001, cacheShare: 0.25, queries: quick ? 4 : 40, repeats: quick ? 1 : 5 },
    split: quick
      ? { rows: 40_000, dim: 32, shardMemory: '1280Ki', queries: 8, repeats: 2 }
      : { rows: 1_000_000, dim: 64, shardMemory: '64Mi', queries: 100, repeats: 10 },
  });
}

if (!merged) results.durationS = Math.round((performance.now() - t0) / 1000);
const chartDir = join(flags.out, 'bench');
mkdirSync(chartDir, { recursive: true });
const charts: Record<string, string> = {};
const chart = async (name: string, spec: Parameters<typeof svg>[0]) => {
  const file = join(chartDir, `${name}.svg`);
  writeFileSync(file, await svg(spec));
  charts[name] = relative(flags.out, file);
};
if (results.scheduling) await chart('scheduling', schedulingChart(results.scheduling));
if (results.scaleOut) {
  await chart('scaleOutLatency', scaleOutChart(results.scaleOut, 'p99Ms'));
  await chart('scaleOutCpu', scaleOutChart(results.scaleOut, 'cpuSecondsPer1000'));
}
if (results.kernel) await chart('kernel', kernelChart(results.kernel));
if (results.overhead) await chart('overhead', overheadChart(results.overhead));
if (results.autoscaling) await chart('autoscaling', autoscalingChart(results.autoscaling));
if (results.rollout) await chart('rollout', rolloutChart(results.rollout));
if (results.serving) await chart('serving', servingChart(results.serving));
writeFileSync(join(chartDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
writeFileSync(join(flags.out, 'benchmarks.md'), renderReport(results, charts));
log(`\nwrote ${join(flags.out, 'benchmarks.md')} and ${Object.keys(charts).length} charts in ${chartDir} (${results.durationS} s)`);
