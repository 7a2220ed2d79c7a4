// What each role serves once its model is loaded: a sparse shard's LookupService over its tables, or the main's
// Predictor (its executors, the clients of its shards and the scheduler). The loaders read and verify the
// artifact; a failure names the file and the reason.
import { lookup } from 'node:dns/promises';
import { availableParallelism } from 'node:os';
import type { Manifest } from '../contracts/model-format.js';
import { pieceRows, type ShardServerPlan } from '../contracts/plan.js';
import type { FailurePolicy, SchedulerMode } from '../contracts/shard-server-args.js';
import type { LookupVersion } from '../contracts/wire/versions.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import type { ServerMetrics } from './http/metrics.js';
import type { Executor, WorkerInit } from './inference/executor.js';
import { HotRows } from './inference/hot-rows.js';
import { LookupService } from './inference/lookup-service.js';
import { Predictor } from './inference/predictor.js';
import { Scheduler } from './inference/scheduler.js';
import { ShardClient } from './inference/shard-client.js';
import { SplitTable } from './inference/split.js';
import { loadTables, ModelLoadError, readVerified, type EmbeddingTable, type ModelSource } from './model/load.js';
import type { TlsMaterial } from './tls.js';

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

/** The main's cache of hot rows: its budget in bytes (0: none) and how often it re-chooses them. */
export interface HotRowOptions {
  bytes: number;
  refreshMs: number;
}

export interface MainOptions {
  plan: ShardServerPlan;
  /** What every lookup carries (the plan's version, the loaded manifest's). */
  version: LookupVersion;
  scheduling?: SchedulingOptions;
  policy: FailurePolicy;
  probeMs: number;
  hedgePercentile?: number;
  hotRows?: HotRowOptions;
  /** Mutual TLS to shards whose endpoints are https://. */
  tls?: TlsMaterial;
  log: Logger;
  clock: Clock;
}

/** The main role, loaded: stop() ends the shard probes and the worker threads. */
export interface MainRole {
  predictor: Predictor;
  clients: ShardClient[];
  stop(): Promise<void>;
}

/** The tables of sparse shard `shard` in the plan, ready to answer lookups. */
export async function loadSparse(
  src: ModelSource,
  manifest: Manifest,
  version: LookupVersion,
  plan: ShardServerPlan,
  shard: number | undefined,
  limits: { maxBatch: number; maxIndicesPerSample: number },
): Promise<LookupService> {
  const own = plan.shards.find((s) => s.index === shard);
  if (!own) throw new ModelLoadError('plan.json', `the plan has no shard ${shard}`);
  const wanted = [...own.tables, ...(own.pieces ?? []).map(({ table, piece, pieces }) => ({ table, piece, pieces }))];
  return new LookupService(await loadTables(src, manifest, wanted), limits.maxBatch, version, limits.maxIndicesPerSample);
}

/** Where request parts run: worker threads (or the event loop, with 0 workers), and the accelerator's when asked. */
async function startExecutors(src: ModelSource, manifest: Manifest, local: EmbeddingTable[], sched: SchedulingOptions, log: Logger) {
  // onnxruntime is loaded by the main only: a sparse shard's memory is its tables plus Node itself.
  const { loadDenseNets } = await import('./inference/dense.js');
  const { PartComputer } = await import('./inference/compute.js');
  const { HybridExecutor, InlineExecutor, WorkerPool } = await import('./inference/executor.js');
  const workers = sched.workers ?? availableParallelism();
  const bottom = manifest.dense.bottom ? await readVerified(src, manifest.dense.bottom) : undefined;
  const top = await readVerified(src, manifest.dense.top);
  const init: WorkerInit = {
    manifest,
    bottom,
    top,
    tables: local.map((t) => ({ index: t.index, meta: t.meta, buffer: t.data.buffer as SharedArrayBuffer, arena: t.arena })),
  };
  // the event loop's own sessions (kernel slot 0): every part with 0 workers, a lone part with workers
  const nets = await loadDenseNets(manifest, bottom, top);
  const inline = new InlineExecutor(new PartComputer(manifest, nets.bottom, nets.top, new Map(local.map((t) => [t.index, t]))));
  const cpu: Executor = workers > 0 ? new HybridExecutor(await WorkerPool.start(init, workers, log), inline) : inline;
  let accelerator: Executor | undefined;
  if (sched.accelerator && sched.accelerator !== 'none') {
    try {
      accelerator = await WorkerPool.start({ ...init, providers: [sched.accelerator] }, 1, log, workers + 1);
    } catch (e) {
      log.error('accelerator unavailable; serving on CPU only', { provider: sched.accelerator, error: (e as Error).message });
    }
  }
  return { cpu, accelerator };
}

/** A client per sparse shard of the plan, probing it in the background; the metrics follow what it sees. */
function shardClients(manifest: Manifest, o: MainOptions, metrics: ServerMetrics): ShardClient[] {
  const indexOf = (name: string) => {
    const i = manifest.tables.findIndex((t) => t.name === name);
    if (i < 0) throw new ModelLoadError('plan.json', `the plan assigns table "${name}", which the model does not have`);
    return i;
  };
  for (const s of o.plan.shards)
    if (s.endpoint.startsWith('https://') && !o.tls)
      throw new ModelLoadError('plan.json', `shard ${s.index}'s endpoint ${s.endpoint} is https://, so the main needs --tls-cert, --tls-key and --tls-ca`);
  const clients = o.plan.shards.map(
    (s) =>
      new ShardClient({
        shard: s.index,
        endpoint: s.endpoint,
        replicas: s.replicas,
        resolve: async (host) => (await lookup(host, { all: true })).map((a) => a.address),
        onReplicas: (n) => metrics.shardReplicas.set(metrics.shardLabels(s.index), n),
        hedgePercentile: o.hedgePercentile ?? 95,
        onHedge: (event) => (event === 'sent' ? metrics.hedges : metrics.hedgeWins).inc(metrics.shardLabels(s.index)),
        tables: s.tables.map(indexOf),
        clock: o.clock,
        version: o.version,
        policy: o.policy,
        ...(o.tls ? { tls: o.tls } : {}),
        onVersionMismatch: () => metrics.versionMismatches.inc(metrics.shardLabels(s.index)),
      }),
  );
  for (const c of clients) {
    metrics.shardUp.set(metrics.shardLabels(c.shard), 0);
    metrics.shardReplicas.set(metrics.shardLabels(c.shard), c.replicaCount);
    c.startProbe(o.probeMs, (up) => {
      metrics.shardUp.set(metrics.shardLabels(c.shard), up ? 1 : 0);
      o.log.info(up ? 'shard reachable' : 'shard unreachable', { shard: c.shard, endpoint: c.endpoint });
    });
  }
  return clients;
}

/**
 * The tables the plan splits by rows, each with its pieces' shards and the rows of the artifact each holds; a plan
 * whose pieces of a table are not 0..n-1 once each, or that also places the table whole, is refused.
 */
export function splitTables(
  manifest: Manifest,
  plan: { main: Pick<ShardServerPlan['main'], 'tables'>; shards: Pick<ShardServerPlan['shards'][number], 'index' | 'tables' | 'pieces'>[] },
): SplitTable[] {
  const byTable = new Map<string, { shard: number; piece: number; pieces: number }[]>();
  for (const s of plan.shards)
    for (const p of s.pieces ?? []) {
      const own = byTable.get(p.table) ?? [];
      own.push({ shard: s.index, piece: p.piece, pieces: p.pieces });
      byTable.set(p.table, own);
    }
  const whole = new Set([...plan.main.tables, ...plan.shards.flatMap((s) => s.tables)]);
  return [...byTable].map(([name, held]) => {
    const index = manifest.tables.findIndex((t) => t.name === name);
    if (index < 0) throw new ModelLoadError('plan.json', `the plan splits table "${name}", which the model does not have`);
    const n = held[0]!.pieces;
    held.sort((a, b) => a.piece - b.piece);
    if (whole.has(name) || held.length !== n || held.some((h, i) => h.piece !== i || h.pieces !== n))
      throw new ModelLoadError(
        'plan.json',
        `table "${name}" must be placed whole once or as pieces 0..${n - 1} once each; the plan has ` +
          `${held.map((h) => `${h.piece}/${h.pieces}`).join(', ')}${whole.has(name) ? ' and the table whole' : ''}`,
      );
    const { rows, dim } = manifest.tables[index]!;
    return new SplitTable(
      index,
      dim,
      held.map((h) => ({ shard: h.shard, ...pieceRows(rows, h.piece, n) })),
    );
  });
}

/** The main role: its own tables (monolithic), the dense nets on its executors, and a client per shard. */
export async function loadMain(src: ModelSource, manifest: Manifest, o: MainOptions, metrics: ServerMetrics): Promise<MainRole> {
  const sched = { ...DEFAULT_SCHEDULING, ...o.scheduling };
  const workers = sched.workers ?? availableParallelism();
  // Kernel slots: the event loop, each worker and the accelerator's worker share the tables' memory.
  const local = [...(await loadTables(src, manifest, o.plan.main.tables, workers + 2)).values()];
  metrics.resident.set(
    metrics.labels,
    local.reduce((n, t) => n + t.data.byteLength, 0),
  );
  const { cpu, accelerator } = await startExecutors(src, manifest, local, sched, o.log);
  const executors = accelerator ? [cpu, accelerator] : [cpu];
  let clients: ShardClient[];
  try {
    clients = shardClients(manifest, o, metrics);
  } catch (e) {
    await Promise.all(executors.map((x) => x.close()));
    throw e;
  }
  const scheduler = new Scheduler({
    mode: sched.mode,
    batchSize: sched.batchSize,
    percentile: sched.percentile,
    targetMs: sched.targetMs,
    accelerator: accelerator !== undefined,
    windowQueries: sched.windowQueries,
    windowMs: sched.windowMs,
    cpuMs: processCpuMs,
  });
  metrics.observeScheduler(() => scheduler.state());
  const hot = o.hotRows && o.hotRows.bytes > 0 ? hotRowCache(manifest, clients, o.hotRows, o.log, o.clock) : undefined;
  if (hot) metrics.observeHotRows(() => ({ hits: hot.rows.hits, misses: hot.rows.misses, bytes: hot.rows.cachedBytes }));
  const predictor = new Predictor({
    manifest,
    localTables: local.map((t) => t.index),
    shards: clients,
    splits: splitTables(manifest, o.plan),
    ...(hot ? { hotRows: hot.rows } : {}),
    executor: cpu,
    accelerator,
    scheduler,
    policy: o.policy,
    clock: o.clock,
  });
  return {
    predictor,
    clients,
    async stop() {
      hot?.stop();
      clients.forEach((c) => c.stop());
      await Promise.all(executors.map((x) => x.close()));
    },
  };
}

/** Rows fetched from a shard per call while the cache refreshes. */
const HOT_ROW_FETCH = 16_384;

/**
 * The hot-row cache of the whole tables the shards hold: every refreshMs it chooses the most used rows from recent
 * traffic, fetches them from their shards (rows lookups) and holds them; a failed fetch keeps what it held.
 */
function hotRowCache(manifest: Manifest, clients: ShardClient[], o: HotRowOptions, log: Logger, clock: Clock) {
  const holder = new Map<number, ShardClient>();
  for (const c of clients) for (const t of c.tables) holder.set(t, c);
  const rows = new HotRows(new Map([...holder.keys()].map((t) => [t, { dim: manifest.tables[t]!.dim, rows: manifest.tables[t]!.rows }])), o.bytes);
  let running = false;
  const refresh = async () => {
    if (running) return;
    running = true;
    try {
      const chosen = rows.choose();
      for (const t of holder.keys()) if (!chosen.has(t)) rows.drop(t);
      for (const [t, want] of chosen) {
        const dim = manifest.tables[t]!.dim;
        const values = new Float32Array(want.length * dim);
        // rows held already are kept; only the new ones are fetched
        const held = rows.held(t);
        const missing: number[] = [];
        want.forEach((r, i) => {
          const s = held ? held.slotOf(r) : -1;
          if (s < 0) missing.push(i);
          else values.set(held!.values.subarray(s * dim, (s + 1) * dim), i * dim);
        });
        for (let at = 0; at < missing.length; at += HOT_ROW_FETCH) {
          const places = missing.slice(at, at + HOT_ROW_FETCH);
          const indices = Uint32Array.from(places, (i) => want[i]!);
          const batch = Math.ceil(indices.length / 4096); // a rows lookup may ask for 4,096 rows per sample of its batch
          const offsets = new Uint32Array(batch + 1);
          offsets[batch] = indices.length;
          const [answer] = await holder.get(t)!.lookup({ batch, lookups: [{ table: t, pooling: 'rows', offsets, indices }] }, clock.now().getTime() + 10_000);
          places.forEach((i, k) => values.set(answer!.values.subarray(k * dim, (k + 1) * dim), i * dim));
        }
        rows.install(t, want, values);
      }
    } catch (e) {
      log.warn('hot rows not refreshed', { error: (e as Error).message });
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void refresh(), o.refreshMs);
  timer.unref();
  return { rows, stop: () => clearInterval(timer) };
}

/** CPU time of this process, every thread (the workers included), in ms. */
function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
