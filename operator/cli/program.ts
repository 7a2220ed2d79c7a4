// The recshard command line: commands as functions that return their output (tested directly), wired into commander.
import { durationMs } from '../lib/duration.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { Presets, SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import { parseAllDocuments } from 'yaml';
import { API_VERSION, checkEnvelope, formatFieldErrors, POLICY_KIND, resolvePolicySpec, resolveSpec, type LatencyScalingPolicy, type RecModel } from '../api/v1alpha1/index.js';
import { formatPlan, type OutputFormat } from '../planner/format.js';
import { planModel } from '../planner/plan.js';
import { formatBytes } from '../lib/quantity.js';
import { generateModel } from '../../shard-server/model/generate.js';
import { ARCHITECTURES, ZOO } from '../../shard-server/model/zoo.js';
import { serveLocal } from '../../shard-server/local.js';
import { parseSizeSpec, type SizeSpec } from '../../loadgen/distributions.js';
import { measureCapacity } from '../../loadgen/capacity.js';
import { runLoad, type LoadResult } from '../../loadgen/run.js';
import { buildQueries, type ModelInfo } from '../../loadgen/workload.js';

/** Thrown for user errors: printed without a stack, exit code 1. */
export class CliError extends Error {}

/** Reads every RecModel document of a YAML or JSON file. */
export function readRecModels(file: string): RecModel[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const docs = parseAllDocuments(text);
  const out: RecModel[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length) throw new CliError(`${file}: invalid YAML: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    // a LatencyScalingPolicy beside the models it scales is checked, not planned
    const policy = value as Partial<LatencyScalingPolicy>;
    if (policy.kind === POLICY_KIND && policy.apiVersion === API_VERSION) {
      const r = resolvePolicySpec(policy.spec);
      if (!r.ok) throw new CliError(`${file}: LatencyScalingPolicy ${policy.metadata?.name ?? '(unnamed)'} is invalid: ${formatFieldErrors(r.errors)}`);
      continue;
    }
    const envelope = checkEnvelope(value);
    if (envelope.length) throw new CliError(`${file}: not a RecModel: ${formatFieldErrors(envelope)}`);
    out.push(value as RecModel);
  }
  if (!out.length) throw new CliError(`${file}: no RecModel found`);
  return out;
}

export function planCommand(file: string, format: OutputFormat): string {
  return readRecModels(file)
    .map((rm) => {
      const resolved = resolveSpec(rm.spec);
      if (!resolved.ok) throw new CliError(`RecModel ${rm.metadata.name} is invalid: ${formatFieldErrors(resolved.errors)}`);
      const result = planModel(resolved.spec);
      if (!result.ok) throw new CliError(`RecModel ${rm.metadata.name}: plan is ${result.error.reason}: ${result.error.message}`);
      return formatPlan(rm.metadata.name, result.plan, format);
    })
    .join(format === 'yaml' ? '---\n' : '\n');
}

export function buildProgram(name = 'recshard'): Command {
  const program = new Command(name).description('Serve sharded neural recommendation models on Kubernetes').showHelpAfterError();
  program
    .command('plan')
    .description('print the shard plan of a RecModel file: tables, bytes, capacity and expected lookups per shard')
    .argument('<file>', 'RecModel YAML or JSON (several documents allowed)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json', 'yaml']).default('table'))
    .action((file: string, opts: { output: OutputFormat }) => {
      process.stdout.write(planCommand(file, opts.output));
    });
  const model = program.command('model').description('model artifacts');
  model
    .command('generate')
    .description('write a DeepRecInfra model with deterministic random weights (manifest, ONNX dense nets, table files)')
    .addOption(new Option('--arch <arch>', 'architecture').choices(ARCHITECTURES).makeOptionMandatory())
    .option('--scale <s>', 'multiply table rows (a laptop-sized model: 0.001)', '0.001')
    .option('--seed <n>', 'random seed; the same seed gives the same bytes', '1')
    .requiredOption('--out <dir>', 'output directory')
    .action((opts: { arch: string; scale: string; seed: string; out: string }) => {
      process.stdout.write(generateCommand(opts.arch, Number(opts.scale), Number(opts.seed), opts.out));
    });
  withScheduling(program
    .command('serve'))
    .description('serve a RecModel locally: the main and each sparse shard as processes on loopback')
    .requiredOption('--local <file>', 'RecModel file (the first RecModel in it)')
    .option('--model <dir>', 'model directory (default: generate one from the RecModel)')
    .option('--scale <s>', 'row scale of a generated model', '0.001')
    .option('--seed <n>', 'seed of a generated model', '1')
    .action(async (opts: { local: string; model?: string; scale: string; seed: string } & SchedulingFlags) => {
      const rm = readRecModels(opts.local)[0]!;
      const d = await serveLocal(rm, { modelDir: opts.model, scale: Number(opts.scale), seed: Number(opts.seed), ...schedulingOf(opts), log: (l) => console.log(l) });
      console.log(`${rm.metadata.name}: ${d.plan.strategy}, ${d.plan.shards.length} sparse shard(s), model in ${d.modelDir}`);
      for (const p of d.processes) console.log(`  ${p.name.padEnd(8)} http://127.0.0.1:${p.port}`);
      console.log(`predict: POST ${d.predictUrl}   (Ctrl-C stops)`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await d.stop();
    });
  withTargetAndWorkload(program.command('load').description('open-loop DeepRecInfra load against a main (Poisson arrivals, HDR latency histogram)'))
    .option('--qps <n>', 'offered queries per second', '50')
    .option('--duration <s>', 'seconds of load', '10')
    .option('--json <file>', 'write the results as JSON to this file')
    .action(async (opts: LoadFlags) => {
      const result = await loadCommand(opts, process.stderr.isTTY === true);
      process.stdout.write(formatLoadResult(result));
      if (opts.json) writeFileSync(opts.json, JSON.stringify(result, null, 2) + '\n');
    });
  const bench = program.command('bench').description('benchmarks');
  withTargetAndWorkload(bench.command('capacity').description('latency-bounded throughput: the highest QPS whose tail latency stays under the target'))
    .option('--target-ms <ms>', 'latency target (default: the RecModel\'s spec.serving.latencyTarget)')
    .option('--percentile <p>', 'percentile held under the target', '95')
    .option('--level-seconds <s>', 'seconds of load at each level', '5')
    .option('--start-qps <n>', 'first load level', '5')
    .option('--precision <r>', 'stop when the failing level is within this ratio of the passing one', '1.1')
    .option('--max-levels <n>', 'at most this many levels', '12')
    .option('--json <file>', 'write the search as JSON')
    .action(async (opts: CapacityFlags) => {
      const r = await capacityCommand(opts, (l) => process.stderr.write(`${l}\n`));
      process.stdout.write(`${r.model}: latency-bounded throughput ${r.qps} QPS at p${r.percentile} <= ${r.targetMs} ms (query sizes ${r.sizes}, ${r.levels.length} levels)\n`);
      if (opts.json) writeFileSync(opts.json, JSON.stringify(r, null, 2) + '\n');
    });
  return program;
}

/** The options load and bench capacity share: where the main is, and what queries to send it. */
function withTargetAndWorkload(cmd: Command): Command {
  cmd
    .option('--url <url>', 'base URL of a main, e.g. http://127.0.0.1:8080')
    .option('--model <name>', 'model name at that URL')
    .option('--local <file>', 'bring up the RecModel in this file locally (as serve --local) and load it')
    .option('--sizes <spec>', 'query sizes: fixed:N, normal:MEAN,SD, lognormal:MU,SIGMA, production, file:PATH', 'production')
    .option('--zipf <s>', 'Zipf exponent of row popularity (0 = uniform)', '0')
    .option('--seed <n>', 'seed of sizes, rows and arrivals', '1')
    .option('--timeout-ms <n>', 'client timeout per query', '5000')
    .option('--pool <n>', 'distinct queries generated and cycled', '256')
    .option('--scale <s>', 'row scale of a model generated for --local', '0.001');
  return withScheduling(cmd);
}

/** The main's scheduling, for a RecModel served with --local (overrides its spec.serving). */
function withScheduling(cmd: Command): Command {
  return cmd
    .addOption(new Option('--scheduler <mode>', 'local main: auto tunes the batch size online, fixed uses --batch-size').choices(['auto', 'fixed']))
    .option('--batch-size <n>', 'local main: samples per request part (B)')
    .option('--workers <n>', 'local main: worker threads (0 = on the event loop)');
}

interface SchedulingFlags {
  scheduler?: 'auto' | 'fixed';
  batchSize?: string;
  workers?: string;
}

function schedulingOf(f: SchedulingFlags) {
  return {
    scheduler: f.scheduler,
    batchSize: f.batchSize === undefined ? undefined : num('batch-size', f.batchSize, 1),
    workers: f.workers === undefined ? undefined : num('workers', f.workers, 0),
  };
}

interface LoadFlags extends SchedulingFlags {
  url?: string;
  model?: string;
  local?: string;
  qps: string;
  duration: string;
  sizes: string;
  zipf: string;
  seed: string;
  timeoutMs: string;
  pool: string;
  scale: string;
  json?: string;
}

interface Target {
  base: string;
  model: string;
  info: ModelInfo;
  rm?: RecModel;
  close(): Promise<void>;
}

const num = (name: string, v: string, min: number) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new CliError(`--${name} must be a number >= ${min}, got ${JSON.stringify(v)}`);
  return n;
};

/** The main to load: one at --url, or a RecModel brought up locally from --local. */
async function openTarget(f: { url?: string; model?: string; local?: string; scale: string } & SchedulingFlags): Promise<Target> {
  if (!f.local && !(f.url && f.model)) throw new CliError('give --local FILE, or --url URL and --model NAME');
  const rm = f.local ? readRecModels(f.local)[0]! : undefined;
  const local = rm ? await serveLocal(rm, { scale: num('scale', f.scale, 1e-9), seed: 1, ...schedulingOf(f) }) : undefined;
  const close = async () => void (await local?.stop());
  try {
    const base = local?.mainUrl ?? f.url!.replace(/\/+$/, '');
    const model = rm?.metadata.name ?? f.model!;
    const res = await fetch(`${base}/v1/models/${model}`).catch((e: Error) => {
      throw new CliError(`cannot reach ${base}: ${e.message}`);
    });
    if (!res.ok) throw new CliError(`GET ${base}/v1/models/${model} answered ${res.status}: ${await res.text()}`);
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

export async function loadCommand(f: LoadFlags, tty: boolean): Promise<LoadResult & { target: string; model: string; sizes: string; zipf: number }> {
  const qps = num('qps', f.qps, 0.001);
  const duration = num('duration', f.duration, 0.1);
  const sizes = parseSizes(f.sizes);
  const t = await openTarget(f);
  try {
    const queries = workloadOf(f, t.info, sizes);
    const bar = tty ? new SingleBar({ format: 'load |{bar}| {percentage}% | {sent} sent | p99 {p99} ms | errors {errors}', hideCursor: true }, Presets.shades_classic) : undefined;
    bar?.start(Math.round(duration * 1000), 0, { sent: 0, p99: 0, errors: 0 });
    const result = await runLoad({
      predictUrl: `${t.base}/v1/models/${t.model}:predict`, qps, durationMs: duration * 1000, timeoutMs: num('timeout-ms', f.timeoutMs, 1), queries, seed: num('seed', f.seed, 0),
      onTick: (tick) => {
        if (bar) bar.update(Math.min(Math.round(tick.elapsedMs), Math.round(duration * 1000)), { sent: tick.sent, p99: tick.p99Ms, errors: tick.errors });
        else process.stderr.write(`t=${(tick.elapsedMs / 1000).toFixed(0)}s sent=${tick.sent} done=${tick.done} errors=${tick.errors} p99=${tick.p99Ms}ms\n`);
      },
    });
    bar?.stop();
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
      predictUrl: `${t.base}/v1/models/${t.model}:predict`, queries, targetMs: target, percentile, levelMs,
      startQps: num('start-qps', f.startQps, 0.01),
      precision: num('precision', f.precision, 1.001),
      maxLevels: num('max-levels', f.maxLevels, 1),
      timeoutMs: num('timeout-ms', f.timeoutMs, 1),
      seed: num('seed', f.seed, 0),
      warmupSeed: 0,
      onLevel: (l) => log(`${l.pass ? 'pass' : 'FAIL'}  ${String(l.qps).padStart(8)} QPS  p${percentile} ${l.latencyMs} ms${l.errors ? `  ${l.errors} errors` : ''}`),
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

export function generateCommand(arch: string, scale: number, seed: number, out: string): string {
  const shape = ZOO[arch];
  if (!shape) throw new CliError(`unknown architecture ${arch}; one of ${ARCHITECTURES.join(', ')}`);
  if (!(scale > 0 && scale <= 1)) throw new CliError(`--scale must be in (0, 1], got ${scale}`);
  const resolved = resolveSpec({ model: shape });
  if (!resolved.ok) throw new Error(formatFieldErrors(resolved.errors));
  const m = generateModel({ name: arch, model: resolved.spec.model, seed, scale, outDir: out });
  const bytes = m.tables.reduce((n, t) => n + t.bytes, 0);
  return `wrote ${arch} to ${out}: ${m.tables.length} tables (${formatBytes(bytes)}), dense ${m.denseFeatures} -> [${m.bottomMLP.join(',')}] -> ${m.interaction} (${m.topInput}) -> [${m.topMLP.join(',')}]\n`;
}

export async function main(argv: string[], name?: string): Promise<void> {
  try {
    await buildProgram(name).parseAsync(argv);
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}
