// Shared test inputs: resolved specs built through the real defaulting and validation path.
import { resolveSpec, type RecModelSpec, type ResolvedRecModelSpec } from '../../operator/api/v1alpha1/index.js';
import { customModel, type TableInput } from '../fixtures.js';

export type { TableInput };

export function specOf(partial: Partial<RecModelSpec> & { tables?: TableInput[] }): ResolvedRecModelSpec {
  const { tables, ...rest } = partial;
  const raw: RecModelSpec = {
    model: customModel(tables ?? [{ name: 't0', rows: 1000, dim: 16 }]),
    ...rest,
  };
  const r = resolveSpec(raw);
  if (!r.ok) throw new Error(`fixture invalid: ${JSON.stringify(r.errors)}`);
  return r.spec;
}
