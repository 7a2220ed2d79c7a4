// Local serving: the main and every sparse shard of a RecModel (optionally several replicas of each) as shard-server
// processes on loopback, configured exactly as the operator configures the pods (the same planner, plan.json,
// model.json and flags), and supervised as a kubelet would (cli/supervisor.ts). Each child has an IPC channel to
// this process, so it exits when this process goes, however it goes.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
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
import { Supervisor, type Unit } from './supervisor.js';

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
  /** Processes per sparse shard (default 1): shard-S, shard-S-r1, ..., each on its own port, all listed in plan.json. */
  shardReplicas?: number;
  /** The main's hedging of calls to a shard's replicas (--hedge-percentile; default: the shard-server's, 0: off). */
  hedgePercentile?: number;
  /** How often the main re-chooses its hot rows (spec.serving.hotRowCache sets their budget). */
  hotRowRefreshMs?: number;
  /** Restart a process that exits by itself, on its port with its args, after an exponential backoff (default true). */
  supervise?: boolean;
  /** Where process logs go (and plan.json, model.json). */
  logDir?: string;
  /** Progress lines: the model generated, each restart. */
  log?: (line: string) => void;
}

export interface LocalProcess extends Unit<ChildProcess> {
  name: string;
  port: number;
  args: string[];
  /** The current process: a restart replaces it. */
  proc: ChildProcess;
  /** Restarts by supervision (not those of kill()'s restart function). */
  restarts: number;
  /** The backoff the latest restart waited, ms. */
  backoffMs?: number;
}

export interface LocalDeployment {
  spec: ResolvedRecModelSpec;
  plan: Plan;
  modelDir: string;
  /** Where plan.json, model.json and each process's log are. */
  runDir: string;
  mainUrl: string;
  predictUrl: string;
  processes: LocalProcess[];
  /** CPU seconds (user + system) every process of the deployment has used so far (Linux /proc). */
  cpuSeconds(): number;
  /**
   * Kills one process (SIGKILL) and returns a function that starts it again on the same port; until that is
   * called, supervision leaves the process down.
   */
  kill(name: string): Promise<() => Promise<void>>;
  /** Ends supervision, then stops every process. */
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

/** Where a shard's processes answer: its replicas' ports, replica 0 first (a number: one process). */
export type ShardPorts = number | readonly number[];

const loopback = (port: number) => `http://127.0.0.1:${port}`;

/** plan.json and model.json in `dir`, as the operator writes them into the plan ConfigMap, with loopback endpoints. */
export function writeServingFiles(
  dir: string,
  name: string,
  spec: ResolvedRecModelSpec,
  plan: Plan,
  modelDir: string,
  shardPorts: readonly ShardPorts[],
): { plan: string; modelConfig: string } {
  const files = { plan: join(dir, PLAN_KEY), modelConfig: join(dir, MODEL_KEY) };
  const version = servingVersion(spec, plan, 'local', modelDir);
  // a shard of several replicas: the endpoint is replica 0, `replicas` all of them; one process: no `replicas`
  const endpoint = (ports: ShardPorts) => {
    const urls = [ports].flat().map(loopback);
    return urls.length > 1 ? { endpoint: urls[0]!, replicas: urls } : { endpoint: urls[0]! };
  };
  const doc = servingPlan(name, plan, version, {}, (s) => endpoint(shardPorts[s.index]!));
  writeFileSync(files.plan, JSON.stringify(doc, null, 2));
  writeFileSync(files.modelConfig, JSON.stringify(modelConfig(spec, modelDir), null, 2));
  return files;
}

/** Sends `signal` to a process unless it has exited; resolves once it has. */
function exited(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });
}

/** Stops every process (SIGTERM, then SIGKILL after 5 s) and waits for each to exit. */
async function stopAll(processes: LocalProcess[]): Promise<void> {
  const stopOne = (p: LocalProcess) => {
    const kill = setTimeout(() => p.proc.kill('SIGKILL'), 5000).unref();
    return exited(p.proc, 'SIGTERM').finally(() => clearTimeout(kill));
  };
  await Promise.all(processes.map(stopOne));
}

/** Starts one shard-server process, logging to runDir/NAME.log, with an IPC channel: it exits when this process goes. */
function spawnShardServer(runDir: string, name: string, argv: string[]): ChildProcess {
  const out = openSync(join(runDir, `${name}.log`), 'a');
  try {
    return spawn(process.execPath, [findRepoFile('dist', 'shard-server', 'main.js'), ...argv], { stdio: ['ignore', out, out, 'ipc'] });
  } finally {
    closeSync(out); // the child has its own copy
  }
}

interface Ports {
  main: number;
  /** Per shard, its replicas' ports (replica 0 first). */
  shards: number[][];
}

/** Every port at once (freePorts), so that none coincide: the main's, then each shard's replicas'. */
async function allocatePorts(shards: number, replicas: number): Promise<Ports> {
  const [main, ...rest] = await freePorts(1 + shards * replicas);
  return { main: main!, shards: Array.from({ length: shards }, (_, s) => rest.slice(s * replicas, (s + 1) * replicas)) };
}

/** shard-S for replica 0 (the name a single replica has always had), shard-S-rN for the others. */
const replicaName = (shard: number, replica: number) => (replica === 0 ? `shard-${shard}` : `shard-${shard}-r${replica}`);

/** The shard-server processes of a plan: each replica of each sparse shard, then the main. */
function launchAll(runDir: string, plan: Plan, args: { sparse: (shard: number, port: number) => string[]; main: string[] }, ports: Ports): LocalProcess[] {
  const launch = (name: string, port: number, argv: string[]): LocalProcess => ({
    name,
    port,
    args: argv,
    proc: spawnShardServer(runDir, name, argv),
    restarts: 0,
  });
  const processes = plan.shards.flatMap((s, i) => ports.shards[i]!.map((port, r) => launch(replicaName(s.index, r), port, args.sparse(s.index, port))));
  processes.push(launch('main', ports.main, args.main));
  return processes;
}

/** Each process's flags, as the operator gives them to its pods, on loopback, with the options' overrides. */
function argsOf(o: LocalOptions, files: { plan: string; modelConfig: string }, modelDir: string, mainPort: number) {
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
    sparse: (shard: number, port: number) => shardServerArgs({ ...common, role: 'sparse', shard, port }),
    main: shardServerArgs({ ...common, role: 'main', port: mainPort, ...scheduling, hedgePercentile: o.hedgePercentile, hotRowRefreshMs: o.hotRowRefreshMs }),
  };
}

/**
 * SIGKILLs one process, its supervision suspended so that nothing restarts it; the function returned resumes
 * supervision, starting it again on the same port (once, however often it is called), and waits until it is ready.
 */
async function killOne(supervisor: Supervisor<LocalProcess>, processes: LocalProcess[], name: string): Promise<() => Promise<void>> {
  const p = processes.find((x) => x.name === name);
  if (!p) throw new Error(`no process named ${name}`);
  supervisor.suspend(name);
  await exited(p.proc, 'SIGKILL');
  let restarted: Promise<void> | undefined;
  return () =>
    (restarted ??= (async () => {
      supervisor.resume(name);
      await waitReady(loopback(p.port), 30_000, [p]);
    })());
}

function replicasOf(o: LocalOptions): number {
  const n = o.shardReplicas ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new Error(`shardReplicas must be an integer >= 1, got ${n}`);
  return n;
}

export async function serveLocal(rm: RecModel, o: LocalOptions): Promise<LocalDeployment> {
  const { spec, plan } = resolveLocal(rm);
  const replicas = replicasOf(o);
  const log = o.log ?? (() => {});
  const modelDir = o.modelDir ?? ensureModel(rm, spec, o.scale, o.seed, log);
  const name = rm.metadata.name;
  const runDir = o.logDir ?? join(tmpdir(), 'recshard-local', `${name}-${process.pid}-${Date.now()}`);
  mkdirSync(runDir, { recursive: true });
  const ports = await allocatePorts(plan.shards.length, replicas);
  const files = writeServingFiles(runDir, name, spec, plan, modelDir, ports.shards);
  const processes = launchAll(runDir, plan, argsOf(o, files, modelDir, ports.main), ports);
  // a process that exits before the deployment is ready fails it; from then on, the supervisor restarts it
  const supervisor = new Supervisor<LocalProcess>((p) => spawnShardServer(runDir, p.name, p.args), { restart: o.supervise ?? true, log });
  const stop = async () => {
    supervisor.stop(); // first: nothing restarts while the processes stop
    await stopAll(processes);
  };
  const mainUrl = loopback(ports.main);
  try {
    await Promise.all(processes.map((p) => waitReady(loopback(p.port), 60_000, processes)));
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message} (logs in ${runDir})`);
  }
  for (const p of processes) supervisor.watch(p);
  return {
    spec,
    plan,
    modelDir,
    runDir,
    mainUrl,
    predictUrl: `${mainUrl}${predictPath(name)}`,
    processes,
    stop,
    cpuSeconds: () => processes.reduce((sum, p) => sum + (p.proc.pid ? processCpuSeconds(p.proc.pid) : 0), 0),
    kill: (pname) => killOne(supervisor, processes, pname),
  };
}
