#!/usr/bin/env node
// The operator process: flags, wiring, leader election and graceful shutdown. Logic lives elsewhere.
import { hostname } from 'node:os';
import type { Server } from 'node:http';
import { Command } from 'commander';
import { KubeConfig } from '@kubernetes/client-node';
import { DEFAULT_BUILDER_CONFIG, type BuilderConfig } from './builders/config.js';
import { Caches } from './controller/informers.js';
import { LeaderElector } from './controller/leader.js';
import { Manager } from './controller/manager.js';
import { Reconciler } from './controller/reconciler.js';
import { KubeClient } from './kube/client.js';
import { EventRecorder } from './kube/events.js';
import { realClock } from '../lib/clock.js';
import { jsonLogger, type Level } from '../lib/log.js';
import { buildApp } from './server/app.js';
import { OperatorMetrics } from './server/metrics.js';
import { DEFAULT_MAIN_URL_TEMPLATE, HttpServingProbe } from './signals/serving.js';
import { PrometheusSource, ScrapeSource, type LatencySource } from './signals/latency.js';
import { Autoscaler } from './controller/autoscaler.js';
import { KEDA_API_VERSION, SCALED_OBJECT } from './builders/autoscalers.js';

interface Flags {
  kubeconfig?: string;
  namespace?: string;
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  leaderElect: boolean;
  listen: string;
  workers: string;
  resync: string;
  servingPoll: string;
  mainUrlTemplate: string;
  prometheusUrl?: string;
  metricsSource?: 'prometheus' | 'scrape';
  logLevel: Level;
  shardServerImage: string;
  imagePullPolicy: BuilderConfig['imagePullPolicy'];
  gpuNodeLabel: string;
  networkPolicies: boolean;
  trustedNamespaces: string;
  imagePullSecrets: string;
}

const env = process.env;
const program = new Command('recshard-operator')
  .description('Reconciles RecModels into sharded Deployments')
  .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)', env.KUBECONFIG)
  .option('--namespace <ns>', 'watch only this namespace (default: all)', env.RECSHARD_WATCH_NAMESPACE || undefined)
  .option('--lease-namespace <ns>', 'namespace of the leader-election Lease', env.POD_NAMESPACE ?? 'default')
  .option('--lease-name <name>', 'name of the leader-election Lease', 'recshard-operator')
  .option('--identity <id>', 'this replica in leader election', env.POD_NAME ?? `${hostname()}-${process.pid}`)
  .option('--no-leader-elect', 'run without leader election (one replica only)')
  .option('--listen <addr>', 'health and metrics address', env.RECSHARD_LISTEN ?? '0.0.0.0:8081')
  .option('--workers <n>', 'concurrent reconciles', '2')
  .option('--resync <seconds>', 'periodic resync of every RecModel', '300')
  .option('--serving-poll <seconds>', 'how often the scheduler of each serving main is read into status.scheduler (0: never)', '30')
  .option('--main-url-template <url>', 'where the operator reaches a main: {name}, {namespace}, {service} and {port} are filled in', DEFAULT_MAIN_URL_TEMPLATE)
  .option('--prometheus-url <url>', 'Prometheus HTTP API the autoscaler reads latency from', env.RECSHARD_PROMETHEUS_URL || undefined)
  .option('--metrics-source <source>', 'prometheus or scrape (the pods\' /metrics directly); default: prometheus when --prometheus-url is set', env.RECSHARD_METRICS_SOURCE || undefined)
  .option('--log-level <level>', 'debug, info, warn or error', env.RECSHARD_LOG_LEVEL ?? 'info')
  .option('--shard-server-image <image>', 'image of the pods the operator creates', env.RECSHARD_SHARD_SERVER_IMAGE ?? DEFAULT_BUILDER_CONFIG.shardServerImage)
  .option('--image-pull-policy <policy>', 'pull policy of those pods', env.RECSHARD_IMAGE_PULL_POLICY ?? DEFAULT_BUILDER_CONFIG.imagePullPolicy)
  .option('--image-pull-secrets <list>', 'comma-separated Secret names those pods pull with; each must exist in the model\'s namespace', env.RECSHARD_IMAGE_PULL_SECRETS ?? '')
  .option('--gpu-node-label <key=value>', 'label that marks GPU nodes', `${DEFAULT_BUILDER_CONFIG.gpuNodeLabel}=${DEFAULT_BUILDER_CONFIG.gpuNodeLabelValue}`)
  .option('--no-network-policies', 'do not create NetworkPolicies for the models\' pods')
  .option('--trusted-namespaces <list>', 'comma-separated namespaces whose pods may reach every component\'s port (Prometheus); the operator\'s own is added', env.RECSHARD_TRUSTED_NAMESPACES ?? DEFAULT_BUILDER_CONFIG.trustedNamespaces.join(','));

const flags = program.parse(process.argv).opts<Flags>();
const log = jsonLogger(flags.logLevel, { component: 'recshard-operator' });
const clock = realClock;

const kubeConfig = new KubeConfig();
if (flags.kubeconfig) kubeConfig.loadFromFile(flags.kubeconfig);
else kubeConfig.loadFromDefault();

const commaList = (list: string) => list.split(',').map((n) => n.trim()).filter(Boolean);
const [gpuKey, gpuValue = 'true'] = flags.gpuNodeLabel.split('=') as [string, string?];
const cfg: BuilderConfig = {
  ...DEFAULT_BUILDER_CONFIG,
  shardServerImage: flags.shardServerImage,
  imagePullPolicy: flags.imagePullPolicy,
  gpuNodeLabel: gpuKey,
  gpuNodeLabelValue: gpuValue,
  networkPolicies: flags.networkPolicies,
  imagePullSecrets: commaList(flags.imagePullSecrets),
  // the operator reads the pods itself (the scrape source, the main's scheduler): its namespace is trusted too
  trustedNamespaces: [...new Set([...commaList(flags.trustedNamespaces), ...(env.POD_NAMESPACE ? [env.POD_NAMESPACE] : [])])],
};

const client = new KubeClient(kubeConfig);
const metrics = new OperatorMetrics();
let manager: Manager | undefined;
const kedaServed = await client.served(KEDA_API_VERSION, SCALED_OBJECT, flags.namespace);
const caches = new Caches(kubeConfig, client, flags.namespace, (key) => manager?.queue.add(key), log, clock, { keda: kedaServed });
const events = new EventRecorder(client, 'recshard-operator', flags.identity, clock, log);
const pollMs = Number(flags.servingPoll) * 1000;
const serving = pollMs > 0 ? { probe: new HttpServingProbe(flags.mainUrlTemplate), pollMs } : undefined;
const sourceKind = flags.metricsSource ?? (flags.prometheusUrl ? 'prometheus' : 'scrape');
if (sourceKind !== 'prometheus' && sourceKind !== 'scrape') throw new Error(`--metrics-source: must be prometheus or scrape, got ${JSON.stringify(sourceKind)}`);
if (sourceKind === 'prometheus' && !flags.prometheusUrl) throw new Error('--metrics-source prometheus needs --prometheus-url');
const source: LatencySource = sourceKind === 'prometheus' ? new PrometheusSource(flags.prometheusUrl!) : new ScrapeSource(() => clock.now().getTime());
const autoscaler = new Autoscaler({ pods: (ns, i) => caches.modelPods(ns, i), client, events, source, metrics, clock, log });
log.info('latency autoscaling', { source: source.name, keda: kedaServed, ...(flags.prometheusUrl ? { prometheus: flags.prometheusUrl } : {}) });
const actuators = { kedaServed, ...(flags.prometheusUrl ? { prometheusUrl: flags.prometheusUrl } : {}) };
const reconciler = new Reconciler({ caches, client, events, cfg, actuators, clock, log, metrics, serving, autoscaler });
manager = new Manager(caches, reconciler, { workers: Number(flags.workers), resyncMs: Number(flags.resync) * 1000 }, metrics, clock, log);

let shuttingDown = false;
const app = buildApp(
  { live: () => !shuttingDown, ready: () => ({ ok: caches.synced, detail: caches.synced ? 'ok' : 'caches not synced' }) },
  metrics.registry,
);
const [host, port] = flags.listen.split(/:(?=\d+$)/) as [string, string];
const server: Server = app.listen(Number(port), host, () => {
  const addr = server.address();
  log.info('serving health and metrics', { address: typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : flags.listen });
});

const leader = flags.leaderElect
  ? new LeaderElector(
      client,
      { namespace: flags.leaseNamespace, name: flags.leaseName, identity: flags.identity, leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
      {
        onStartedLeading: () => {
          metrics.leader.set(1);
          manager!.start();
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
  await manager!.stop();
  await leader?.stop();
  await caches.stop();
  server.close();
  log.info('stopped');
  process.exit(code);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

await caches.start();
log.info('caches synced', { namespace: flags.namespace ?? '(all)' });
if (leader) leader.start();
else manager.start();
