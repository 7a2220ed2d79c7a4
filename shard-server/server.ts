// Starts a shard-server in either role: listens at once (so /healthz answers), loads the model in the
// background (/readyz says what it is waiting for or which file is bad), and drains in-flight requests on close.
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { realClock, type Clock } from '../operator/lib/clock.js';
import type { Logger } from '../operator/lib/log.js';
import { buildServerApp, type ServerState } from './http/app.js';
import { ServerMetrics } from './http/metrics.js';
import { LookupService } from './inference/lookup-service.js';
import { Predictor, type FailurePolicy } from './inference/predictor.js';
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
  log: Logger;
  clock?: Clock;
}

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
  const state: ServerState = {
    notReady() {
      if (loadError) return `model not loaded: ${loadError}`;
      if (o.role === 'sparse' ? !state.lookup : !state.predictor) return 'loading model';
      const down = clients.filter((c) => !c.up).map((c) => `shard ${c.shard} (${c.endpoint})`);
      return down.length ? `sparse shards unreachable: ${down.join(', ')}` : undefined;
    },
  };
  const app = buildServerApp(state, {
    model: o.plan.model, role: o.role, metrics, log: o.log,
    limits: { maxBatch: o.maxBatch, maxIndicesPerSample: 4096 }, maxBodyBytes: o.maxBodyBytes,
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
    const { DenseNet } = await import('./inference/dense.js');
    const bottomOut = manifest.bottomMLP.length ? manifest.bottomMLP[manifest.bottomMLP.length - 1]! : manifest.denseFeatures;
    const bottom = manifest.dense.bottom ? await DenseNet.load(await readVerified(src, manifest.dense.bottom), manifest.denseFeatures, bottomOut) : undefined;
    const top = await DenseNet.load(await readVerified(src, manifest.dense.top), manifest.topInput, manifest.topMLP[manifest.topMLP.length - 1]!);
    const local = await loadTables(src, manifest, o.plan.main.tables);
    const byIndex = new Map([...local.values()].map((t) => [t.index, t]));
    metrics.resident.set(metrics.labels, [...local.values()].reduce((n, t) => n + t.data.byteLength, 0));
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
    state.predictor = new Predictor(manifest, bottom, top, byIndex, clients, { policy: o.policy, deadlineMs: o.deadlineMs }, clock);
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
    },
  };
}
