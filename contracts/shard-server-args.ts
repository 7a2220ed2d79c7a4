// The shard-server's command line: the operator writes it into each pod's container args, local serving passes
// it to the processes it starts, and the shard-server parses it (shard-server/flags.ts). Each flag is named once,
// here; shardServerArgs() is the only way to write one.

export type Role = 'main' | 'sparse';
export type FailurePolicy = 'fail' | 'zero';
export type SchedulerMode = 'auto' | 'fixed';

export interface ShardServerArgs {
  role: Role;
  /** The sparse shard's index in plan.json. */
  shard?: number;
  /** plan.json (contracts/plan.ts). */
  plan: string;
  /** model.json (contracts/model-config.ts); its artifact.uri locates the model. */
  modelConfig?: string;
  /** Model directory or URL; overrides model.json. */
  model?: string;
  host?: string;
  port?: number;
  /** Serve /metrics on this port alone (not on --port), so a NetworkPolicy can open one and not the other. */
  metricsPort?: number;
  deadlineMs?: number;
  failurePolicy?: FailurePolicy;
  maxBatch?: number;
  maxBodyBytes?: number;
  maxJsonBytes?: number;
  maxInflight?: number;
  maxQueue?: number;
  maxConnections?: number;
  probeMs?: number;
  hedgePercentile?: number;
  /** The main's cache of hot rows, in bytes (0: none) and how often it re-chooses them. */
  hotRowCacheBytes?: number;
  hotRowRefreshMs?: number;
  scheduler?: SchedulerMode;
  batchSize?: number;
  workers?: number;
  accelerator?: string;
  logLevel?: string;
  shutdownDelayMs?: number;
  emulateServiceMs?: number;
  /** Mutual TLS between the main and its shards: this server's certificate, its key, and the CA both sides trust. */
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

export interface FlagSpec {
  flag: string;
  /** The value's placeholder in help. */
  value: string;
  description: string;
  choices?: readonly string[];
  number?: boolean;
  required?: boolean;
}

export const SHARD_SERVER_FLAGS: { [K in keyof ShardServerArgs]-?: FlagSpec } = {
  role: { flag: '--role', value: '<role>', description: 'main or sparse', choices: ['main', 'sparse'], required: true },
  shard: { flag: '--shard', value: '<n>', description: 'shard index (sparse)', number: true },
  plan: { flag: '--plan', value: '<file>', description: 'plan.json (from the plan ConfigMap)', required: true },
  modelConfig: { flag: '--model-config', value: '<file>', description: 'model.json (from the plan ConfigMap); its artifact.uri locates the model' },
  model: { flag: '--model', value: '<uri>', description: 'model directory or URL; overrides model.json' },
  host: { flag: '--host', value: '<addr>', description: 'listen address' },
  port: { flag: '--port', value: '<n>', description: 'listen port', number: true },
  metricsPort: { flag: '--metrics-port', value: '<n>', description: 'serve /metrics on this port only (default: on --port)', number: true },
  deadlineMs: { flag: '--deadline-ms', value: '<n>', description: 'deadline of one predict, shard calls included', number: true },
  failurePolicy: {
    flag: '--failure-policy',
    value: '<p>',
    description: 'when a shard fails: fail the request, or use zero embeddings',
    choices: ['fail', 'zero'],
  },
  maxBatch: { flag: '--max-batch', value: '<n>', description: 'samples per request', number: true },
  maxBodyBytes: { flag: '--max-body-bytes', value: '<n>', description: 'request body limit (a 1,000-item RMC2 query is about 16 MiB)', number: true },
  maxJsonBytes: {
    flag: '--max-json-bytes',
    value: '<n>',
    description: 'JSON body limit (parsed JSON costs about 15 bytes of memory per byte; binary bodies use --max-body-bytes)',
    number: true,
  },
  maxInflight: {
    flag: '--max-inflight',
    value: '<n>',
    description: 'requests worked on at once; more wait in the admission queue (default: 4 per core, at least 8)',
    number: true,
  },
  maxQueue: {
    flag: '--max-queue',
    value: '<n>',
    description: 'requests waiting for a slot; beyond it, or when a deadline cannot be met, a request is shed at once with 503 and Retry-After',
    number: true,
  },
  maxConnections: { flag: '--max-connections', value: '<n>', description: 'open connections; more are closed as they arrive', number: true },
  probeMs: { flag: '--probe-ms', value: '<n>', description: 'how often the main checks each shard', number: true },
  hedgePercentile: {
    flag: '--hedge-percentile',
    value: '<p>',
    description:
      "main: a call to a shard with several replicas that has no answer after this percentile of the shard's recent calls " +
      'is re-sent to another replica, the first answer winning (at most 5% extra calls); 0 turns hedging off (default 95)',
    number: true,
  },
  hotRowCacheBytes: {
    flag: '--hot-row-cache-bytes',
    value: '<n>',
    description:
      "main: hold the most used rows of the shards' tables, up to this many bytes, and pool their lookups itself " +
      '(default: model.json serving.hotRowCache, else 0: none)',
    number: true,
  },
  hotRowRefreshMs: {
    flag: '--hot-row-refresh-ms',
    value: '<n>',
    description: 'main: how often the hot rows are chosen again from recent traffic and fetched from their shards (default 10000)',
    number: true,
  },
  scheduler: {
    flag: '--scheduler',
    value: '<mode>',
    description: 'main: auto tunes the batch size B online; fixed uses --batch-size (default: model.json serving.scheduler, else auto)',
    choices: ['auto', 'fixed'],
  },
  batchSize: {
    flag: '--batch-size',
    value: '<n>',
    description: 'main: split queries into parts of B samples (auto: where tuning starts; default: model.json serving.batchSize, else 64)',
    number: true,
  },
  workers: {
    flag: '--workers',
    value: '<n>',
    description: 'main: worker threads that run request parts; 0 runs them on the event loop (default: the cores available)',
    number: true,
  },
  accelerator: {
    flag: '--accelerator',
    value: '<provider>',
    description: 'main: onnxruntime execution provider for whole large queries, e.g. cuda (default none)',
  },
  logLevel: { flag: '--log-level', value: '<level>', description: 'debug, info, warn, error' },
  shutdownDelayMs: {
    flag: '--shutdown-delay-ms',
    value: '<n>',
    description: 'on SIGTERM, keep serving this long (not ready, each reply closing its connection) before draining, while Services forget the pod',
    number: true,
  },
  emulateServiceMs: {
    flag: '--emulate-service-ms',
    value: '<n>',
    description:
      'testing: every request also holds one serial lane for N ms, a server of 1000/N requests/s that uses no CPU ' +
      '(autoscaling tests on small machines; env RECSHARD_EMULATE_SERVICE_MS)',
    number: true,
  },
  tlsCert: {
    flag: '--tls-cert',
    value: '<file>',
    description:
      "mutual TLS (with --tls-key and --tls-ca): this server's certificate (PEM); a sparse shard serves TLS and requires callers' certificates, a main presents it to https:// shards",
  },
  tlsKey: { flag: '--tls-key', value: '<file>', description: "the certificate's private key (PEM)" },
  tlsCa: { flag: '--tls-ca', value: '<file>', description: 'the CA certificate (PEM) the other side must chain to' },
};

/** The arguments that say `a`, in the table's order, each as --flag=value; flags left undefined are left out. */
export function shardServerArgs(a: ShardServerArgs): string[] {
  const out: string[] = [];
  for (const [key, spec] of Object.entries(SHARD_SERVER_FLAGS) as [keyof ShardServerArgs, FlagSpec][]) {
    const v = a[key];
    if (v !== undefined) out.push(`${spec.flag}=${v}`);
  }
  return out;
}
