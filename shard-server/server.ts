// Starts a shard-server in either role: listens at once (so /healthz answers), loads the model in the
// background (/readyz says what it is waiting for or which file is bad), and drains in-flight requests on close.
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import type { ShardServerPlan } from '../contracts/plan.js';
import type { FailurePolicy, Role } from '../contracts/shard-server-args.js';
import { describeVersion, versionToken, versionWord, type LookupVersion } from '../contracts/wire/versions.js';
import { realClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { buildServerApp, metricsListener, type ServerState } from './http/app.js';
import { ServerMetrics } from './http/metrics.js';
import { checkManifest, modelSource, ModelLoadError, readManifestDigest } from './model/load.js';
import { loadMain, loadSparse, type HotRowOptions, type MainRole, type SchedulingOptions } from './roles.js';
import { MIN_TLS_VERSION, TlsMaterial, type TlsFiles } from './tls.js';

export { DEFAULT_SCHEDULING, type SchedulingOptions } from './roles.js';

/** The per-sample index limit of both roles (the main's JSON and binary requests, the shards' lookups). */
export const MAX_INDICES_PER_SAMPLE = 4096;
export const DEFAULT_MAX_JSON_BYTES = 4 * 2 ** 20;
export const DEFAULT_MAX_QUEUE = 256;
export const DEFAULT_MAX_CONNECTIONS = 4096;

export interface ServerOptions {
  role: Role;
  shard?: number;
  plan: ShardServerPlan;
  modelUri?: string;
  /** The RecModel's spec.model (model.json): the artifact must have exactly its tables and dense features. */
  expectedModel?: unknown;
  host: string;
  port: number;
  /** /metrics on this port alone (0: any free port); absent: on `port`. */
  metricsPort?: number;
  deadlineMs: number;
  policy: FailurePolicy;
  maxBatch: number;
  maxBodyBytes: number;
  /** JSON bodies' limit (default: 4 MiB, at most maxBodyBytes). */
  maxJsonBytes?: number;
  /** Admission control (default: 4 per core, at least 8; 256 waiting). */
  maxInflight?: number;
  maxQueue?: number;
  maxConnections?: number;
  probeMs: number;
  /** The main's hedging of shard calls (ShardClientOptions.hedgePercentile; default 95, 0: off). */
  hedgePercentile?: number;
  /** The main's hot-row cache (bytes 0: none). */
  hotRows?: HotRowOptions;
  /**
   * Mutual TLS (tls.ts): a sparse shard serves its port over TLS and answers lookups only to callers with a
   * certificate its CA signed; a main presents its certificate to https:// shard endpoints.
   */
  tls?: TlsFiles;
  /** How often the TLS files are re-read (default tls.ts RELOAD_MS). */
  tlsReloadMs?: number;
  /** Testing: every request also holds one serial lane this long (see AppOptions.emulateServiceMs). */
  emulateServiceMs?: number;
  /** The main's request scheduling (DeepRecSched). */
  scheduling?: SchedulingOptions;
  log: Logger;
  clock?: Clock;
}

export interface RunningServer {
  port: number;
  /** Where /metrics is served: its own port, or `port`. */
  metricsPort: number;
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

  /**
   * The server's own readiness. A main needs each of its shards reachable, at the version it serves, once (a main
   * skewed against its shards never becomes ready); after that a shard down degrades answers (or fails them, by
   * policy) but does not take the main out of its Service: shards are reported by checks() and metrics instead.
   */
  notReady(expected?: string): string | undefined {
    for (const [, why] of this.checks(expected, false)) if (why) return why;
    return undefined;
  }

  checks(expected?: string, withShards = true): [string, string | undefined][] {
    const out: [string, string | undefined][] = [['shutdown', this.stopping ? 'shutting down' : undefined]];
    const loaded = this.role === 'sparse' ? this.lookup !== undefined : this.predictor !== undefined;
    out.push(['model', this.loadError ? `model not loaded: ${this.loadError}` : loaded ? undefined : 'loading model']);
    if (expected && this.version)
      out.push([
        'version',
        versionToken(this.version) !== expected ? `this server serves ${describeVersion(this.version)}, not version ${expected}` : undefined,
      ]);
    const clients = this.main?.clients ?? [];
    const never = clients.filter((c) => !c.seenUp).map((c) => `shard ${c.shard} (${c.endpoint})`);
    if (clients.length) out.push(['shards-seen', never.length ? `sparse shards not reached yet: ${never.join(', ')}` : undefined]);
    if (withShards)
      for (const c of clients)
        out.push([
          `shard-${c.shard}`,
          c.up ? undefined : `${c.endpoint} unreachable${c.lastError ? `: ${c.lastError}` : ''} (answers degrade; the main stays ready)`,
        ]);
    return out;
  }
}

async function load(o: ServerOptions, state: ModelState, metrics: ServerMetrics, clock: Clock, tls: TlsMaterial | undefined): Promise<void> {
  if (!o.modelUri) throw new ModelLoadError('spec.artifact.uri', 'no model artifact configured');
  const src = modelSource(o.modelUri);
  const { manifest, sha256 } = await readManifestDigest(src);
  checkManifest(manifest, o.expectedModel);
  const version = { plan: versionWord(o.plan.version), artifact: versionWord(sha256) };
  state.version = version;
  if (o.role === 'sparse') {
    state.lookup = await loadSparse(src, manifest, version, o.plan, o.shard, { maxBatch: o.maxBatch, maxIndicesPerSample: MAX_INDICES_PER_SAMPLE });
    metrics.resident.set(metrics.labels, state.lookup.residentBytes);
    return;
  }
  state.main = await loadMain(
    src,
    manifest,
    {
      plan: o.plan,
      version,
      scheduling: o.scheduling,
      policy: o.policy,
      probeMs: o.probeMs,
      hedgePercentile: o.hedgePercentile,
      ...(o.hotRows ? { hotRows: o.hotRows } : {}),
      ...(tls ? { tls } : {}),
      log: o.log,
      clock,
    },
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

/** Listens, or rejects with the address and the reason (a port in use, not allowed). */
function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (e: Error) => reject(new Error(`cannot listen on ${host}:${port}: ${e.message}`));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const clock = o.clock ?? realClock;
  // read before listening: a missing or broken file is a start-up error naming its flag
  const tls = o.tls ? new TlsMaterial(o.tls) : undefined;
  const tlsListener = tls !== undefined && o.role === 'sparse';
  const metrics = new ServerMetrics(o.plan.model, o.role);
  const state = new ModelState(o.role);
  const app = buildServerApp(state, {
    model: o.plan.model,
    role: o.role,
    ...(o.shard !== undefined ? { shard: o.shard } : {}),
    metrics,
    log: o.log,
    limits: { maxBatch: o.maxBatch, maxIndicesPerSample: MAX_INDICES_PER_SAMPLE },
    maxBodyBytes: o.maxBodyBytes,
    maxJsonBytes: o.maxJsonBytes ?? Math.min(o.maxBodyBytes, DEFAULT_MAX_JSON_BYTES),
    maxInflight: o.maxInflight ?? Math.max(8, 4 * availableParallelism()),
    maxQueue: o.maxQueue ?? DEFAULT_MAX_QUEUE,
    deadlineMs: o.deadlineMs,
    now: () => clock.now().getTime(),
    emulateServiceMs: o.emulateServiceMs ?? 0,
    metricsApart: o.metricsPort !== undefined,
    clientCertificates: tlsListener,
  });
  // the client's certificate is asked for, not required at the handshake: the kubelet's probes present none
  const tlsOptions = () => ({ ...tls!.options, requestCert: true, rejectUnauthorized: false, minVersion: MIN_TLS_VERSION });
  const server = tlsListener ? createTlsServer(tlsOptions(), app) : createServer(app);
  if (tls) tls.watch(() => (tlsListener ? (server as ReturnType<typeof createTlsServer>).setSecureContext(tlsOptions()) : undefined), o.tlsReloadMs);
  await listen(server, o.host, o.port);
  const metricsServer = o.metricsPort !== undefined ? createServer(metricsListener(metrics)) : undefined;
  if (metricsServer) await listen(metricsServer, o.host, o.metricsPort!).catch(async (e) => (await drain(server, 0), Promise.reject(e)));
  // Deliberate limits, not Node's defaults: headers within 10 s, a whole request within its deadline (the
  // routes end a body read there) or 30 s at most, kept-alive connections idle for 65 s (longer than the usual
  // load balancer's 60 s, so the balancer closes first), and a cap on connections.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 65_000;
  server.maxConnections = o.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const port = (server.address() as AddressInfo).port;

  const loaded = load(o, state, metrics, clock, tls).then(
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
    metricsPort: metricsServer ? (metricsServer.address() as AddressInfo).port : port,
    metrics,
    loaded,
    async close(drainMs = 10_000, delayMs = 0) {
      state.stopping = true;
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      // scraped until the last moment: the drain's own counts are in the last scrape
      await drain(server, drainMs);
      if (metricsServer) await drain(metricsServer, 0);
      await state.main?.stop();
      tls?.stop();
    },
  };
}
