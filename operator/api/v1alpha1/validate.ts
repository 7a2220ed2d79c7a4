// Validates a spec locally with its CRD's own schema and CEL rules, so the CLI and the operator reject what the
// API server rejects, with the field named. The cluster tests feed the same bad specs to both and compare.
import { evaluate } from '@marcbachmann/cel-js';
import { Ajv, type ErrorObject } from 'ajv';
import { CRD_FILE, loadCrd, toJsonSchema, type SchemaNode } from './crd.js';

export interface FieldError {
  /** JSON path in Kubernetes style, e.g. spec.model.tables[0].dim */
  field: string;
  message: string;
}

const compiled = new Map<string, ReturnType<Ajv['compile']>>();

function structuralValidator(file: string): ReturnType<Ajv['compile']> {
  let v = compiled.get(file);
  if (!v) {
    const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
    v = ajv.compile(toJsonSchema(loadCrd(file).schema.properties!.spec!));
    compiled.set(file, v);
  }
  return v;
}

function ajvPath(base: string, err: ErrorObject): string {
  const parts = err.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let path = base;
  for (const p of parts) path += /^\d+$/.test(p) ? `[${p}]` : /^[A-Za-z_][\w]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`;
  if (err.keyword === 'required') path += `.${(err.params as { missingProperty: string }).missingProperty}`;
  if (err.keyword === 'additionalProperties') path += `.${(err.params as { additionalProperty: string }).additionalProperty}`;
  return path;
}

function ajvMessage(err: ErrorObject): string {
  switch (err.keyword) {
    case 'required':
      return 'Required value';
    case 'additionalProperties':
      return 'unknown field';
    case 'enum':
      return `Unsupported value: supported values: ${(err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return err.message ?? err.keyword;
  }
}

/** Evaluates every x-kubernetes-validations rule where the value has the node it sits on. */
function celErrors(schema: SchemaNode, value: unknown, path: string, out: FieldError[]): void {
  if (value === undefined || value === null) return;
  for (const v of schema['x-kubernetes-validations'] ?? []) {
    let ok: unknown;
    try {
      ok = evaluate(v.rule, { self: value });
    } catch {
      ok = false;
    }
    if (ok !== true) out.push({ field: path, message: v.message ?? `failed rule: ${v.rule}` });
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => celErrors(schema.items!, item, `${path}[${i}]`, out));
  } else if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    for (const [k, prop] of Object.entries(schema.properties ?? {})) celErrors(prop, obj[k], `${path}.${k}`, out);
  }
}

/** Errors of a spec (of the CRD in `file`) that has already been defaulted; empty when valid. */
export function validateSpec(spec: unknown, file = CRD_FILE): FieldError[] {
  const validate = structuralValidator(file);
  if (!validate(spec)) {
    const errors = (validate.errors ?? []).map((e) => ({ field: ajvPath('spec', e), message: ajvMessage(e) }));
    return dedupe(errors);
  }
  const out: FieldError[] = [];
  celErrors(loadCrd(file).schema.properties!.spec!, spec, 'spec', out);
  return out;
}

function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.field}\0${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function formatFieldErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('; ');
}
