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

/** Node labels and taints of control-plane nodes: model pods stay off them unless the operator allows it. */
export const CONTROL_PLANE_KEYS = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master'];

/** Whether a node-selector requirement on the device label can hold together with the device's own. */
function agreesWithDevice(r: V1NodeSelectorRequirement, device: 'cpu' | 'gpu', value: string): boolean {
  const values = r.values ?? [];
  if (device === 'cpu') return r.operator === 'DoesNotExist' || r.operator === 'NotIn';
  switch (r.operator) {
    case 'In':
      return values.includes(value);
    case 'NotIn':
      return !values.includes(value);
    case 'DoesNotExist':
      return false;
    default:
      return true; // Exists; Gt and Lt are the user's to get right
  }
}

/**
 * What in a component's placement can never hold with its device (a nodeSelector or a required node-affinity
 * term on the GPU label that the device default contradicts) or would put it on control-plane nodes; empty when
 * nothing. Each message names the field.
 */
export function placementConflicts(placement: { main: ResolvedPlacement; sparse: ResolvedPlacement }, cfg: BuilderConfig): string[] {
  const out: string[] = [];
  for (const role of ['main', 'sparse'] as const) {
    const p = placement[role];
    const at = `spec.placement.${role}`;
    const device = p.device === 'gpu' ? 'gpu' : 'cpu';
    const want = device === 'gpu' ? `${cfg.gpuNodeLabel}=${cfg.gpuNodeLabelValue}` : `no ${cfg.gpuNodeLabel} label`;
    const selected = p.nodeSelector?.[cfg.gpuNodeLabel];
    if (selected !== undefined && (device === 'cpu' || selected !== cfg.gpuNodeLabelValue)) {
      out.push(`${at}.nodeSelector["${cfg.gpuNodeLabel}"]: "${selected}" contradicts device ${device} (which requires ${want}): no node can match both`);
    }
    const terms = (p.affinity as V1Affinity | undefined)?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
    terms.forEach((t, i) => {
      (t.matchExpressions ?? []).forEach((r, j) => {
        if (r.key === cfg.gpuNodeLabel && !agreesWithDevice(r, device, cfg.gpuNodeLabelValue)) {
          out.push(
            `${at}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[${i}].matchExpressions[${j}]: ` +
              `${r.key} ${r.operator} ${JSON.stringify(r.values ?? [])} contradicts device ${device} (which requires ${want})`,
          );
        }
      });
    });
    if (cfg.allowControlPlane) continue;
    for (const key of CONTROL_PLANE_KEYS) {
      if (p.nodeSelector && key in p.nodeSelector) out.push(`${at}.nodeSelector["${key}"]: model pods may not be placed on control-plane nodes`);
      terms.forEach((t, i) => {
        if ((t.matchExpressions ?? []).some((r) => r.key === key && (r.operator === 'In' || r.operator === 'Exists')))
          out.push(`${at}.affinity...nodeSelectorTerms[${i}]: selects ${key}: model pods may not be placed on control-plane nodes`);
      });
    }
    ((p.tolerations ?? []) as V1Toleration[]).forEach((t, i) => {
      if (!t.key && t.operator === 'Exists')
        out.push(`${at}.tolerations[${i}]: tolerating every taint would let model pods onto control-plane nodes; name the taint's key`);
      else if (t.key && CONTROL_PLANE_KEYS.includes(t.key)) out.push(`${at}.tolerations[${i}]: ${t.key}: model pods may not be placed on control-plane nodes`);
    });
  }
  return out;
}
