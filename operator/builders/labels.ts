// Every label the operator sets, from one place (Kubernetes recommended labels plus recshard's own).
import type { Role } from '../../contracts/shard-server-args.js';
import { dnsLabel } from './names.js';

export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_PART_OF = 'app.kubernetes.io/part-of';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_MODEL = 'recshard.io/model';
export const LABEL_SHARD = 'recshard.io/shard';
/** The serving version a pod serves (every pod), and the one a shard's Deployment, Service and budget belong to. */
export const LABEL_VERSION = 'recshard.io/version';

export const MANAGED_BY = 'recshard-operator';
export const APP_NAME = 'recshard-shard-server';

export const ANNOTATION_PLAN_HASH = 'recshard.io/plan-hash';
/** The plan ConfigMap a pod template mounts (named by the hash of its content). */
export const ANNOTATION_CONFIG = 'recshard.io/plan-configmap';

export type { Role };

/**
 * The immutable Deployment selector of one component. A shard's includes its version, so its Service never sends
 * lookups to the pods of another plan; the main's does not, since one main Deployment rolls from version to version.
 */
export function selectorLabels(model: string, role: Role, shard?: number, version?: string): Record<string, string> {
  return {
    [LABEL_NAME]: APP_NAME,
    [LABEL_INSTANCE]: dnsLabel(model),
    [LABEL_COMPONENT]: role,
    ...(shard !== undefined ? { [LABEL_SHARD]: String(shard) } : {}),
    ...(role === 'sparse' && version !== undefined ? { [LABEL_VERSION]: version } : {}),
  };
}

/** Labels of every object the operator creates for a model. */
export function modelLabels(model: string): Record<string, string> {
  return {
    [LABEL_NAME]: APP_NAME,
    [LABEL_INSTANCE]: dnsLabel(model),
    [LABEL_PART_OF]: 'recshard',
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_MODEL]: dnsLabel(model),
  };
}

export function componentLabels(model: string, role: Role, shard?: number, version?: string): Record<string, string> {
  return { ...modelLabels(model), ...selectorLabels(model, role, shard, version), ...(version !== undefined ? { [LABEL_VERSION]: version } : {}) };
}

/** Selector for everything the operator manages (the informers' label selector). */
export const MANAGED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;

export function selectorString(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
