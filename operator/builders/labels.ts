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

export const MANAGED_BY = 'recshard-operator';
export const APP_NAME = 'recshard-shard-server';

export const ANNOTATION_PLAN_HASH = 'recshard.io/plan-hash';
export const ANNOTATION_CONFIG_HASH = 'recshard.io/config-hash';

export type { Role };

/** The immutable Deployment selector of one component. */
export function selectorLabels(model: string, role: Role, shard?: number): Record<string, string> {
  return {
    [LABEL_NAME]: APP_NAME,
    [LABEL_INSTANCE]: dnsLabel(model),
    [LABEL_COMPONENT]: role,
    ...(shard !== undefined ? { [LABEL_SHARD]: String(shard) } : {}),
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

export function componentLabels(model: string, role: Role, shard?: number): Record<string, string> {
  return { ...modelLabels(model), ...selectorLabels(model, role, shard) };
}

/** Selector for everything the operator manages (the informers' label selector). */
export const MANAGED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;

export function selectorString(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
