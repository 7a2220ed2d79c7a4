// Shared pieces of the benchmarks: serving a RecModel locally, capacity searches, open-loop load, CPU time of
// every process of a deployment (from /proc), and the machine description each result is stated against.
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { serveLocal, type LocalDeployment, type LocalOptions } from '../cli/local.js';
import type { ModelInfo } from '../contracts/model-info.js';
import { PREDICT_CONTENT_TYPE } from '../contracts/wire/predict.js';
import { measureCapacity } from '../loadgen/capacity.js';
import { parseSizeSpec } from '../loadgen/distributions.js';
import { runLoad, type LoadResult } from '../loadgen/run.js';
import { buildQueries, type Query } from '../loadgen/workload.js';
import { readRecModels } from '../operator/api/v1alpha1/documents.js';
import type { RecModel } from '../operator/api/v1alpha1/index.js';

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  os: string;
}

export function machine(): Machine {
  let os = '';
  try {
    os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    os = process.platform;
  }
  return { cpuModel: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, os };
}

/** The first RecModel of an example file, optionally with its sharding replaced. */
export function example(file: string, sharding?: RecModel['spec']['sharding'], name?: string): RecModel {
  const rm = readRecModels(new URL(`../examples/${file}`, import.meta.url).pathname)[0]!;
  return { ...rm, metadata: { ...rm.metadata, name: name ?? rm.metadata.name }, spec: { ...rm.spec, ...(sharding ? { sharding } : {}) } };
}

export const SCALE = 0.001;

export async function serve(rm: RecModel, o: Partial<LocalOptions> = {}): Promise<{ d: LocalDeployment; info: ModelInfo }> {
  const d = await serveLocal(rm, { scale: SCALE, seed: 1, ...o });
  const info = (await (await fetch(`${d.mainUrl}/v1/models/${rm.metadata.name}`)).json()) as ModelInfo;
  return { d, info };
}

export function queries(info: ModelInfo, sizes = 'production', pool = 512): Query[] {
  return buildQueries(info, { sizes: parseSizeSpec(sizes, () => ''), zipf: 0, seed: 7, pool });
}

export function load(d: LocalDeployment, qs: Query[], qps: number, seconds: number, percentile = 95): Promise<LoadResult> {
  return runLoad({ predictUrl: d.predictUrl, qps, durationMs: seconds * 1000, timeoutMs: 10_000, queries: qs, seed: 3, tailPercentile: percentile });
}

/** Latencies (ms) of `count` queries sent one at a time: service times without queueing. */
export async function oneAtATime(d: LocalDeployment, qs: Query[], count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    const res = await fetch(d.predictUrl, {
      method: 'POST',
      headers: { 'content-type': PREDICT_CONTENT_TYPE },
      body: qs[i % qs.length]!.body as unknown as BodyInit,
    });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`predict answered ${res.status}`);
    out.push(performance.now() - t);
  }
  return out;
}

export interface CapacityRun {
  qps: number;
  levels: { qps: number; latencyMs: number; pass: boolean }[];
  /** The target held at every level measured, so qps is a lower bound. */
  censored?: boolean;
}

/**
 * Latency-bounded throughput on a fixed grid of load levels, the same for every configuration compared, so
 * the comparison is not at the mercy of where an adaptive search happened to land; a configuration that holds
 * the target at the top of the grid continues up the same geometric steps (x1.2) until it fails. The capacity is where the
 * tail latency crosses the target, interpolated between the last level that held it and the first miss that the
 * next level confirms (two misses in a row, or a miss at the last level).
 */
export async function gridCapacity(
  d: LocalDeployment,
  qs: Query[],
  o: { targetMs: number; grid: number[]; levelSeconds: number; warmupQps: number },
): Promise<CapacityRun> {
  await load(d, qs, o.warmupQps, 3);
  const levels: CapacityRun['levels'] = [];
  // The grid, then (when the target still holds at its top) the same geometric continuation for everyone.
  const extra = 6;
  for (let i = 0; i < o.grid.length + extra; i++) {
    const qps = i < o.grid.length ? o.grid[i]! : round(o.grid.at(-1)! * 1.2 ** (i - o.grid.length + 1), 1);
    if (i >= o.grid.length && levels.some((l) => !l.pass)) break;
    const l = await load(d, qs, qps, o.levelSeconds);
    const pass = l.errors + l.timeouts === 0 && l.latencyMs.tail <= o.targetMs;
    levels.push({ qps, latencyMs: l.latencyMs.tail, pass });
    if (!pass && levels.length >= 2 && !levels[levels.length - 2]!.pass) break; // two fails in a row: past the knee
  }
  // the knee: the first miss that the next level confirms (or the last level); a lone miss between passes is a
  // noise spike on a shared machine, kept in the levels but not taken for the capacity
  const firstFail = levels.findIndex((l, i) => !l.pass && (i === levels.length - 1 || !levels[i + 1]!.pass));
  if (firstFail < 0) return { qps: levels.at(-1)!.qps, levels, censored: true };
  if (firstFail === 0) return { qps: 0, levels };
  const a = levels[firstFail - 1]!;
  const b = levels[firstFail]!;
  // linear in log latency between the bracketing levels
  const f = (Math.log(o.targetMs) - Math.log(a.latencyMs)) / (Math.log(b.latencyMs) - Math.log(a.latencyMs));
  return { qps: round(a.qps + Math.max(0, Math.min(1, f)) * (b.qps - a.qps), 1), levels };
}

/** Latency-bounded throughput: p95 under the target, after a warm-up. */
export async function capacity(
  d: LocalDeployment,
  qs: Query[],
  o: { targetMs: number; startQps: number; levelSeconds: number; precision: number; maxLevels: number },
): Promise<CapacityRun> {
  const r = await measureCapacity({
    predictUrl: d.predictUrl,
    queries: qs,
    targetMs: o.targetMs,
    percentile: 95,
    startQps: o.startQps,
    levelMs: o.levelSeconds * 1000,
    precision: o.precision,
    maxLevels: o.maxLevels,
    timeoutMs: 10_000,
    seed: 3,
  });
  return { qps: r.qps, levels: r.levels.map((l) => ({ qps: l.qps, latencyMs: l.latencyMs, pass: l.pass })) };
}

/** Seconds the main has spent in each stage so far, summed over its predicts, and how many predicts it answered. */
export async function stageSums(url: string): Promise<{ sums: Record<string, number>; count: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sums: Record<string, number> = {};
  let count = 0;
  for (const m of text.matchAll(/^recshard_request_duration_seconds_(sum|count)\{[^}]*stage="([a-z_]+)"[^}]*\} (\S+)$/gm)) {
    if (m[1] === 'sum') sums[m[2]!] = (sums[m[2]!] ?? 0) + Number(m[3]);
    else if (m[2] === 'end_to_end') count += Number(m[3]);
  }
  return { sums, count };
}

export const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}
