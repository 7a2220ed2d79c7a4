// The RecModel API (recshard.io/v1alpha1): constants, object types and the one entry point that turns a raw
// object (a file or an API response) into a defaulted, validated spec.
import { loadCrd, POLICY_CRD_FILE } from './crd.js';
import { applyDefaults } from './defaults.js';
import type { LatencyScalingPolicySpec, RecModelSpec, RecModelStatus, ResolvedLatencyScalingPolicySpec, ResolvedRecModelSpec } from './types.generated.js';
import { validateSpec, type FieldError } from './validate.js';

export type { LatencyScalingPolicySpec, RecModelSpec, RecModelStatus, ResolvedLatencyScalingPolicySpec, ResolvedRecModelSpec } from './types.generated.js';
export type { FieldError } from './validate.js';
export { formatFieldErrors } from './validate.js';

export const GROUP = 'recshard.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'RecModel';
export const PLURAL = 'recmodels';
export const POLICY_KIND = 'LatencyScalingPolicy';
export const POLICY_PLURAL = 'latencyscalingpolicies';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  deletionTimestamp?: string;
}

export interface RecModel {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: RecModelSpec;
  status?: RecModelStatus;
}

/** Cluster-scoped: how RecModels that reference it are scaled on tail latency (owned by SRE teams). */
export interface LatencyScalingPolicy {
  apiVersion: typeof API_VERSION;
  kind: typeof POLICY_KIND;
  metadata: ObjectMeta;
  spec: LatencyScalingPolicySpec;
}

export type ResolvedModel = ResolvedRecModelSpec['model'];
export type ResolvedTable = NonNullable<ResolvedModel['tables']>[number];
export type ResolvedTableGroup = NonNullable<ResolvedModel['tableGroups']>[number];
export type ResolvedPlacement = ResolvedRecModelSpec['placement']['main'];
export type Condition = NonNullable<RecModelStatus['conditions']>[number];
export type ComponentStatus = NonNullable<RecModelStatus['components']>[number];

export type Resolved<T> = { ok: true; spec: T } | { ok: false; errors: FieldError[] };
export type ResolveResult = Resolved<ResolvedRecModelSpec>;

function resolveWith<T>(spec: unknown, file?: string): Resolved<T> {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    return { ok: false, errors: [{ field: 'spec', message: 'Required value: spec must be an object' }] };
  }
  const defaulted = applyDefaults(loadCrd(file).schema.properties!.spec!, spec);
  const errors = validateSpec(defaulted, file);
  return errors.length ? { ok: false, errors } : { ok: true, spec: defaulted as T };
}

/** Defaults then validates a RecModel spec with the CRD's schema and CEL rules (what the API server would do). */
export function resolveSpec(spec: unknown): ResolveResult {
  return resolveWith<ResolvedRecModelSpec>(spec);
}

/** The same for a LatencyScalingPolicy spec. */
export function resolvePolicySpec(spec: unknown): Resolved<ResolvedLatencyScalingPolicySpec> {
  return resolveWith<ResolvedLatencyScalingPolicySpec>(spec, POLICY_CRD_FILE);
}

/** Checks the envelope of a RecModel document read from a file. */
export function checkEnvelope(doc: unknown): FieldError[] {
  const errors: FieldError[] = [];
  const d = doc as Partial<RecModel> | null;
  if (!d || typeof d !== 'object') return [{ field: '', message: 'document is not an object' }];
  if (d.apiVersion !== API_VERSION) errors.push({ field: 'apiVersion', message: `must be ${API_VERSION}, got ${JSON.stringify(d.apiVersion)}` });
  if (d.kind !== KIND) errors.push({ field: 'kind', message: `must be ${KIND}, got ${JSON.stringify(d.kind)}` });
  if (!d.metadata?.name) errors.push({ field: 'metadata.name', message: 'Required value' });
  return errors;
}

/**
 * Reads both CRDs and compiles their validators now (a few hundred milliseconds, once): a long-running process
 * calls this at start-up, so the first reconcile does not hold its event loop for it.
 */
export function warmUp(): void {
  resolveSpec({});
  resolvePolicySpec({});
}
