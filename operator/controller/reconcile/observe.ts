// Observe: one RecModel and what it controls, from the informers' caches, as one plain object.
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import type { LatencyScalingPolicy, RecModel } from '../../api/v1alpha1/index.js';
import { KEDA_API_VERSION, SCALED_OBJECT } from '../../builders/autoscalers.js';
import { dnsLabel } from '../../builders/names.js';
import { controllerOf, type Caches } from '../informers.js';

/** What one reconcile sees: the RecModel and the children it controls, from the cache. */
export interface Observed {
  rm: RecModel;
  owned: KubernetesObject[];
  /** Cached managed objects with our instance label but another controller (e.g. a same-named model's, or KEDA's HPAs). */
  foreign: KubernetesObject[];
  /** The LatencyScalingPolicy spec.autoscaling references, when enabled and found. */
  policy?: LatencyScalingPolicy;
  /** The model's pods (for what the kubelet and the scheduler say of them). */
  pods: V1Pod[];
}

export type CacheReader = Pick<Caches, 'recModel' | 'children' | 'policy' | 'modelPods'>;

/** Listed objects carry no kind: each cached object's copy with its kind, made once (the cache replaces changed ones). */
const typedCopies = new WeakMap<object, KubernetesObject>();
function typed(o: KubernetesObject, kind: string, apiVersion: string): KubernetesObject {
  let t = typedCopies.get(o);
  if (!t) typedCopies.set(o, (t = { ...o, kind, apiVersion }));
  return t;
}

/** Undefined when the RecModel is gone or being deleted (its children go with it, by garbage collection). */
export function observe(caches: CacheReader, namespace: string, name: string): Observed | undefined {
  const rm = caches.recModel(namespace, name);
  if (!rm || rm.metadata.deletionTimestamp) return undefined;
  const c = caches.children(namespace, dnsLabel(name));
  const all = [
    ...c.configMaps.map((o) => typed(o, 'ConfigMap', 'v1')),
    ...c.services.map((o) => typed(o, 'Service', 'v1')),
    ...c.deployments.map((o) => typed(o, 'Deployment', 'apps/v1')),
    ...c.pdbs.map((o) => typed(o, 'PodDisruptionBudget', 'policy/v1')),
    ...c.networkPolicies.map((o) => typed(o, 'NetworkPolicy', 'networking.k8s.io/v1')),
    ...c.hpas.map((o) => typed(o, 'HorizontalPodAutoscaler', 'autoscaling/v2')),
    ...c.scaledObjects.map((o) => typed(o, SCALED_OBJECT, KEDA_API_VERSION)),
  ];
  const mine = (o: KubernetesObject) => controllerOf(o)?.uid === rm.metadata.uid;
  const policyName = rm.spec?.autoscaling?.enabled ? rm.spec.autoscaling.policyRef?.name : undefined;
  const policy = policyName ? caches.policy(policyName) : undefined;
  const pods = caches.modelPods(namespace, dnsLabel(name));
  return { rm, owned: all.filter(mine), foreign: all.filter((o) => !mine(o)), pods, ...(policy ? { policy } : {}) };
}
