// Metric and label names both sides use: the shard-server exports these series; the operator reads them (from
// Prometheus or a scrape of the pods), writes them into the PromQL of the HPA and KEDA objects it emits, and
// labels its own per-model series with the same `namespace` and `model`; the chart's alerts and dashboard query
// both. Names follow Prometheus conventions: base units in the name (_seconds, _bytes), counters end in _total.
export const Metric = {
  /** Histogram of latency by stage (Stage): end_to_end from the request's arrival to its reply. */
  requestDuration: 'recshard_request_duration_seconds',
  batchSize: 'recshard_batch_size',
  inflight: 'recshard_inflight_requests',
  /** Requests admitted to the admission queue and waiting for a slot. */
  queued: 'recshard_queued_requests',
  /** Requests shed by admission control before any work, by reason (queue_full, deadline). */
  shed: 'recshard_shed_requests_total',
  lookups: 'recshard_lookups_total',
  errors: 'recshard_errors_total',
  tableResidentBytes: 'recshard_table_resident_bytes',
  shardUp: 'recshard_shard_up',
  /** The replicas of a shard the main spreads its calls over (plan.json's, or the addresses its endpoint resolves to). */
  shardReplicas: 'recshard_shard_replicas',
  /** Shard calls the main re-sent to another replica of the shard (hedged), and hedges that answered first. */
  shardHedges: 'recshard_shard_hedged_calls_total',
  shardHedgeWins: 'recshard_shard_hedge_wins_total',
  fallbacks: 'recshard_fallbacks_total',
  /** The main's count of lookups its shards refused as another version's (the shard counts errors_total{code}). */
  shardVersionMismatches: 'recshard_shard_version_mismatches_total',
  requestParts: 'recshard_request_parts_total',
  schedulerBatchSize: 'recshard_scheduler_batch_size',
  schedulerAcceleratorThreshold: 'recshard_scheduler_accelerator_threshold',
  /** The main's lookups of tables whose hot rows it caches, by result (hit: pooled by the main, miss: by a shard). */
  hotRowLookups: 'recshard_hot_row_lookups_total',
  /** Bytes of hot rows the main holds (spec.serving.hotRowCache). */
  hotRowCacheBytes: 'recshard_hot_row_cache_bytes',
} as const;

export const Label = {
  /** The RecModel's name, on the data plane's series and on the operator's per-model series. */
  model: 'model',
  /** Set by the scrape on the data plane's series; the operator sets it on its own per-model series. */
  namespace: 'namespace',
  /** Set by the scrape: the pod a series came from. */
  pod: 'pod',
  role: 'role',
  stage: 'stage',
  /** A sparse shard's index ('' where none applies). */
  shard: 'shard',
  code: 'code',
  executor: 'executor',
  mode: 'mode',
  reason: 'reason',
  result: 'result',
} as const;

/** The stages of recshard_request_duration_seconds. */
export type Stage =
  'end_to_end' | 'admission' | 'shed' | 'queue' | 'bottom_mlp' | 'embeddings' | 'fanout' | 'shard_call' | 'interaction' | 'top_mlp' | 'lookup';
