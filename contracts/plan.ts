// plan.json: the shard plan as the operator's planner makes it (`recshard plan -o json` prints a PlanDocument)
// and, with where each shard answers, the ServingPlan the shard-servers read from the plan ConfigMap (local
// serving writes the same file). operator/builders/serving-files.ts builds both; parseServingPlan reads it.
import { array, ContractError, integer, object, parseJson, string, type Checked } from './check.js';

export interface ShardDocument {
  index: number;
  /** Component name suffix, e.g. shard-0. */
  name: string;
  /** The net every table belongs to (net-specific only). */
  net?: string;
  tables: string[];
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
  shards: { index: number; tables: string[]; endpoint: string; replicas?: string[] }[];
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
  });
  return d;
}
