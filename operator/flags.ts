// The operator's flags (each with its environment variable where the chart sets one) and the builder settings
// they make: images, the GPU node label, NetworkPolicies, trusted namespaces.
import { hostname } from 'node:os';
import { Command } from 'commander';
import type { Level } from '../lib/log.js';
import { DEFAULT_BUILDER_CONFIG, type BuilderConfig } from './builders/config.js';
import type { PlanLimits } from './planner/plan.js';
import { DEFAULT_MAIN_URL_TEMPLATE } from './signals/serving.js';

/**
 * Node's own flags for the operator process, as the image's ENTRYPOINT runs it (images/Dockerfile; the benchmarks and
 * cluster tests start it the same way). V8 tuned for memory: a 200-model fleet peaks at about 140 MiB instead of
 * 180-190 MiB (docs/benchmarks.md), for a few per cent more CPU in the collector.
 */
export const OPERATOR_NODE_FLAGS = ['--optimize-for-size'];

export interface Flags {
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
  maxShards: string;
  reconcileTimeout: string;
  allowControlPlane: boolean;
  modelServiceAccount: string;
}

export function flagsCommand(env: NodeJS.ProcessEnv): Command {
  return new Command('recshard-operator')
    .description('Reconciles RecModels into sharded Deployments')
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)', env.KUBECONFIG)
    .option('--namespace <list>', 'watch only these namespaces, comma-separated (default: all)', env.RECSHARD_WATCH_NAMESPACE || undefined)
    .option('--lease-namespace <ns>', 'namespace of the leader-election Lease', env.POD_NAMESPACE ?? 'default')
    .option('--lease-name <name>', 'name of the leader-election Lease', 'recshard-operator')
    .option('--identity <id>', 'this replica in leader election', env.POD_NAME ?? `${hostname()}-${process.pid}`)
    .option('--no-leader-elect', 'run without leader election (one replica only)')
    .option('--listen <addr>', 'health and metrics address', env.RECSHARD_LISTEN ?? '0.0.0.0:8081')
    .option('--workers <n>', 'concurrent reconciles', '4')
    .option('--reconcile-timeout <seconds>', 'a reconcile running longer fails liveness (the loop is wedged)', '300')
    .option('--resync <seconds>', 'periodic resync of every RecModel', '300')
    .option('--serving-poll <seconds>', 'how often the scheduler of each serving main is read into status.scheduler (0: never)', '30')
    .option(
      '--main-url-template <url>',
      'where the operator reaches a main: {name}, {namespace}, {service} and {port} are filled in',
      DEFAULT_MAIN_URL_TEMPLATE,
    )
    .option('--prometheus-url <url>', 'Prometheus HTTP API the autoscaler reads latency from', env.RECSHARD_PROMETHEUS_URL || undefined)
    .option(
      '--metrics-source <source>',
      "prometheus or scrape (the pods' /metrics directly); default: prometheus when --prometheus-url is set",
      env.RECSHARD_METRICS_SOURCE || undefined,
    )
    .option('--log-level <level>', 'debug, info, warn or error', env.RECSHARD_LOG_LEVEL ?? 'info')
    .option(
      '--shard-server-image <image>',
      'image of the pods the operator creates',
      env.RECSHARD_SHARD_SERVER_IMAGE ?? DEFAULT_BUILDER_CONFIG.shardServerImage,
    )
    .option('--image-pull-policy <policy>', 'pull policy of those pods', env.RECSHARD_IMAGE_PULL_POLICY ?? DEFAULT_BUILDER_CONFIG.imagePullPolicy)
    .option(
      '--image-pull-secrets <list>',
      "comma-separated Secret names those pods pull with; each must exist in the model's namespace",
      env.RECSHARD_IMAGE_PULL_SECRETS ?? '',
    )
    .option('--gpu-node-label <key=value>', 'label that marks GPU nodes', `${DEFAULT_BUILDER_CONFIG.gpuNodeLabel}=${DEFAULT_BUILDER_CONFIG.gpuNodeLabelValue}`)
    .option('--no-network-policies', "do not create NetworkPolicies for the models' pods")
    .option('--max-shards <n>', 'most sparse shards one model may plan (each is a Deployment, a Service and a budget)', env.RECSHARD_MAX_SHARDS ?? '1024')
    .option(
      '--model-service-account <name>',
      "ServiceAccount of the models' pods, in each model's namespace (its token is never mounted)",
      env.RECSHARD_MODEL_SERVICE_ACCOUNT || 'default',
    )
    .option('--allow-control-plane', "let models' tolerations and node selection place their pods on control-plane nodes", false)
    .option(
      '--trusted-namespaces <list>',
      "comma-separated namespaces whose pods may reach every component's port (Prometheus); the operator's own is added",
      env.RECSHARD_TRUSTED_NAMESPACES ?? DEFAULT_BUILDER_CONFIG.trustedNamespaces.join(','),
    );
}

const commaList = (list: string) =>
  list
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);

/** The pods' settings from the flags; the operator's own namespace (POD_NAMESPACE) is trusted too. */
export function builderConfig(flags: Flags, env: NodeJS.ProcessEnv): BuilderConfig {
  const [gpuKey, gpuValue = 'true'] = flags.gpuNodeLabel.split('=') as [string, string?];
  return {
    ...DEFAULT_BUILDER_CONFIG,
    shardServerImage: flags.shardServerImage,
    imagePullPolicy: flags.imagePullPolicy,
    gpuNodeLabel: gpuKey,
    gpuNodeLabelValue: gpuValue,
    networkPolicies: flags.networkPolicies,
    allowControlPlane: flags.allowControlPlane,
    modelServiceAccount: flags.modelServiceAccount,
    imagePullSecrets: commaList(flags.imagePullSecrets),
    // the operator reads the pods itself (the scrape source, the main's scheduler): its namespace is trusted too
    trustedNamespaces: [...new Set([...commaList(flags.trustedNamespaces), ...(env.POD_NAMESPACE ? [env.POD_NAMESPACE] : [])])],
  };
}

/** The namespaces served (--namespace, comma-separated); undefined: every namespace. */
export function servedNamespaces(flags: Pick<Flags, 'namespace'>): string[] | undefined {
  const list = commaList(flags.namespace ?? '');
  return list.length ? [...new Set(list)] : undefined;
}

/** The planner's bounds from the flags. */
export function planLimits(flags: Pick<Flags, 'maxShards'>): PlanLimits {
  const maxShards = Number(flags.maxShards);
  if (!Number.isInteger(maxShards) || maxShards < 1)
    throw new Error(`--max-shards: must be a whole number of at least 1, got ${JSON.stringify(flags.maxShards)}`);
  return { maxShards };
}

/** Where the autoscaler reads latency: Prometheus when --prometheus-url is set, else the pods' /metrics. */
export function metricsSource(flags: Pick<Flags, 'metricsSource' | 'prometheusUrl'>): 'prometheus' | 'scrape' {
  const kind = flags.metricsSource ?? (flags.prometheusUrl ? 'prometheus' : 'scrape');
  if (kind !== 'prometheus' && kind !== 'scrape') throw new Error(`--metrics-source: must be prometheus or scrape, got ${JSON.stringify(kind)}`);
  if (kind === 'prometheus' && !flags.prometheusUrl) throw new Error('--metrics-source prometheus needs --prometheus-url');
  return kind;
}
