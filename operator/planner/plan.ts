// The shard planner: a resolved RecModel spec in, a shard plan out. Pure, deterministic, no Kubernetes imports.
import { createHash } from 'node:crypto';
import type { ShardDocument } from '../../contracts/plan.js';
import { formatBytes, parseQuantity } from '../../lib/quantity.js';
import { plural } from '../../lib/text.js';
import type { ResolvedRecModelSpec } from '../api/v1alpha1/index.js';
import { cheaper, describeCost, planCost, QUERY_SAMPLES, type PlanCost } from './cost.js';
import { PlanError } from './errors.js';
import { balance, firstFitDecreasing, netSpecific, provenTooFew, type Bin } from './strategies.js';
import { expandTables, splitTable, type PlannedTable } from './tables.js';

export type Strategy = ResolvedRecModelSpec['sharding']['strategy'];

/** One sparse shard of the plan, as plan.json writes it. */
export type ShardPlan = ShardDocument;

export interface Plan {
  strategy: Strategy;
  shardMemoryBytes: number;
  headroomPercent: number;
  /** Usable bytes per shard for tables. */
  capacityBytes: number;
  tables: PlannedTable[];
  totalBytes: number;
  /** Tables the main holds itself (monolithic only). */
  mainTables: string[];
  shards: ShardPlan[];
  /** Max over mean lookup bytes per sample across shards; 1 with fewer than two shards. */
  imbalance: number;
  /** Short hash of the assignment; changes exactly when some table moves. */
  hash: string;
  /** What the planner changed from what was asked (e.g. fewer load-balanced shards than tables would leave empty). */
  notes: string[];
  /** Set when strategy auto chose this plan's strategy (notes[0] says why). */
  auto?: true;
}

/** Bounds on what one model may plan: the operator's settings (--max-shards), shown in the refusal. */
export interface PlanLimits {
  maxShards: number;
}

/** A model may have this many sparse shards by default (each is a Deployment, a Service and a budget). */
export const DEFAULT_PLAN_LIMITS: PlanLimits = { maxShards: 1024 };

export type PlanResult = { ok: true; plan: Plan } | { ok: false; error: PlanError };

/** Natural order (emb-2 before emb-10), the same in every locale. */
const byName = new Intl.Collator('en', { numeric: true }).compare;

export function planModel(spec: ResolvedRecModelSpec, limits: PlanLimits = DEFAULT_PLAN_LIMITS): PlanResult {
  try {
    return { ok: true, plan: spec.sharding.strategy === 'auto' ? choosePlan(spec, limits) : buildPlan(spec, limits) };
  } catch (e) {
    if (e instanceof PlanError) return { ok: false, error: e };
    throw e;
  }
}

/**
 * What every strategy works with: the tables, what is placed (the tables, a split table's pieces in its place;
 * by name, so that the plan does not depend on the order the spec lists them in),
 * their total, the usable bytes of one shard and how to say it.
 */
interface Sizing {
  tables: PlannedTable[];
  items: PlannedTable[];
  totalBytes: number;
  capacity: number;
  /** "921.6 MiB (shardMemory 1Gi less 10% headroom)", for messages. */
  capText: string;
}

type Assignment = { bins: { net?: string; bin: Bin }[]; mainTables: string[] };

/** monolithic and singular: every table in one place, which must hold them all. */
function onOneServer(strategy: 'monolithic' | 'singular', s: Sizing): Assignment {
  const { tables, totalBytes, capacity, capText } = s;
  if (totalBytes > capacity) {
    const where = strategy === 'monolithic' ? 'the main' : 'one sparse shard';
    throw new PlanError(
      'Infeasible',
      `${strategy}: the ${tables.length} tables need ${formatBytes(totalBytes)} but ${where} holds at most ${capText}; ` +
        `use load-balanced or net-specific, or raise spec.sharding.shardMemory`,
    );
  }
  if (strategy === 'monolithic') return { bins: [], mainTables: tables.map((t) => t.name) };
  return { bins: [{ bin: { tables, bytes: totalBytes, load: tables.reduce((sum, t) => sum + t.loadBytes, 0) } }], mainTables: [] };
}

/**
 * load-balanced over the shard count asked for (no more than there are tables: more would be empty), or over
 * the fewest (at least two, where there are two tables) that hold the tables: counts are tried one by one from the least that could hold
 * them, then doubled and bisected, so a model that needs 1,000 shards is not balanced 1,000 times.
 */
function loadBalanced(shards: number | undefined, s: Sizing, limits: PlanLimits, notes: string[]): Assignment {
  const { tables, items, totalBytes, capacity, capText } = s;
  const minShards = Math.max(1, Math.ceil(totalBytes / capacity));
  let found: Bin[] | undefined;
  if (shards !== undefined) {
    const n = Math.min(shards, items.length);
    if (n < shards)
      notes.push(
        `${plural(shards, 'shard')} asked for, ${n} planned: one per ${items.length > tables.length ? 'table or piece' : 'table'}, more would be empty`,
      );
    found = balance(items, n, capacity);
    if (!found) {
      throw new PlanError(
        'Infeasible',
        `load-balanced: ${shards} shards of ${capText} cannot hold the ${tables.length} tables (${formatBytes(totalBytes)} in ` +
          `all); ${enoughShards(items, n, capacity, limits)}`,
      );
    }
  } else {
    const fits = (n: number) => (n <= limits.maxShards ? balance(items, n, capacity) : undefined);
    // two at least, for a spare (but never more than there are tables)
    let n = Math.min(Math.max(2, minShards), items.length);
    const linearUntil = n + 8;
    for (; n < linearUntil && n <= limits.maxShards && !(found = fits(n)); n++);
    if (!found) {
      let lo = n - 1; // the largest count known not to fit
      for (; n <= limits.maxShards && !(found = fits(n)); n = Math.min(2 * n, n === limits.maxShards ? n + 1 : limits.maxShards)) lo = n;
      for (let hi = n; found && hi - lo > 1;) {
        const mid = (lo + hi) >> 1;
        const f = fits(mid);
        if (f) [hi, found] = [mid, f];
        else lo = mid;
      }
    }
    if (!found) {
      throw new PlanError(
        'PlanTooLarge',
        `load-balanced: no shard count up to ${limits.maxShards} (the operator's --max-shards) holds the ${tables.length} tables ` +
          `(${formatBytes(totalBytes)}) at ${capText}`,
      );
    }
  }
  return { bins: found.filter((bin) => bin.tables.length > 0).map((bin) => ({ bin })), mainTables: [] };
}

/**
 * What to ask for instead of n shards that cannot hold the tables: a count that holds them (one a plan was found
 * for), said to be the least only where every smaller count is proven too few.
 */
function enoughShards(tables: PlannedTable[], n: number, capacity: number, limits: PlanLimits): string {
  const ffd = firstFitDecreasing(tables, capacity).length;
  let k: number | undefined;
  for (let m = n + 1; m < Math.min(ffd, n + 9) && k === undefined; m++) if (balance(tables, m, capacity)) k = m;
  // first-fit decreasing's count always holds them (balance falls back to its packing)
  k ??= Math.max(ffd, n + 1);
  let proven = true;
  for (let m = n; m < k && proven; m++) proven = provenTooFew(tables, m, capacity);
  const beyond = k > limits.maxShards ? ` (more than the operator's --max-shards, ${limits.maxShards})` : '';
  return proven ? `at least ${k} shards are needed${beyond}` : `${k} shards hold them${beyond}`;
}

function assign(sharding: ResolvedRecModelSpec['sharding'], s: Sizing, limits: PlanLimits, notes: string[]): Assignment {
  switch (sharding.strategy) {
    case 'monolithic':
    case 'singular':
      return onOneServer(sharding.strategy, s);
    case 'load-balanced':
      return loadBalanced(sharding.shards, s, limits, notes);
    case 'net-specific':
      return { bins: netSpecific(s.items, s.capacity).flatMap(({ net, bins }) => bins.map((bin) => ({ net, bin }))), mainTables: [] };
    case 'auto':
      throw new Error('auto is planned by choosePlan');
  }
}

const CANDIDATES = ['monolithic', 'singular', 'load-balanced', 'net-specific'] as const;

/**
 * strategy auto: every strategy that holds the tables is planned (load-balanced over the fewest shards that hold
 * them; net-specific where there are two nets or more), and the cheapest per query by the cost model (cost.ts) is
 * kept; its notes say why, and what the runner-up would cost. Where none holds them, the error is load-balanced's.
 */
function choosePlan(spec: ResolvedRecModelSpec, limits: PlanLimits): Plan {
  const nets = new Set(expandTables(spec.model).map((t) => t.net));
  const options: { plan: Plan; cost: PlanCost }[] = [];
  let refusal: PlanError | undefined;
  for (const strategy of CANDIDATES) {
    if (strategy === 'net-specific' && nets.size < 2) continue;
    try {
      const plan = buildPlan({ ...spec, sharding: { ...spec.sharding, strategy } }, limits);
      options.push({ plan, cost: planCost(plan) });
    } catch (e) {
      if (!(e instanceof PlanError)) throw e;
      if (strategy === 'load-balanced') refusal = e;
    }
  }
  if (!options.length) throw new PlanError(refusal!.reason, `auto: no strategy holds the tables; ${refusal!.message}`);
  options.sort((a, b) => (cheaper(a.cost, b.cost) ? -1 : cheaper(b.cost, a.cost) ? 1 : 0));
  const [best, next] = options as [(typeof options)[number], ...typeof options];
  const what = (o: (typeof options)[number]) => `${o.plan.strategy}${o.plan.shards.length ? ` (${plural(o.plan.shards.length, 'shard')})` : ''}`;
  const why =
    `auto chose ${what(best)}: per ${QUERY_SAMPLES}-sample query ${describeCost(best.cost)}` +
    (next ? `; runner-up ${what(next)}: ${describeCost(next.cost)}` : '; no other strategy holds the tables');
  return { ...best.plan, notes: [why, ...best.plan.notes], auto: true };
}

function shardPlan({ net, bin }: { net?: string; bin: Bin }, index: number, capacity: number): ShardPlan {
  const pieces = bin.tables.flatMap((t) => (t.piece ? [t.piece] : [])).sort((a, b) => byName(a.table, b.table));
  return {
    index,
    name: `shard-${index}`,
    ...(net !== undefined ? { net } : {}),
    tables: bin.tables.flatMap((t) => (t.piece ? [] : [t.name])).sort(byName),
    ...(pieces.length ? { pieces } : {}),
    bytes: bin.bytes,
    percentOfCapacity: round((100 * bin.bytes) / capacity, 1),
    lookupsPerSample: round(
      bin.tables.reduce((sum, t) => sum + t.poolingFactor, 0),
      3,
    ),
    lookupBytesPerSample: bin.load,
  };
}

function buildPlan(spec: ResolvedRecModelSpec, limits: PlanLimits): Plan {
  const { strategy, shardMemory, headroom } = spec.sharding;
  const shardMemoryBytes = parseQuantity(shardMemory);
  const capacity = Math.floor((shardMemoryBytes * (100 - headroom)) / 100);
  const tables = expandTables(spec.model);
  const capText = `${formatBytes(capacity)} (shardMemory ${shardMemory} less ${headroom}% headroom)`;
  const notes: string[] = [];
  const s: Sizing = {
    tables,
    items: split(
      strategy,
      [...tables].sort((a, b) => byName(a.name, b.name)),
      capacity,
      capText,
      notes,
    ),
    totalBytes: tables.reduce((sum, t) => sum + t.bytes, 0),
    capacity,
    capText,
  };
  const { bins, mainTables } = assign(spec.sharding, s, limits, notes);
  if (bins.length > limits.maxShards) {
    throw new PlanError(
      'PlanTooLarge',
      `${strategy}: the ${tables.length} tables (${formatBytes(s.totalBytes)}) need ${bins.length} shards at ${s.capText}, but a model may ` +
        `have at most ${limits.maxShards} (the operator's --max-shards); raise spec.sharding.shardMemory or use fewer nets`,
    );
  }
  const shards = bins.map((b, index) => shardPlan(b, index, capacity));
  return {
    strategy,
    shardMemoryBytes,
    headroomPercent: headroom,
    capacityBytes: capacity,
    tables: [...tables].sort((a, b) => byName(a.name, b.name)),
    totalBytes: s.totalBytes,
    mainTables,
    shards,
    imbalance: imbalanceOf(shards.map((x) => x.lookupBytesPerSample)),
    hash: hashAssignment(strategy, mainTables, shards),
    notes,
  };
}

export function imbalanceOf(loads: number[]): number {
  if (loads.length < 2) return 1;
  const mean = loads.reduce((s, l) => s + l, 0) / loads.length;
  return mean === 0 ? 1 : round(Math.max(...loads) / mean, 4);
}

/**
 * Tables larger than one shard, split by rows where the strategy spreads tables over shards (load-balanced and
 * net-specific; a piece keeps its table's net); refused where every table has to be in one place.
 */
function split(strategy: Strategy, tables: PlannedTable[], capacity: number, capText: string, notes: string[]): PlannedTable[] {
  const items: PlannedTable[] = [];
  for (const t of tables) {
    if (t.bytes <= capacity) {
      items.push(t);
      continue;
    }
    const pieces = strategy === 'load-balanced' || strategy === 'net-specific' ? splitTable(t, capacity) : [t];
    if (pieces.length === 1) {
      const splits = strategy === 'load-balanced' || strategy === 'net-specific';
      throw new PlanError(
        'Infeasible',
        `table "${t.name}" needs ${formatBytes(t.bytes)} (${t.bytes} bytes: ${t.rows} rows x ${t.dim} x ${t.dtype}) but one server holds at most ${capText}` +
          (splits ? `, less than one row of it` : `; ${strategy} keeps every table in one place (load-balanced and net-specific split it by rows)`),
      );
    }
    items.push(...pieces);
    const largest = formatBytes(Math.max(...pieces.map((p) => p.bytes)));
    notes.push(`table "${t.name}" (${formatBytes(t.bytes)}) is larger than a shard holds: split by rows into ${pieces.length} pieces of at most ${largest}`);
  }
  return items;
}

function hashAssignment(strategy: Strategy, main: string[], shards: ShardPlan[]): string {
  // a split table's pieces count only where there are some, so plans without them keep their hashes
  const placed = (s: ShardPlan) => (s.pieces ? [...s.tables, ...s.pieces.map((p) => `${p.table}[${p.piece}/${p.pieces}]`)] : s.tables);
  const canonical = JSON.stringify({ strategy, main, shards: shards.map(placed) });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 10);
}

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

/** The number of shards first-fit-decreasing needs for these tables: net-specific's per-net shard count. */
export function ffdShardCount(tables: PlannedTable[], capacity: number): number {
  return firstFitDecreasing(tables, capacity).length;
}
