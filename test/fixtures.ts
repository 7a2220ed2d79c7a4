// Inputs shared by the unit and cluster suites.
import type { RecModelSpec } from '../operator/api/v1alpha1/index.js';

export type TableInput = NonNullable<RecModelSpec['model']['tables']>[number];

/** A small custom model: 13 dense features, MLPs 64-32 and 64-1, and the tables given (two of 1,000 rows by default). */
export function customModel(
  tables: TableInput[] = [
    { name: 't0', rows: 1000, dim: 16 },
    { name: 't1', rows: 1000, dim: 16 },
  ],
): RecModelSpec['model'] {
  return { architecture: 'custom', denseFeatures: 13, bottomMLP: [64, 32], topMLP: [64, 1], tables };
}
