#!/usr/bin/env node
// The operator process: flags (flags.ts), wiring, leader election and graceful shutdown. Logic lives elsewhere.
import type { Server } from 'node:http';
import { realClock } from '../lib/clock.js';
import { jsonLogger } from '../lib/log.js';
import { warmUp } from './api/v1alpha1/index.js';
import { KEDA_API_VERSION, SCALED_OBJECT } from './builders/autoscalers.js';
import { Autoscaler } from './controller/autoscaler.js';
import { Caches } from './controller/informers.js';
import { LeaderElector } from './controller/leader.js';
import { Manager } from './controller/manager.js';
import { Preparer } from './controller/reconcile/prepare.js';
import { Reconciler } from './controller/reconciler.js';
import { builderConfig, flagsCommand, metricsSource, planLimits, servedNamespaces, type Flags } from './flags.js';
import { KubeClient } from './kube/client.js';
import { PooledKubeConfig } from './kube/config.js';
import { EventRecorder } from './kube/events.js';
import { Planner } from './planner/offload.js';
import { buildApp } from './server/app.js';
import { OperatorMetrics } from './server/metrics.js';
import { PrometheusSource, ScrapeSource, type LatencySource } from './signals/latency.js';
import { HttpServingProbe } from './signals/serving.js';

const env = process.env;
const flags = flagsCommand(env).parse(process.argv).opts<Flags>();
const log = jsonLogger(flags.logLevel, { component: 'recshard-operator' });
const clock = realClock;

const kubeConfig = new PooledKubeConfig();
if (flags.kubeconfig) kubeConfig.loadFromFile(flags.kubeconfig);
else kubeConfig.loadFromDefault();

const client = new KubeClient(kubeConfig);
const metrics = new OperatorMetrics();
const kedaServed = await client.served(KEDA_API_VERSION, SCALED_OBJECT, servedNamespaces(flags)?.[0]);
// handlers only enqueue, and only once the caches start (below), when the manager exists
const namespaces = servedNamespaces(flags);
const caches = new Caches(kubeConfig, client, namespaces, (key, cause) => (cause === 'self' ? manager.queue.add(key) : manager.childEvent(key)), log, clock, {
  keda: kedaServed,
});
const events = new EventRecorder(client, 'recshard-operator', flags.identity, clock, log);
const pollMs = Number(flags.servingPoll) * 1000;
const serving = pollMs > 0 ? { probe: new HttpServingProbe(flags.mainUrlTemplate), pollMs } : undefined;
const source: LatencySource =
  metricsSource(flags) === 'prometheus' ? new PrometheusSource(flags.prometheusUrl!) : new ScrapeSource(() => clock.now().getTime());
const autoscaler = new Autoscaler({ pods: (ns, i) => caches.modelPods(ns, i), client, events, source, metrics, clock, log });
log.info('latency autoscaling', { source: source.name, keda: kedaServed, ...(flags.prometheusUrl ? { prometheus: flags.prometheusUrl } : {}) });
const actuators = { kedaServed, ...(flags.prometheusUrl ? { prometheusUrl: flags.prometheusUrl } : {}) };
const cfg = builderConfig(flags, env);
const planner = new Planner(planLimits(flags));
const preparer = new Preparer(planner, cfg);
const reconciler = new Reconciler({ caches, client, events, cfg, preparer, actuators, clock, log, metrics, serving, autoscaler });
const wedgedAfterMs = Number(flags.reconcileTimeout) * 1000;
const manager = new Manager(caches, reconciler, { workers: Number(flags.workers), resyncMs: Number(flags.resync) * 1000, wedgedAfterMs }, metrics, clock, log);

let shuttingDown = false;
const live = () => (shuttingDown ? { ok: false, detail: 'shutting down' } : manager.health());
const app = buildApp({ live, ready: () => ({ ok: caches.synced, detail: caches.synced ? 'ok' : 'caches not synced' }) }, metrics.registry);
const [host, port] = flags.listen.split(/:(?=\d+$)/) as [string, string];
const server: Server = app.listen(Number(port), host, () => {
  const addr = server.address();
  log.info('serving health and metrics', { address: typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : flags.listen });
});

const leader = flags.leaderElect
  ? new LeaderElector(
      client,
      {
        namespace: flags.leaseNamespace,
        name: flags.leaseName,
        identity: flags.identity,
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
      },
      {
        onStartedLeading: () => {
          metrics.leader.set(1);
          manager.start();
        },
        onStoppedLeading: () => {
          metrics.leader.set(0);
          void shutdown('lost leadership', 1);
        },
      },
      log,
      clock,
    )
  : undefined;

async function shutdown(why: string, code = 0): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info('shutting down', { why });
  await manager.stop();
  await leader?.stop();
  await caches.stop();
  await planner.close();
  kubeConfig.close();
  server.close();
  log.info('stopped');
  process.exit(code);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

// the CRDs' validators compiled before the first reconcile, not during it
warmUp();
await caches.start();
log.info('caches synced', { namespaces: namespaces?.join(',') ?? '(all)' });
if (leader) leader.start();
else manager.start();
