// What protects a model's pods, besides their own security context: a PodDisruptionBudget per component, so a
// node drain never takes a whole shard (or the main) away, and NetworkPolicies, so sparse shards take traffic
// only from their own main and from trusted namespaces (monitoring, the operator), while the main takes its API
// port from anyone. Pure, like the other builders.
import type { V1NetworkPolicy, V1NetworkPolicyPeer, V1PodDisruptionBudget } from '@kubernetes/client-node';
import type { ResolvedRecModelSpec } from '../api/v1alpha1/index.js';
import type { BuilderConfig } from './config.js';
import { componentLabels, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_NAME, modelLabels, selectorLabels, type Role } from './labels.js';
import { childMeta, type Owner } from './meta.js';
import { componentName, dnsLabel, mainName } from './names.js';

export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** One per component: at least one pod stays through voluntary disruptions; a pod that is not ready may always go. */
export function buildPdb(owner: Owner, role: Role, shard?: number, version?: string): V1PodDisruptionBudget {
  const name = componentName(owner.name, role, shard, version);
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: childMeta(owner, name, componentLabels(owner.name, role, shard, role === 'sparse' ? version : undefined)),
    spec: { minAvailable: 1, selector: { matchLabels: selectorLabels(owner.name, role, shard, version) }, unhealthyPodEvictionPolicy: 'AlwaysAllow' },
  };
}

/** The model's pods of one role (every shard, for sparse). */
function roleSelector(model: string, role: Role) {
  const s = selectorLabels(model, role);
  return { matchLabels: { [LABEL_NAME]: s[LABEL_NAME]!, [LABEL_INSTANCE]: s[LABEL_INSTANCE]!, [LABEL_COMPONENT]: role } };
}

/** `shards`: whether any shard set (of this plan or of one still draining) exists or is wanted. */
export function buildNetworkPolicies(owner: Owner, spec: ResolvedRecModelSpec, shards: boolean, cfg: BuilderConfig): V1NetworkPolicy[] {
  if (!cfg.networkPolicies) return [];
  const port = [{ protocol: 'TCP', port: spec.serving.port }];
  const trusted: V1NetworkPolicyPeer[] = cfg.trustedNamespaces.map((ns) => ({ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: ns } } }));
  const main: V1NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: childMeta(owner, mainName(owner.name), componentLabels(owner.name, 'main')),
    // the main serves the prediction API to any client; only its port is open
    spec: { podSelector: roleSelector(owner.name, 'main'), policyTypes: ['Ingress'], ingress: [{ ports: port }] },
  };
  if (!shards) return [main];
  const sparse: V1NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: childMeta(owner, dnsLabel(owner.name, 'shards'), modelLabels(owner.name)),
    spec: {
      podSelector: roleSelector(owner.name, 'sparse'),
      policyTypes: ['Ingress'],
      ingress: [{ _from: [{ podSelector: roleSelector(owner.name, 'main') }, ...trusted], ports: port }],
    },
  };
  return [main, sparse];
}
