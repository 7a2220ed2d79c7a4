// What the informers' caches keep of each object: only what the operator reads. managedFields (most of a
// Deployment's bytes) are dropped except our own managers' entries on Deployments (the autoscaler asks whether
// our apply owns spec.replicas); ConfigMaps lose their data (plan files up to 1 MiB each; nothing reads them back:
// apply compares its own hash); pods keep their status and the few spec fields status and rollout read. Objects
// are trimmed in place, as they enter the cache, so the library's cache holds the small copy.
import type { KubernetesObject, V1ConfigMap, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { FIELD_MANAGER, SCALER_FIELD_MANAGER } from '../kube/client.js';

const OURS = new Set([FIELD_MANAGER, SCALER_FIELD_MANAGER]);

function trimPod(p: V1Pod): void {
  const s = p.spec;
  if (!s) return;
  p.spec = {
    ...(s.nodeName ? { nodeName: s.nodeName } : {}),
    containers: s.containers.map((c) => ({ name: c.name, ...(c.resources?.limits ? { resources: { limits: c.resources.limits } } : {}) })),
    volumes: (s.volumes ?? []).filter((v) => v.configMap).map((v) => ({ name: v.name, configMap: { name: v.configMap!.name } })),
  };
}

/** Trims a cached object of `kind` in place; returns it. */
export function trimForCache<T extends KubernetesObject>(kind: string, o: T): T {
  const meta = o.metadata;
  if (meta?.managedFields) {
    if (kind === 'Deployment') meta.managedFields = meta.managedFields.filter((f) => OURS.has(f.manager ?? ''));
    else delete meta.managedFields;
  }
  if (kind === 'ConfigMap') {
    delete (o as V1ConfigMap).data;
    delete (o as V1ConfigMap).binaryData;
  } else if (kind === 'Pod') trimPod(o as V1Pod);
  else if (kind === 'Deployment') delete (o as V1Deployment).metadata?.annotations?.['kubectl.kubernetes.io/last-applied-configuration'];
  return o;
}
