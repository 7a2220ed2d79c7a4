// Structural defaulting exactly as the API server does it for a CRD: a missing property with a `default` gets
// it, recursively, so objects defaulted to {} receive their own fields' defaults too.
import type { SchemaNode } from './crd.js';

export function applyDefaults<T>(schema: SchemaNode, value: T): T {
  return defaultNode(schema, structuredClone(value)) as T;
}

function defaultNode(schema: SchemaNode, value: unknown): unknown {
  if (Array.isArray(value)) {
    return schema.items ? value.map((v) => defaultNode(schema.items!, v)) : value;
  }
  if (value === null || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    if (obj[key] === undefined && prop.default !== undefined) obj[key] = structuredClone(prop.default);
    if (obj[key] !== undefined) obj[key] = defaultNode(prop, obj[key]);
  }
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    const inner = schema.additionalProperties;
    for (const key of Object.keys(obj)) if (!(key in (schema.properties ?? {}))) obj[key] = defaultNode(inner, obj[key]);
  }
  return obj;
}
