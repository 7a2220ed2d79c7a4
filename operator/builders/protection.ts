// What protects a model's pods, besides their own security context: PodDisruptionBudgets, so a node drain
// takes the model's pods one at a time (the main keeps a pod; a shard set loses at most one pod at once), and NetworkPolicies, so sparse shards take lookups
// only from their own main, metrics are read only from trusted namespaces (monitoring, the operator), the main
// takes its API port from anyone, and the pods reach nothing but DNS, their shards and their artifact. Pure.
import type { V1NetworkPolicy, V1NetworkPolicyEgressRule, V1NetworkPolicyPeer, V1PodDisruptionBudget } from '@kubernetes/client-node';
import type { ResolvedRecModelSpec } from '../api/v1alpha1/index.js';
import type { BuilderConfig } from './config.js';
import {
  componentLabels,
  LABEL_COMPONENT,
  LABEL_INSTANCE,
  LABEL_MANAGED_BY,
  LABEL_NAME,
  MANAGED_BY,
  modelLabels,
  selectorLabels,
  type Role,
} from './labels.js';
import { childMeta, type Owner } from './meta.js';
import { dnsLabel, mainName, shardSetName } from './names.js';

export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

const budget = (owner: Owner, name: string, labels: Record<string, string>, selector: Record<string, string>, limit: object): V1PodDisruptionBudget => ({
  apiVersion: 'policy/v1',
  kind: 'PodDisruptionBudget',
  metadata: childMeta(owner, name, labels),
  // a pod that is not ready may always go: it serves nothing, and keeping it would only block the drain
  spec: { ...limit, selector: { matchLabels: selector }, unhealthyPodEvictionPolicy: 'AlwaysAllow' },
});

/** The main: at least one pod stays through voluntary disruptions. */
export function buildMainPdb(owner: Owner): V1PodDisruptionBudget {
  return budget(owner, mainName(owner.name), componentLabels(owner.name, 'main'), selectorLabels(owner.name, 'main'), { minAvailable: 1 });
}

/**
 * One budget for a version's whole shard set: voluntary disruptions take one shard pod at a time, and the next only
 * once its replacement is ready. A shard with two or more replicas never goes away; a single-replica shard is away
 * only while its pod moves, one shard at a time (a per-shard minAvailable of 1 would block every drain instead, and
 * would triple the objects a 1,000-shard model writes).
 */
export function buildShardSetPdb(owner: Owner, version: string): V1PodDisruptionBudget {
  return budget(
    owner,
    shardSetName(owner.name, version),
    componentLabels(owner.name, 'sparse', undefined, version),
    selectorLabels(owner.name, 'sparse', undefined, version),
    {
      maxUnavailable: 1,
    },
  );
}

/** The model's pods of one role (every shard, for sparse); managed-by too, as the admission policy requires. */
function roleSelector(model: string, role: Role) {
  const s = selectorLabels(model, role);
  return { matchLabels: { [LABEL_NAME]: s[LABEL_NAME]!, [LABEL_INSTANCE]: s[LABEL_INSTANCE]!, [LABEL_COMPONENT]: role, [LABEL_MANAGED_BY]: MANAGED_BY } };
}

/** Where an http(s) artifact is fetched from: its port (the host is not known as an address, so not narrowed). */
function artifactPort(spec: ResolvedRecModelSpec): number | undefined {
  const uri = spec.artifact?.uri;
  if (!uri || !/^https?:\/\//.test(uri)) return undefined;
  try {
    const u = new URL(uri);
    return Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  } catch {
    return undefined;
  }
}

/**
 * Ingress: the main's API port from anyone, each shard's lookup port from the model's own main pods only, the
 * metrics port from the trusted namespaces only (Prometheus, the operator). Egress: DNS, the main to its shards'
 * lookup port, and an http(s) artifact's port; nothing else. `shards`: whether any shard set (of this plan or of
 * one still draining) exists or is wanted. Enforced only by a CNI that implements NetworkPolicy (docs/security.md).
 */
export function buildNetworkPolicies(owner: Owner, spec: ResolvedRecModelSpec, shards: boolean, cfg: BuilderConfig): V1NetworkPolicy[] {
  if (!cfg.networkPolicies) return [];
  const api = [{ protocol: 'TCP', port: spec.serving.port }];
  const metrics = [{ protocol: 'TCP', port: spec.serving.metricsPort }];
  const trusted: V1NetworkPolicyPeer[] = cfg.trustedNamespaces.map((ns) => ({ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: ns } } }));
  const scrape = trusted.length ? [{ _from: trusted, ports: metrics }] : [];
  const dns = { ports: [53, 53].map((port, i) => ({ protocol: i ? 'TCP' : 'UDP', port })) };
  const fetchPort = artifactPort(spec);
  const common: V1NetworkPolicyEgressRule[] = [dns, ...(fetchPort ? [{ ports: [{ protocol: 'TCP', port: fetchPort }] }] : [])];
  const main: V1NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: childMeta(owner, mainName(owner.name), componentLabels(owner.name, 'main')),
    spec: {
      podSelector: roleSelector(owner.name, 'main'),
      policyTypes: ['Ingress', 'Egress'],
      // the main serves the prediction API to any client
      ingress: [{ ports: api }, ...scrape],
      egress: [...(shards ? [{ to: [{ podSelector: roleSelector(owner.name, 'sparse') }], ports: api }] : []), ...common],
    },
  };
  if (!shards) return [main];
  const sparse: V1NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: childMeta(owner, dnsLabel(owner.name, 'shards'), modelLabels(owner.name)),
    spec: {
      podSelector: roleSelector(owner.name, 'sparse'),
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ _from: [{ podSelector: roleSelector(owner.name, 'main') }], ports: api }, ...scrape],
      egress: common,
    },
  };
  return [main, sparse];
}
