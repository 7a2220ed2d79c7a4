// Renders a plan for people (a table) and for programs (JSON or YAML with the same fields).
import Table from 'cli-table3';
import { stringify } from 'yaml';
import type { PlanDocument } from '../../contracts/plan.js';
import { formatBytes } from '../../lib/quantity.js';
import { plural } from '../../lib/text.js';
import type { Plan } from './plan.js';

export type OutputFormat = 'table' | 'json' | 'yaml';

/** The plan as plain data: what `-o json|yaml` prints and what the ConfigMap stores. */
export function planDocument(name: string, plan: Plan): PlanDocument {
  return {
    model: name,
    strategy: plan.strategy,
    hash: plan.hash,
    shardMemoryBytes: plan.shardMemoryBytes,
    headroomPercent: plan.headroomPercent,
    capacityBytes: plan.capacityBytes,
    totalBytes: plan.totalBytes,
    imbalance: plan.imbalance,
    main: { tables: plan.mainTables },
    shards: plan.shards,
  };
}

export function formatPlan(name: string, plan: Plan, format: OutputFormat): string {
  if (format === 'json') return JSON.stringify(planDocument(name, plan), null, 2) + '\n';
  if (format === 'yaml') return stringify(planDocument(name, plan));
  const head = [
    `Model ${name}: ${plan.strategy}${plan.auto ? ' (chosen by auto)' : ''}, ${plan.tables.length} tables, ${formatBytes(plan.totalBytes)} in all`,
    `Shard capacity ${formatBytes(plan.capacityBytes)} (${formatBytes(plan.shardMemoryBytes)} less ${plan.headroomPercent}% headroom); plan ${plan.hash}`,
  ];
  if (plan.strategy === 'monolithic') {
    head.push(`Main holds every table: ${formatBytes(plan.totalBytes)}, ${pct(plan.totalBytes, plan.capacityBytes)} of capacity; no sparse shards`);
    return [...head, ...plan.notes.map((n) => `Note: ${n}`)].join('\n') + '\n';
  }
  const table = new Table({
    head: ['SHARD', 'NET', 'TABLES', 'BYTES', '% CAP', 'LOOKUPS/SAMPLE', 'LOOKUP BYTES/SAMPLE', 'TABLE NAMES'],
    style: { head: [], border: [], compact: true },
    colAligns: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'left'],
  });
  for (const s of plan.shards) {
    table.push([
      s.name,
      s.net ?? '-',
      s.pieces ? `${s.tables.length ? `${s.tables.length}+` : ''}${plural(s.pieces.length, 'piece')}` : s.tables.length,
      formatBytes(s.bytes),
      `${s.percentOfCapacity}%`,
      s.lookupsPerSample,
      s.lookupBytesPerSample,
      abbreviate([...s.tables, ...(s.pieces ?? []).map((p) => `${p.table}[rows ${p.rowStart}-${p.rowEnd - 1}]`)]),
    ]);
  }
  return (
    [...head, table.toString(), `Imbalance (max/mean lookup bytes per sample): ${plan.imbalance.toFixed(3)}`, ...plan.notes.map((n) => `Note: ${n}`)].join(
      '\n',
    ) + '\n'
  );
}

const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;

function abbreviate(names: string[], max = 6): string {
  return names.length <= max ? names.join(',') : `${names.slice(0, max).join(',')},... (+${names.length - max})`;
}
