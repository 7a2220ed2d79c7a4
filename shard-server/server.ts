// Starts a shard-server in either role: listens at once (so /healthz answers), loads the model in the
// background (/readyz says what it is waiting for or which file is bad), and drains in-flight requests on close.
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { realClock, type Clock } from '../operator/lib/clock.js';
import type { Logger } from '../operator/lib/log.js';
import { buildServerApp, type ServerState } from './http/app.js';
import { ServerMetrics } from './http/metrics.js';
import { availableParallelism } from 'node:os';
import type { Executor, WorkerInit } from './inference/executor.js';
import { LookupService } from './inference/lookup-service.js';
import { Predictor, type FailurePolicy } from './inference/predictor.js';
import { Scheduler, type SchedulerMode } from './inference/scheduler.js';
import { ShardClient } from './inference/shard-client.js';
import { loadTables, modelSource, readManifest, readVerified, ModelLoadError } from './model/load.js';

/** The plan document the operator writes into the ConfigMap (plan.json); local serving writes the same. */
export interface ServingPlan {
  model: string;
  strategy: string;
  main: { tables: string[] };
  shards: { index: number; tables: string[]; endpoint: string }[];
}

export interface ServerOptions {
  role: 'main' | 'sparse';
  shard?: number;
  plan: ServingPlan;
  modelUri?: string;
  host: string;
  port: number;
  deadlineMs: number;
  policy: FailurePolicy;
  maxBatch: number;
  maxBodyBytes: number;
  probeMs: number;
  /** Testing: every request also holds one serial lane this long (see AppOptions.emulateServiceMs). */
  emulateServiceMs?: number;
  /** The main's request scheduling (DeepRecSched). */
  scheduling?: SchedulingOptions;
  log: Logger;
  clock?: Clock;
}

export interface SchedulingOptions {
  mode: SchedulerMode;
  /** Fixed B, or where auto starts. */
  batchSize: number;
  /** The percentile auto tunes the tail latency at. */
  percentile: number;
  /** The latency target at that percentile. */
  targetMs?: number;
  /** Worker threads for request parts; 0 runs them on the event loop. Default: the cores available. */
  workers?: number;
  /** An onnxruntime execution provider for whole large queries (e.g. cuda); none by default. */
  accelerator?: string;
  /** Tuning windows (tests shorten them). */
  windowQueries?: number;
  windowMs?: number;
}

export const DEFAULT_SCHEDULING: SchedulingOptions = { mode: 'auto', batchSize: 64, percentile: 95 };

export interface RunningServer {
  port: number;
  metrics: ServerMetrics;
  /** Resolves when the model is loaded (rejects with the load error). */
  loaded: Promise<void>;
  close(drainMs?: number): Promise<void>;
}

export async function readPlanFile(path: string): Promise<ServingPlan> {
  return JSON.parse(await readFile(path, 'utf8')) as ServingPlan;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const clock = o.clock ?? realClock;
  const metrics = new ServerMetrics(o.plan.model, o.role);
  let loadError: string | undefined;
  let clients: ShardClient[] = [];
  const executors: Executor[] = [];
  const state: ServerState = {
    notReady() {
      if (loadError) return `model not loaded: ${loadError}`;
      if (o.role === 'sparse' ? !state.lookup : !state.predictor) return 'loading model';
      const down = clients.filter((c) => !c.up).map((c) => `shard ${c.shard} (${c.endpoint})`);
      return down.length ? `sparse shards unreachable: ${down.join(', ')}` : undefined;
    },
  };
  const app = buildServerApp(state, {
    model: o.plan.model, role: o.role, ...(o.shard !== undefined ? { shard: o.shard } : {}), metrics, log: o.log,
    limits: { maxBatch: o.maxBatch, maxIndicesPerSample: 4096 }, maxBodyBytes: o.maxBodyBytes, emulateServiceMs: o.emulateServiceMs ?? 0,
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(o.port, o.host, () => resolve(s));
  });
  server.keepAliveTimeout = 65_000;
  const port = (server.address() as AddressInfo).port;

  const load = async () => {
    if (!o.modelUri) throw new ModelLoadError('spec.artifact.uri', 'no model artifact configured');
    const src = modelSource(o.modelUri);
    const manifest = await readManifest(src);
    if (o.role === 'sparse') {
      const shard = o.plan.shards.find((s) => s.index === o.shard);
      if (!shard) throw new ModelLoadError('plan.json', `the plan has no shard ${o.shard}`);
      const tables = await loadTables(src, manifest, shard.tables);
      state.lookup = new LookupService(tables, o.maxBatch);
      metrics.resident.set(metrics.labels, state.lookup.residentBytes);
      return;
    }
    // onnxruntime is loaded by the main only: a sparse shard's memory is its tables plus Node itself.
    const sched = { ...DEFAULT_SCHEDULING, ...o.scheduling };
    const workers = sched.workers ?? availableParallelism();
    const { loadDenseNets } = await import('./inference/dense.js');
    const { PartComputer } = await import('./inference/compute.js');
    const { InlineExecutor, WorkerPool } = await import('./inference/executor.js');
    const bottomBytes = manifest.dense.bottom ? await readVerified(src, manifest.dense.bottom) : undefined;
    const topBytes = await readVerified(src, manifest.dense.top);
    // Kernel slots: the event loop, each worker and the accelerator's worker share the tables' memory.
    const local = [...(await loadTables(src, manifest, o.plan.main.tables, workers + 2)).values()];
    metrics.resident.set(metrics.labels, local.reduce((n, t) => n + t.data.byteLength, 0));
    const init: WorkerInit = {
      manifest, bottom: bottomBytes, top: topBytes,
      tables: local.map((t) => ({ index: t.index, meta: t.meta, buffer: t.data.buffer as SharedArrayBuffer, arena: t.arena })),
    };
    if (workers > 0) executors.push(await WorkerPool.start(init, workers, o.log));
    else {
      const { bottom, top } = await loadDenseNets(manifest, bottomBytes, topBytes);
      executors.push(new InlineExecutor(new PartComputer(manifest, bottom, top, new Map(local.map((t) => [t.index, t])))));
    }
    let accelerator: Executor | undefined;
    if (sched.accelerator && sched.accelerator !== 'none') {
      try {
        accelerator = await WorkerPool.start({ ...init, providers: [sched.accelerator] }, 1, o.log, workers + 1);
        executors.push(accelerator);
      } catch (e) {
        o.log.error('accelerator unavailable; serving on CPU only', { provider: sched.accelerator, error: (e as Error).message });
      }
    }
    const indexOf = (name: string) => {
      const i = manifest.tables.findIndex((t) => t.name === name);
      if (i < 0) throw new ModelLoadError('plan.json', `the plan assigns table "${name}", which the model does not have`);
      return i;
    };
    clients = o.plan.shards.map((s) => new ShardClient(s.index, s.endpoint, s.tables.map(indexOf), clock));
    for (const c of clients) {
      metrics.shardUp.set({ model: o.plan.model, shard: String(c.shard) }, 0);
      c.startProbe(o.probeMs, (up) => {
        metrics.shardUp.set({ model: o.plan.model, shard: String(c.shard) }, up ? 1 : 0);
        o.log.info(up ? 'shard reachable' : 'shard unreachable', { shard: c.shard, endpoint: c.endpoint });
      });
    }
    const scheduler = new Scheduler({
      mode: sched.mode, batchSize: sched.batchSize, percentile: sched.percentile, targetMs: sched.targetMs, accelerator: accelerator !== undefined,
      windowQueries: sched.windowQueries, windowMs: sched.windowMs, cpuMs: processCpuMs,
    });
    metrics.observeScheduler(() => scheduler.state());
    state.predictor = new Predictor({
      manifest, localTables: local.map((t) => t.index), shards: clients, executor: executors[0]!, accelerator, scheduler,
      policy: o.policy, deadlineMs: o.deadlineMs, clock,
    });
  };
  const loaded = load().then(
    () => o.log.info('model loaded', { role: o.role, shard: o.shard, port }),
    (e: unknown) => {
      loadError = e instanceof Error ? e.message : String(e);
      o.log.error('model not loaded', { error: loadError });
      throw e;
    },
  );
  loaded.catch(() => {});

  return {
    port,
    metrics,
    loaded,
    async close(drainMs = 10_000) {
      clients.forEach((c) => c.stop());
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections go idle once their last response is sent: close them as that happens.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      const timer = setTimeout(() => server.closeAllConnections(), drainMs);
      server.closeIdleConnections();
      await closed;
      clearInterval(sweep);
      clearTimeout(timer);
      await Promise.all(executors.map((e) => e.close()));
    },
  };
}

/** CPU time of this process, every thread (the workers included), in ms. */
function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
