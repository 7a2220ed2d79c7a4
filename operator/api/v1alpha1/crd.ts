// Loads the CRDs (RecModel, LatencyScalingPolicy) from crds/, the schema source of truth, wherever this module
// runs from (the source tree under vitest, dist/ when compiled, an image that copies crds/ beside dist/).
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { findRepoFile } from '../../../lib/paths.js';

export const CRD_FILE = 'recshard.io_recmodels.yaml';
export const POLICY_CRD_FILE = 'recshard.io_latencyscalingpolicies.yaml';

/** A JSON-schema node as the CRD writes it (OpenAPI v3 plus the x-kubernetes extensions). */
export interface SchemaNode {
  type?: string;
  title?: string;
  description?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  required?: string[];
  default?: unknown;
  enum?: unknown[];
  anyOf?: SchemaNode[];
  'x-kubernetes-validations'?: { rule: string; message?: string }[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  [key: string]: unknown;
}

export function crdPath(file = CRD_FILE): string {
  return findRepoFile('crds', file);
}

const cached = new Map<string, { crd: Record<string, unknown>; schema: SchemaNode }>();

/** The parsed CRD and the openAPIV3Schema of its single version. */
export function loadCrd(file = CRD_FILE): { crd: Record<string, unknown>; schema: SchemaNode } {
  let c = cached.get(file);
  if (!c) {
    const crd = parse(readFileSync(crdPath(file), 'utf8')) as {
      spec: { versions: { schema: { openAPIV3Schema: SchemaNode } }[] };
    };
    c = { crd: crd as unknown as Record<string, unknown>, schema: crd.spec.versions[0]!.schema.openAPIV3Schema };
    cached.set(file, c);
  }
  return c;
}

/**
 * The CRD schema as plain JSON Schema: Kubernetes extensions and defaults dropped, and objects closed unless the
 * CRD preserves unknown fields (the API server rejects unknown fields under strict field validation).
 */
export function toJsonSchema(node: SchemaNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k.startsWith('x-kubernetes-') || k === 'default' || k === 'format') continue;
    if (k === 'properties') {
      out[k] = Object.fromEntries(Object.entries(v as Record<string, SchemaNode>).map(([p, s]) => [p, toJsonSchema(s)]));
    } else if (k === 'items' || (k === 'additionalProperties' && typeof v === 'object')) {
      out[k] = toJsonSchema(v as SchemaNode);
    } else if (k === 'anyOf') {
      out[k] = (v as SchemaNode[]).map(toJsonSchema);
    } else out[k] = v;
  }
  if (node.type === 'object' && out.additionalProperties === undefined) {
    out.additionalProperties = node['x-kubernetes-preserve-unknown-fields'] === true || !node.properties;
  }
  return out;
}
