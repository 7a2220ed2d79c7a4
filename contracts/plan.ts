// plan.json: the shard plan as the operator's planner makes it (`recshard plan -o json` prints a PlanDocument)
// and, with where each shard answers, the ServingPlan the shard-servers read from the plan ConfigMap (local
// serving writes the same file). operator/builders/serving-files.ts builds both; parseServingPlan reads it.
import { array, ContractError, integer, object, parseJson, string, type Checked } from './check.js';

/**
 * A row range of a table split across shards (a table larger than one shard holds): piece `piece` of `pieces`
 * equal row ranges. rowStart and rowEnd (exclusive) are the spec's rows, for people; the servers cut the rows the
 * artifact has with pieceRows (a scaled-down artifact has fewer).
 */
export interface TablePiece {
  table: string;
  piece: number;
  pieces: number;
  rowStart: number;
  rowEnd: number;
}

/** Rows [start, end) of piece `piece` of `pieces` of a table of `rows` rows: near-equal ranges in order. */
export function pieceRows(rows: number, piece: number, pieces: number): { start: number; end: number } {
  return { start: Math.floor((piece * rows) / pieces), end: Math.floor(((piece + 1) * rows) / pieces) };
}

export interface ShardDocument {
  index: number;
  /** Component name suffix, e.g. shard-0. */
  name: string;
  /** The net every table belongs to (net-specific only). */
  net?: string;
  /** Whole tables. */
  tables: string[];
  /** Row ranges of split tables (absent when the shard holds none). */
  pieces?: TablePiece[];
  bytes: number;
  /** Percent of the usable capacity (shardMemory less headroom) the tables fill. */
  percentOfCapacity: number;
  /** Expected lookups per sample (sum of pooling factors). */
  lookupsPerSample: number;
  /** Expected bytes read per sample, the load the planner balances. */
  lookupBytesPerSample: number;
}

export interface PlanDocument {
  model: string;
  strategy: string;
  hash: string;
  shardMemoryBytes: number;
  headroomPercent: number;
  capacityBytes: number;
  totalBytes: number;
  imbalance: number;
  /** Tables the main holds itself (monolithic). */
  main: { tables: string[] };
  shards: ShardDocument[];
}

/** Where a component answers: its Service (in a cluster) and the base URL the main calls. */
export interface Endpoint {
  service?: string;
  endpoint: string;
  /**
   * Base URLs of the shard's replicas, each reached on its own (local serving with several replicas per shard):
   * the main balances its calls over them and re-sends a slow call to another (hedging). Absent: one endpoint.
   */
  replicas?: string[];
}

export interface ServingPlan extends PlanDocument {
  /** The serving version (8+ hex digits) every lookup carries: a shard answers only lookups of its own version. */
  version: string;
  main: { tables: string[]; service?: string };
  shards: (ShardDocument & Endpoint)[];
}

/** What a shard-server reads of plan.json: the tables the main holds, and each shard's tables and endpoint. */
export interface ShardServerPlan {
  model: string;
  version: string;
  main: { tables: string[] };
  shards: { index: number; tables: string[]; pieces?: Pick<TablePiece, 'table' | 'piece' | 'pieces'>[]; endpoint: string; replicas?: string[] }[];
}

/** The plan with where the main and each shard answer. */
export function withEndpoints(doc: PlanDocument, version: string, main: { service?: string }, shard: (s: ShardDocument) => Endpoint): ServingPlan {
  return { ...doc, version, main: { ...doc.main, ...main }, shards: doc.shards.map((s) => ({ ...s, ...shard(s) })) };
}

/** Reads plan.json, checking the fields a shard-server uses; an error names the file and the field. */
export function parseServingPlan(text: string, file = 'plan.json'): ShardServerPlan {
  const doc = parseJson(text, file);
  const c: Checked = { file, at: '' };
  object(c, doc);
  const d = doc as ShardServerPlan;
  string({ ...c, at: 'model' }, d.model);
  string({ ...c, at: 'version' }, d.version);
  if (!/^[0-9a-f]{8,}$/.test(d.version)) throw new ContractError(file, 'version', `must be 8 or more lowercase hex digits, got ${JSON.stringify(d.version)}`);
  object({ ...c, at: 'main' }, d.main);
  array({ ...c, at: 'main.tables' }, d.main.tables, string);
  array({ ...c, at: 'shards' }, d.shards, (s, v) => {
    object(s, v);
    const shard = v as ShardServerPlan['shards'][number];
    integer({ ...s, at: `${s.at}.index` }, shard.index);
    array({ ...s, at: `${s.at}.tables` }, shard.tables, string);
    string({ ...s, at: `${s.at}.endpoint` }, shard.endpoint);
    if (shard.replicas !== undefined) array({ ...s, at: `${s.at}.replicas` }, shard.replicas, string);
    if (shard.pieces !== undefined)
      array({ ...s, at: `${s.at}.pieces` }, shard.pieces, (p, v) => {
        object(p, v);
        const piece = v as TablePiece;
        string({ ...p, at: `${p.at}.table` }, piece.table);
        integer({ ...p, at: `${p.at}.pieces` }, piece.pieces);
        integer({ ...p, at: `${p.at}.piece` }, piece.piece);
        if (piece.pieces < 2 || piece.piece < 0 || piece.piece >= piece.pieces)
          throw new ContractError(file, `${p.at}.piece`, `must be a piece 0..${piece.pieces - 1} of 2 or more, got ${piece.piece} of ${piece.pieces}`);
      });
  });
  return d;
}
