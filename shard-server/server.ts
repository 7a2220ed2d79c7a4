// Starts a shard-server in either role: listens at once (so /healthz answers), loads the model in the
// background (/readyz says what it is waiting for or which file is bad), and drains in-flight requests on close.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ShardServerPlan } from '../contracts/plan.js';
import type { FailurePolicy, Role } from '../contracts/shard-server-args.js';
import { describeVersion, versionToken, versionWord, type LookupVersion } from '../contracts/wire/versions.js';
import { realClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { buildServerApp, type ServerState } from './http/app.js';
import { ServerMetrics } from './http/metrics.js';
import { modelSource, ModelLoadError, readManifestDigest } from './model/load.js';
import { loadMain, loadSparse, type MainRole, type SchedulingOptions } from './roles.js';

export { DEFAULT_SCHEDULING, type SchedulingOptions } from './roles.js';

export interface ServerOptions {
  role: Role;
  shard?: number;
  plan: ShardServerPlan;
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

export interface RunningServer {
  port: number;
  metrics: ServerMetrics;
  /** Resolves when the model is loaded (rejects with the load error). */
  loaded: Promise<void>;
  /**
   * Stops the server: at once /readyz fails and every reply closes its connection (clients reconnect, through the
   * Service, to another pod); after delayMs (while endpoints forget this pod) in-flight requests drain, the rest
   * are cut after drainMs.
   */
  close(drainMs?: number, delayMs?: number): Promise<void>;
}

/** What the HTTP layer serves from: empty until the model is loaded, then the role's service. */
class ModelState implements ServerState {
  lookup?: ServerState['lookup'];
  main?: MainRole;
  loadError?: string;
  /** The serving version, once the manifest is read. */
  version?: LookupVersion;

  constructor(private readonly role: Role) {}

  get predictor(): ServerState['predictor'] {
    return this.main?.predictor;
  }

  /** Set when the server begins to shut down: not ready, and every reply closes its connection. */
  stopping = false;

  notReady(expected?: string): string | undefined {
    if (this.stopping) return 'shutting down';
    if (this.loadError) return `model not loaded: ${this.loadError}`;
    if (expected && this.version && versionToken(this.version) !== expected)
      return `this server serves ${describeVersion(this.version)}, not version ${expected}`;
    if (this.role === 'sparse' ? !this.lookup : !this.predictor) return 'loading model';
    const down = (this.main?.clients ?? []).filter((c) => !c.up).map((c) => `shard ${c.shard} (${c.endpoint})`);
    return down.length ? `sparse shards unreachable: ${down.join(', ')}` : undefined;
  }
}

async function load(o: ServerOptions, state: ModelState, metrics: ServerMetrics, clock: Clock): Promise<void> {
  if (!o.modelUri) throw new ModelLoadError('spec.artifact.uri', 'no model artifact configured');
  const src = modelSource(o.modelUri);
  const { manifest, sha256 } = await readManifestDigest(src);
  const version = { plan: versionWord(o.plan.version), artifact: versionWord(sha256) };
  state.version = version;
  if (o.role === 'sparse') {
    state.lookup = await loadSparse(src, manifest, version, o.plan, o.shard, o.maxBatch);
    metrics.resident.set(metrics.labels, state.lookup.residentBytes);
    return;
  }
  state.main = await loadMain(
    src,
    manifest,
    { plan: o.plan, version, scheduling: o.scheduling, policy: o.policy, deadlineMs: o.deadlineMs, probeMs: o.probeMs, log: o.log, clock },
    metrics,
  );
}

/** Stops accepting connections and waits for in-flight requests, cutting the rest after drainMs. */
async function drain(server: Server, drainMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive connections go idle once their last response is sent: close them as that happens.
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  const timer = setTimeout(() => server.closeAllConnections(), drainMs);
  server.closeIdleConnections();
  await closed;
  clearInterval(sweep);
  clearTimeout(timer);
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const clock = o.clock ?? realClock;
  const metrics = new ServerMetrics(o.plan.model, o.role);
  const state = new ModelState(o.role);
  const app = buildServerApp(state, {
    model: o.plan.model,
    role: o.role,
    ...(o.shard !== undefined ? { shard: o.shard } : {}),
    metrics,
    log: o.log,
    limits: { maxBatch: o.maxBatch, maxIndicesPerSample: 4096 },
    maxBodyBytes: o.maxBodyBytes,
    emulateServiceMs: o.emulateServiceMs ?? 0,
  });
  // express 5 calls back with the error when the port cannot be had (in use, not allowed)
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(o.port, o.host, (e?: Error) => (e ? reject(new Error(`cannot listen on ${o.host}:${o.port}: ${e.message}`)) : resolve(s)));
  });
  server.keepAliveTimeout = 65_000;
  const port = (server.address() as AddressInfo).port;

  const loaded = load(o, state, metrics, clock).then(
    () => o.log.info('model loaded', { role: o.role, shard: o.shard, port }),
    (e: unknown) => {
      state.loadError = e instanceof Error ? e.message : String(e);
      o.log.error('model not loaded', { error: state.loadError });
      throw e;
    },
  );
  loaded.catch(() => {});

  return {
    port,
    metrics,
    loaded,
    async close(drainMs = 10_000, delayMs = 0) {
      state.stopping = true;
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      await drain(server, drainMs);
      await state.main?.stop();
    },
  };
}
