// `recshard load` (open-loop DeepRecInfra load against a main) and `recshard bench capacity` (latency-bounded
// throughput), against a main at --url or a RecModel brought up locally with --local.
import { createWriteStream, readFileSync } from 'node:fs';
import { Presets, SingleBar } from 'cli-progress';
import { modelPath, predictPath } from '../../contracts/endpoints.js';
import type { ModelInfo } from '../../contracts/model-info.js';
import { decodeScores } from '../../contracts/wire/predict.js';
import { durationMs } from '../../lib/duration.js';
import { measureCapacity } from '../../loadgen/capacity.js';
import { parseSizeSpec, type SizeSpec } from '../../loadgen/distributions.js';
import { runLoad, type Answer, type LoadResult } from '../../loadgen/run.js';
import { buildQueries } from '../../loadgen/workload.js';
import { resolveSpec, type RecModel } from '../../operator/api/v1alpha1/index.js';
import { CliError, num } from '../errors.js';
import { serveLocal } from '../local.js';
import { readModels } from './plan.js';

export interface SchedulingFlags {
  scheduler?: 'auto' | 'fixed';
  batchSize?: string;
  workers?: string;
}

export function schedulingOf(f: SchedulingFlags) {
  return {
    scheduler: f.scheduler,
    batchSize: f.batchSize === undefined ? undefined : num('batch-size', f.batchSize, 1),
    workers: f.workers === undefined ? undefined : num('workers', f.workers, 0),
  };
}

export interface LoadFlags extends SchedulingFlags {
  url?: string;
  model?: string;
  local?: string;
  qps: string;
  duration: string;
  sizes: string;
  zipf: string;
  seed: string;
  timeoutMs: string;
  deadlineMs?: string;
  pool: string;
  scale: string;
  json?: string;
  record?: string;
}

interface Target {
  base: string;
  model: string;
  info: ModelInfo;
  rm?: RecModel;
  close(): Promise<void>;
}

/** The main to load: one at --url, or a RecModel brought up locally from --local. */
async function openTarget(f: { url?: string; model?: string; local?: string; scale: string } & SchedulingFlags): Promise<Target> {
  if (!f.local && !(f.url && f.model)) throw new CliError('give --local FILE, or --url URL and --model NAME');
  const rm = f.local ? readModels(f.local)[0]! : undefined;
  const local = rm ? await serveLocal(rm, { scale: num('scale', f.scale, 1e-9), seed: 1, ...schedulingOf(f) }) : undefined;
  const close = async () => void (await local?.stop());
  try {
    const base = local?.mainUrl ?? f.url!.replace(/\/+$/, '');
    const model = rm?.metadata.name ?? f.model!;
    const res = await fetch(`${base}${modelPath(model)}`).catch((e: Error) => {
      throw new CliError(`cannot reach ${base}: ${e.message}`);
    });
    if (!res.ok) throw new CliError(`GET ${base}${modelPath(model)} answered ${res.status}: ${await res.text()}`);
    return { base, model, info: (await res.json()) as ModelInfo, rm, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Parsed before any server starts, so a bad --sizes fails at once. */
function parseSizes(spec: string): SizeSpec {
  try {
    return parseSizeSpec(spec, (path) => readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

function workloadOf(f: LoadFlags, info: ModelInfo, sizes: SizeSpec) {
  return buildQueries(info, { sizes, zipf: num('zipf', f.zipf, 0), seed: num('seed', f.seed, 0), pool: num('pool', f.pool, 1) });
}

/**
 * `--record FILE`: one JSON line per answer, {query, atMs, latencyMs, status, scores (flat, batch x outputs) | error},
 * so a run can be checked answer by answer (e.g. that every answer during a rollout is the old or the new model's).
 */
function recorder(file: string | undefined): { onAnswer?: (a: Answer) => void; close(): Promise<void> } {
  if (!file) return { close: async () => {} };
  const out = createWriteStream(file);
  return {
    onAnswer(a) {
      const { body, ...rest } = a;
      const scores = a.status === 200 && body ? Array.from(decodeScores(body).scores) : undefined;
      const error = a.status !== 200 && body ? Buffer.from(body).toString('utf8').slice(0, 300) : a.error;
      out.write(JSON.stringify({ ...rest, ...(scores ? { scores } : {}), ...(error ? { error } : {}) }) + '\n');
    },
    close: () => new Promise<void>((r) => out.end(() => r())),
  };
}

export async function loadCommand(
  f: LoadFlags,
  tty: boolean,
  signal?: AbortSignal,
): Promise<LoadResult & { target: string; model: string; sizes: string; zipf: number }> {
  const qps = num('qps', f.qps, 0.001);
  const duration = num('duration', f.duration, 0.1);
  const sizes = parseSizes(f.sizes);
  const t = await openTarget(f);
  try {
    const queries = workloadOf(f, t.info, sizes);
    const bar = tty
      ? new SingleBar({ format: 'load |{bar}| {percentage}% | {sent} sent | p99 {p99} ms | errors {errors}', hideCursor: true }, Presets.shades_classic)
      : undefined;
    bar?.start(Math.round(duration * 1000), 0, { sent: 0, p99: 0, errors: 0 });
    const record = recorder(f.record);
    const result = await runLoad({
      ...(record.onAnswer ? { onAnswer: record.onAnswer } : {}),
      ...(signal ? { signal } : {}),
      predictUrl: `${t.base}${predictPath(t.model)}`,
      qps,
      durationMs: duration * 1000,
      timeoutMs: num('timeout-ms', f.timeoutMs, 1),
      ...(f.deadlineMs !== undefined ? { deadlineMs: num('deadline-ms', f.deadlineMs, 1) } : {}),
      queries,
      seed: num('seed', f.seed, 0),
      onTick: (tick) => {
        if (bar) bar.update(Math.min(Math.round(tick.elapsedMs), Math.round(duration * 1000)), { sent: tick.sent, p99: tick.p99Ms, errors: tick.errors });
        else process.stderr.write(`t=${(tick.elapsedMs / 1000).toFixed(0)}s sent=${tick.sent} done=${tick.done} errors=${tick.errors} p99=${tick.p99Ms}ms\n`);
      },
    });
    bar?.stop();
    await record.close();
    return { target: t.base, model: t.model, sizes: f.sizes, zipf: Number(f.zipf), ...result };
  } finally {
    await t.close();
  }
}

export interface CapacityFlags extends LoadFlags {
  targetMs?: string;
  percentile: string;
  levelSeconds: string;
  startQps: string;
  precision: string;
  maxLevels: string;
}

export async function capacityCommand(f: CapacityFlags, log: (line: string) => void) {
  const percentile = num('percentile', f.percentile, 1);
  const levelMs = num('level-seconds', f.levelSeconds, 0.1) * 1000;
  const sizes = parseSizes(f.sizes);
  const t = await openTarget(f);
  try {
    const target = f.targetMs !== undefined ? num('target-ms', f.targetMs, 0.001) : t.rm ? parseDurationMs(resolveSpec(t.rm.spec)) : undefined;
    if (target === undefined) throw new CliError('give --target-ms (or --local with a RecModel, whose spec.serving.latencyTarget is used)');
    const queries = workloadOf(f, t.info, sizes);
    const result = await measureCapacity({
      predictUrl: `${t.base}${predictPath(t.model)}`,
      queries,
      targetMs: target,
      percentile,
      levelMs,
      startQps: num('start-qps', f.startQps, 0.01),
      precision: num('precision', f.precision, 1.001),
      maxLevels: num('max-levels', f.maxLevels, 1),
      timeoutMs: num('timeout-ms', f.timeoutMs, 1),
      seed: num('seed', f.seed, 0),
      warmupSeed: 0,
      onLevel: (l) =>
        log(`${l.pass ? 'pass' : 'FAIL'}  ${String(l.qps).padStart(8)} QPS  p${percentile} ${l.latencyMs} ms${l.errors ? `  ${l.errors} errors` : ''}`),
    });
    return { model: t.model, targetMs: target, percentile, sizes: f.sizes, ...result };
  } finally {
    await t.close();
  }
}

function parseDurationMs(r: ReturnType<typeof resolveSpec>): number | undefined {
  return r.ok ? durationMs(r.spec.serving.latencyTarget) : undefined;
}

export function formatLoadResult(r: Awaited<ReturnType<typeof loadCommand>>): string {
  const l = r.latencyMs;
  return [
    `${r.model} at ${r.target}: offered ${r.offeredQps} QPS for ${r.durationS} s, query sizes ${r.sizes} (mean ${r.meanQuerySize}), zipf ${r.zipf}`,
    `achieved ${r.achievedQps} QPS (${r.samplesPerSecond} samples/s); ${r.ok} ok, ${r.errors} errors, ${r.timeouts} timeouts`,
    `latency ms: p50 ${l.p50}  p95 ${l.p95}  p99 ${l.p99}  p99.9 ${l.p999}  max ${l.max}`,
    '',
  ].join('\n');
}
