// Where a component's pods may run: the device default (CPU pods avoid GPU nodes; GPU pods require them, ask
// for GPUs and tolerate their taint) merged with the user's nodeSelector, affinity and tolerations.
import type { V1Affinity, V1NodeSelectorRequirement, V1NodeSelectorTerm, V1ResourceRequirements, V1Toleration } from '@kubernetes/client-node';
import { toMiQuantity } from '../../lib/quantity.js';
import type { ResolvedPlacement } from '../api/v1alpha1/index.js';
import type { BuilderConfig } from './config.js';

export interface PodPlacement {
  affinity: V1Affinity;
  tolerations?: V1Toleration[];
  nodeSelector?: Record<string, string>;
  resources: V1ResourceRequirements;
}

function deviceRequirement(p: ResolvedPlacement, cfg: BuilderConfig): V1NodeSelectorRequirement {
  return p.device === 'gpu' ? { key: cfg.gpuNodeLabel, operator: 'In', values: [cfg.gpuNodeLabelValue] } : { key: cfg.gpuNodeLabel, operator: 'DoesNotExist' };
}

/** Node-affinity terms are ORed by Kubernetes, so the device requirement is ANDed into each user term. */
function mergeAffinity(required: V1NodeSelectorRequirement, user: V1Affinity | undefined): V1Affinity {
  const userTerms: V1NodeSelectorTerm[] = user?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  const terms = userTerms.length
    ? userTerms.map((t) => ({ ...t, matchExpressions: [required, ...(t.matchExpressions ?? [])] }))
    : [{ matchExpressions: [required] }];
  return {
    ...user,
    nodeAffinity: {
      ...user?.nodeAffinity,
      requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms },
    },
  };
}

export function podPlacement(p: ResolvedPlacement, cfg: BuilderConfig, derivedMemoryBytes?: number): PodPlacement {
  const requests: Record<string, string> = { ...(p.resources?.requests as Record<string, string> | undefined) };
  const limits: Record<string, string> = { ...(p.resources?.limits as Record<string, string> | undefined) };
  if (derivedMemoryBytes !== undefined && requests.memory === undefined) {
    requests.memory = toMiQuantity(derivedMemoryBytes);
  }
  const userTolerations = (p.tolerations ?? []) as V1Toleration[];
  let tolerations = userTolerations;
  if (p.device === 'gpu') {
    limits[cfg.gpuResource] ??= String(p.gpus ?? 1);
    const own: V1Toleration = { key: cfg.gpuResource, operator: 'Exists', effect: 'NoSchedule' };
    tolerations = [own, ...userTolerations.filter((t) => JSON.stringify(t) !== JSON.stringify(own))];
  }
  const resources: V1ResourceRequirements = {
    ...(Object.keys(requests).length ? { requests } : {}),
    ...(Object.keys(limits).length ? { limits } : {}),
  };
  return {
    affinity: mergeAffinity(deviceRequirement(p, cfg), p.affinity as V1Affinity | undefined),
    ...(tolerations.length ? { tolerations } : {}),
    ...(p.nodeSelector && Object.keys(p.nodeSelector).length ? { nodeSelector: { ...p.nodeSelector } } : {}),
    resources,
  };
}
