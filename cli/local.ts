// Local serving: the main and every sparse shard of a RecModel as shard-server processes on loopback,
// configured exactly as the operator configures the pods (the same planner, plan.json, model.json and flags).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { predictPath, READY_PATH } from '../contracts/endpoints.js';
import { shardServerArgs, type ShardServerArgs } from '../contracts/shard-server-args.js';
import { freePorts } from '../lib/net.js';
import { findRepoFile } from '../lib/paths.js';
import { generateModel } from '../models/generate.js';
import { formatFieldErrors, resolveSpec, type RecModel, type ResolvedRecModelSpec } from '../operator/api/v1alpha1/index.js';
import { MODEL_KEY, modelConfig, PLAN_KEY, servingPlan, servingVersion } from '../operator/builders/serving-files.js';
import { planModel, type Plan } from '../operator/planner/plan.js';

export interface LocalOptions {
  /** A model directory to serve; when absent one is generated from the RecModel (cached by shape, seed, scale). */
  modelDir?: string;
  scale: number;
  seed: number;
  failurePolicy?: 'fail' | 'zero';
  deadlineMs?: number;
  /** Request body limit of every process (default: the shard-server's). */
  maxBodyBytes?: number;
  /** Overrides of the main's scheduling (the RecModel's serving section sets the rest). */
  scheduler?: 'auto' | 'fixed';
  batchSize?: number;
  workers?: number;
  /** Testing: the main also holds a serial lane this long per request (a server of 1000/N requests/s using no CPU). */
  emulateServiceMs?: number;
  /** Where process logs go. */
  logDir?: string;
  log?: (line: string) => void;
}

export interface LocalProcess {
  name: string;
  port: number;
  args: string[];
  proc: ChildProcess;
}

export interface LocalDeployment {
  spec: ResolvedRecModelSpec;
  plan: Plan;
  modelDir: string;
  mainUrl: string;
  predictUrl: string;
  processes: LocalProcess[];
  /** CPU seconds (user + system) every process of the deployment has used so far (Linux /proc). */
  cpuSeconds(): number;
  /** Kills one process (SIGKILL) and returns a function that starts it again on the same port. */
  kill(name: string): Promise<() => Promise<void>>;
  stop(): Promise<void>;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** utime + stime of a process from /proc/PID/stat, in seconds; 0 once it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

export async function waitReady(url: string, timeoutMs: number, procs: LocalProcess[] = []): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    for (const p of procs) if (p.proc.exitCode !== null) throw new Error(`${p.name} exited with code ${p.proc.exitCode}`);
    try {
      const res = await fetch(`${url}${READY_PATH}`, { signal: AbortSignal.timeout(1000) });
      last = (await res.text()).trim();
      if (res.ok) return;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${last}`);
}

export function resolveLocal(rm: RecModel): { spec: ResolvedRecModelSpec; plan: Plan } {
  const r = resolveSpec(rm.spec);
  if (!r.ok) throw new Error(`RecModel ${rm.metadata.name} is invalid: ${formatFieldErrors(r.errors)}`);
  const p = planModel(r.spec);
  if (!p.ok) throw new Error(`RecModel ${rm.metadata.name}: plan is ${p.error.reason}: ${p.error.message}`);
  return { spec: r.spec, plan: p.plan };
}

/** Generates (once) the model a RecModel describes, at a scale, into a cache directory. */
export function ensureModel(rm: RecModel, spec: ResolvedRecModelSpec, scale: number, seed: number, log: (l: string) => void): string {
  const key = createHash('sha256')
    // manifest 2: manifests say their scale (checked against the spec since); models cached before are regenerated
    .update(JSON.stringify({ model: spec.model, scale, seed, manifest: 2 }))
    .digest('hex')
    .slice(0, 12);
  const dir = join(tmpdir(), 'recshard-models', `${rm.metadata.name}-${key}`);
  if (existsSync(join(dir, 'manifest.json'))) return dir;
  log(`generating ${spec.model.architecture} model for ${rm.metadata.name} at scale ${scale} into ${dir}`);
  generateModel({ name: rm.metadata.name, model: spec.model, seed, scale, outDir: dir });
  return dir;
}

/** plan.json and model.json in `dir`, as the operator writes them into the plan ConfigMap, with loopback endpoints. */
export function writeServingFiles(
  dir: string,
  name: string,
  spec: ResolvedRecModelSpec,
  plan: Plan,
  modelDir: string,
  shardPorts: number[],
): { plan: string; modelConfig: string } {
  const files = { plan: join(dir, PLAN_KEY), modelConfig: join(dir, MODEL_KEY) };
  const version = servingVersion(spec, plan, 'local', modelDir);
  const doc = servingPlan(name, plan, version, {}, (s) => ({ endpoint: `http://127.0.0.1:${shardPorts[s.index]}` }));
  writeFileSync(files.plan, JSON.stringify(doc, null, 2));
  writeFileSync(files.modelConfig, JSON.stringify(modelConfig(spec, modelDir), null, 2));
  return files;
}

/** Stops every process (SIGTERM, then SIGKILL after 5 s) and waits for each to exit. */
function stopAll(processes: LocalProcess[]): Promise<void> {
  const stopOne = (p: LocalProcess) =>
    new Promise<void>((resolve) => {
      if (p.proc.exitCode !== null || p.proc.signalCode !== null) return resolve();
      p.proc.once('exit', () => resolve());
      p.proc.kill('SIGTERM');
      setTimeout(() => p.proc.kill('SIGKILL'), 5000).unref();
    });
  return Promise.all(processes.map(stopOne)).then(() => {});
}

/** The shard-server processes of a plan: one per sparse shard and the main, each logging to runDir. */
function launchAll(runDir: string, plan: Plan, args: { sparse: (shard: number) => string[]; main: string[] }, ports: { shards: number[]; main: number }) {
  const entry = findRepoFile('dist', 'shard-server', 'main.js');
  const launch = (name: string, port: number, argv: string[]): LocalProcess => {
    const out = openSync(join(runDir, `${name}.log`), 'a');
    const proc = spawn(process.execPath, [entry, ...argv], { stdio: ['ignore', out, out] });
    return { name, port, args: argv, proc };
  };
  const processes = plan.shards.map((s, i) => launch(`shard-${s.index}`, ports.shards[i]!, args.sparse(s.index)));
  processes.push(launch('main', ports.main, args.main));
  return { processes, launch };
}

/** Each process's flags, as the operator gives them to its pods, on loopback, with the options' overrides. */
function argsOf(o: LocalOptions, files: { plan: string; modelConfig: string }, modelDir: string, ports: { shards: number[]; main: number }) {
  const common = {
    plan: files.plan,
    modelConfig: files.modelConfig,
    model: modelDir,
    host: '127.0.0.1',
    deadlineMs: o.deadlineMs ?? 1000,
    failurePolicy: o.failurePolicy ?? 'fail',
    probeMs: 250,
    ...(o.maxBodyBytes ? { maxBodyBytes: o.maxBodyBytes } : {}),
  } satisfies Partial<ShardServerArgs>;
  // model.json's serving section carries the scheduling settings; the options override them
  const scheduling = { scheduler: o.scheduler, batchSize: o.batchSize, workers: o.workers, emulateServiceMs: o.emulateServiceMs };
  return {
    sparse: (shard: number) => shardServerArgs({ ...common, role: 'sparse', shard, port: ports.shards[shard]! }),
    main: shardServerArgs({ ...common, role: 'main', port: ports.main, ...scheduling }),
  };
}

/** SIGKILLs one process; the function returned starts it again on the same port and waits until it is ready. */
async function killOne(processes: LocalProcess[], name: string, launch: (name: string, port: number, args: string[]) => LocalProcess) {
  const i = processes.findIndex((p) => p.name === name);
  const p = processes[i]!;
  await new Promise<void>((resolve) => {
    p.proc.once('exit', () => resolve());
    p.proc.kill('SIGKILL');
  });
  return async () => {
    processes[i] = launch(p.name, p.port, p.args);
    await waitReady(`http://127.0.0.1:${p.port}`, 30_000, [processes[i]!]);
  };
}

export async function serveLocal(rm: RecModel, o: LocalOptions): Promise<LocalDeployment> {
  const { spec, plan } = resolveLocal(rm);
  const modelDir = o.modelDir ?? ensureModel(rm, spec, o.scale, o.seed, o.log ?? (() => {}));
  const name = rm.metadata.name;
  const runDir = o.logDir ?? join(tmpdir(), 'recshard-local', `${name}-${process.pid}-${Date.now()}`);
  mkdirSync(runDir, { recursive: true });
  const [main, ...shards] = await freePorts(plan.shards.length + 1);
  const ports = { shards, main: main! };
  const files = writeServingFiles(runDir, name, spec, plan, modelDir, ports.shards);
  const { processes, launch } = launchAll(runDir, plan, argsOf(o, files, modelDir, ports), ports);
  const stop = () => stopAll(processes);
  const mainUrl = `http://127.0.0.1:${ports.main}`;
  try {
    await waitReady(mainUrl, 60_000, processes);
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message} (logs in ${runDir})`);
  }
  return {
    spec,
    plan,
    modelDir,
    mainUrl,
    predictUrl: `${mainUrl}${predictPath(name)}`,
    processes,
    stop,
    cpuSeconds: () => processes.reduce((sum, p) => sum + (p.proc.pid ? processCpuSeconds(p.proc.pid) : 0), 0),
    kill: (pname) => killOne(processes, pname, launch),
  };
}
