// Embedding tables as the planner sees them: the explicit list and the generator form expanded into one list,
// each with its size and its expected lookup work per sample.
import { rowBytes } from '../../contracts/model-format.js';
import { declaredTables, type DeclaredTable } from '../../contracts/model-tables.js';
import { pieceRows, type TablePiece } from '../../contracts/plan.js';
import type { ResolvedModel } from '../api/v1alpha1/index.js';
import { PlanError } from './errors.js';

export interface PlannedTable extends DeclaredTable {
  /** Stored size: rows x bytes per row. */
  bytes: number;
  /** Expected bytes read per sample: pooling factor x bytes per row (the load we balance). */
  loadBytes: number;
  /** Set on a piece of a split table (its name is then "<table>[<piece>/<pieces>]"): which rows it holds. */
  piece?: TablePiece;
}

function planned(t: Omit<PlannedTable, 'bytes' | 'loadBytes'>): PlannedTable {
  // fields named, not spread: spreading is ten times slower at 65,536 tables
  const { name, rows, dim, dtype, poolingFactor, net } = t;
  const row = rowBytes(dim, dtype);
  return { name, rows, dim, dtype, poolingFactor, net, bytes: rows * row, loadBytes: poolingFactor * row };
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

/**
 * The fewest near-equal row ranges of a table, none larger than `capacity`: each piece is placed like a table of
 * its own, its expected lookups in proportion to its rows (rows equally likely). Every piece is over half of
 * capacity (the table is over capacity), so no shard ever holds two pieces of one table.
 */
export function splitTable(t: PlannedTable, capacity: number): PlannedTable[] {
  const rowBytes = t.bytes / t.rows;
  if (rowBytes > capacity) return [t];
  let pieces = Math.ceil(t.bytes / capacity);
  while (Math.ceil(t.rows / pieces) * rowBytes > capacity) pieces++;
  return Array.from({ length: pieces }, (_, piece) => {
    const { start, end } = pieceRows(t.rows, piece, pieces);
    const share = (end - start) / t.rows;
    return {
      ...t,
      name: `${t.name}[${piece}/${pieces}]`,
      rows: end - start,
      bytes: (end - start) * rowBytes,
      poolingFactor: t.poolingFactor * share,
      loadBytes: t.loadBytes * share,
      piece: { table: t.name, piece, pieces, rowStart: start, rowEnd: end },
    };
  });
}
