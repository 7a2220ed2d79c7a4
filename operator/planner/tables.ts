// Embedding tables as the planner sees them: the explicit list and the generator form expanded into one list,
// each with its size and its expected lookup work per sample.
import { BYTES as BYTES_PER_ELEMENT } from '../../contracts/model-format.js';
import { declaredTables, type DeclaredTable } from '../../contracts/model-tables.js';
import type { ResolvedModel } from '../api/v1alpha1/index.js';
import { PlanError } from './errors.js';

export { BYTES_PER_ELEMENT };

export interface PlannedTable extends DeclaredTable {
  /** Stored size: rows x dim x bytes per element. */
  bytes: number;
  /** Expected bytes read per sample: pooling factor x dim x bytes per element (the load we balance). */
  loadBytes: number;
}

function planned(t: Omit<PlannedTable, 'bytes' | 'loadBytes'>): PlannedTable {
  const el = BYTES_PER_ELEMENT[t.dtype];
  // fields named, not spread: spreading is ten times slower at 65,536 tables
  const { name, rows, dim, dtype, poolingFactor, net } = t;
  return { name, rows, dim, dtype, poolingFactor, net, bytes: rows * dim * el, loadBytes: poolingFactor * dim * el };
}

/** Every table of the model, explicit ones first then groups in order; names must be unique. */
export function expandTables(model: ResolvedModel): PlannedTable[] {
  const out: PlannedTable[] = [];
  for (const t of declaredTables(model)) out.push(planned(t));
  const seen = new Map<string, number>();
  out.forEach((t, i) => {
    if (seen.has(t.name)) {
      throw new PlanError('InvalidModel', `spec.model: table name "${t.name}" is declared twice (tables and tableGroups must generate unique names)`);
    }
    seen.set(t.name, i);
  });
  if (out.length === 0) throw new PlanError('InvalidModel', 'spec.model: the model has no embedding tables');
  return out;
}
