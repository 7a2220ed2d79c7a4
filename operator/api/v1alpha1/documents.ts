// RecModel and LatencyScalingPolicy documents read from a file (YAML or JSON, several documents allowed),
// checked before anything uses them: the CLI, local serving, the demo and the benchmarks read RecModels here.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import {
  API_VERSION,
  checkEnvelope,
  formatFieldErrors,
  POLICY_KIND,
  resolvePolicySpec,
  type LatencyScalingPolicy,
  type RecModel,
  type ResolvedLatencyScalingPolicySpec,
} from './index.js';

/** A file that cannot be read, is not YAML, or holds documents that are not what they claim to be. */
export class DocumentError extends Error {
  override readonly name = 'DocumentError';
}

/** Every document of a YAML or JSON file, as plain values. */
export function readDocuments(file: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DocumentError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const docs = parseAllDocuments(text);
  const out: unknown[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length) throw new DocumentError(`${file}: invalid YAML: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as unknown;
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

export const isPolicy = (v: unknown): v is LatencyScalingPolicy =>
  (v as Partial<LatencyScalingPolicy>).kind === POLICY_KIND && (v as Partial<LatencyScalingPolicy>).apiVersion === API_VERSION;

/** The LatencyScalingPolicy documents among `docs`, defaulted and validated. */
export function policiesOf(file: string, docs: unknown[]): { name: string; spec: ResolvedLatencyScalingPolicySpec }[] {
  return docs.filter(isPolicy).map((p) => {
    const r = resolvePolicySpec(p.spec);
    if (!r.ok) throw new DocumentError(`${file}: LatencyScalingPolicy ${p.metadata?.name ?? '(unnamed)'} is invalid: ${formatFieldErrors(r.errors)}`);
    return { name: p.metadata?.name ?? '(unnamed)', spec: r.spec };
  });
}

/** Every RecModel document of a file; a LatencyScalingPolicy beside them is checked, not returned. */
export function readRecModels(file: string): RecModel[] {
  const docs = readDocuments(file);
  policiesOf(file, docs);
  const out: RecModel[] = [];
  for (const value of docs) {
    if (isPolicy(value)) continue;
    const envelope = checkEnvelope(value);
    if (envelope.length) throw new DocumentError(`${file}: not a RecModel: ${formatFieldErrors(envelope)}`);
    out.push(value as RecModel);
  }
  if (!out.length) throw new DocumentError(`${file}: no RecModel found`);
  return out;
}
