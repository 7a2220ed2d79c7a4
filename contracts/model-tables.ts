// The embedding tables a RecModel's spec.model declares, as one list: the explicit tables, then each group's
// generated ones (namePrefix0, namePrefix1, ...). The planner sizes them; a shard-server checks the artifact it
// loads against them (model.json carries spec.model).
import type { DType } from './model-format.js';

export interface DeclaredTable {
  name: string;
  rows: number;
  dim: number;
  dtype: DType;
  poolingFactor: number;
  net: string;
}

export interface TableDeclarations {
  tables?: DeclaredTable[];
  tableGroups?: (Omit<DeclaredTable, 'name'> & { namePrefix: string; count: number })[];
}

export function declaredTables(model: TableDeclarations): DeclaredTable[] {
  const out = [...(model.tables ?? [])];
  for (const g of model.tableGroups ?? [])
    for (let i = 0; i < g.count; i++)
      out.push({ name: `${g.namePrefix}${i}`, rows: g.rows, dim: g.dim, dtype: g.dtype, poolingFactor: g.poolingFactor, net: g.net });
  return out;
}
