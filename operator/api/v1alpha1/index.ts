// The RecModel API (recshard.io/v1alpha1): constants, object types and the one entry point that turns a raw
// object (a file or an API response) into a defaulted, validated spec.
import { applyDefaults } from './defaults.js';
import { loadCrd } from './crd.js';
import { validateSpec, type FieldError } from './validate.js';
import type { RecModelSpec, RecModelStatus, ResolvedRecModelSpec } from './types.generated.js';

export type { RecModelSpec, RecModelStatus, ResolvedRecModelSpec } from './types.generated.js';
export type { FieldError } from './validate.js';
export { formatFieldErrors } from './validate.js';

export const GROUP = 'recshard.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'RecModel';
export const PLURAL = 'recmodels';

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

export type ResolvedModel = ResolvedRecModelSpec['model'];
export type ResolvedTable = NonNullable<ResolvedModel['tables']>[number];
export type ResolvedTableGroup = NonNullable<ResolvedModel['tableGroups']>[number];
export type ResolvedPlacement = ResolvedRecModelSpec['placement']['main'];
export type Condition = NonNullable<RecModelStatus['conditions']>[number];
export type ComponentStatus = NonNullable<RecModelStatus['components']>[number];

export type ResolveResult = { ok: true; spec: ResolvedRecModelSpec } | { ok: false; errors: FieldError[] };

/** Defaults then validates a spec with the CRD's schema and CEL rules (what the API server would do). */
export function resolveSpec(spec: unknown): ResolveResult {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    return { ok: false, errors: [{ field: 'spec', message: 'Required value: spec must be an object' }] };
  }
  const defaulted = applyDefaults(loadCrd().schema.properties!.spec!, spec);
  const errors = validateSpec(defaulted);
  return errors.length ? { ok: false, errors } : { ok: true, spec: defaulted as ResolvedRecModelSpec };
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
