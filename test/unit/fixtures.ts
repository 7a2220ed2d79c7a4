// Shared test inputs: resolved specs built through the real defaulting and validation path.
import { resolveSpec, type RecModelSpec, type ResolvedRecModelSpec } from '../../operator/api/v1alpha1/index.js';

export type TableInput = NonNullable<RecModelSpec['model']['tables']>[number];

export function specOf(partial: Partial<RecModelSpec> & { tables?: TableInput[] }): ResolvedRecModelSpec {
  const { tables, ...rest } = partial;
  const raw: RecModelSpec = {
    model: { architecture: 'custom', denseFeatures: 13, bottomMLP: [64, 32], topMLP: [64, 1], tables: tables ?? [{ name: 't0', rows: 1000, dim: 16 }] },
    ...rest,
  };
  const r = resolveSpec(raw);
  if (!r.ok) throw new Error(`fixture invalid: ${JSON.stringify(r.errors)}`);
  return r.spec;
}
