// Shard-server metrics in an explicit registry. Latency buckets are dense (steps of 1.25x to 1.33x) from 5 ms to
// 1 s, where the DeepRecSys targets sit (5 ms to 400 ms): the autoscaler reads percentiles from them, and a
// percentile interpolated inside a bucket twice as wide as the next would be off by up to half the bucket.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Label, Metric } from '../../contracts/metrics.js';
import type { SchedulerInfo } from '../../contracts/model-info.js';
import type { Role } from '../../contracts/shard-server-args.js';

export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3,
  0.4, 0.5, 0.6, 0.75, 1, 1.5, 2.5, 5,
];

/** The labels every series of this server carries. */
const OWN = [Label.model, Label.role] as const;

export class ServerMetrics {
  readonly registry = new Registry();
  readonly duration: Histogram<'model' | 'role' | 'stage' | 'shard'>;
  readonly batch: Histogram<'model' | 'role'>;
  readonly inflight: Gauge<'model' | 'role'>;
  readonly queued: Gauge<'model' | 'role'>;
  readonly shed: Counter<'model' | 'role' | 'reason'>;
  readonly lookups: Counter<'model' | 'role'>;
  readonly errors: Counter<'model' | 'role' | 'code'>;
  readonly resident: Gauge<'model' | 'role'>;
  readonly shardUp: Gauge<'model' | 'shard'>;
  readonly fallbacks: Counter<'model' | 'shard'>;
  readonly versionMismatches: Counter<'model' | 'shard'>;
  readonly shardReplicas: Gauge<'model' | 'shard'>;
  readonly hedges: Counter<'model' | 'shard'>;
  readonly hedgeWins: Counter<'model' | 'shard'>;
  readonly parts: Counter<'model' | 'role' | 'executor'>;
  private scheduler?: () => SchedulerInfo;
  private hotRows?: () => { hits: number; misses: number; bytes: number };
  /** Children of this server's own series, resolved once: a label lookup costs more than the observation. */
  readonly own: {
    batch: { observe(v: number): void };
    inflight: { inc(): void; dec(): void };
    queued: { inc(): void; dec(): void };
    lookups: { inc(v?: number): void };
  };
  private readonly stages = new Map<string, { observe(v: number): void }>();

  constructor(
    readonly model: string,
    readonly role: Role,
  ) {
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    const own = OWN;
    this.duration = new Histogram({
      name: Metric.requestDuration,
      help: 'Request latency by stage (end_to_end from arrival, admission, queue, bottom_mlp, embeddings, fanout, shard_call, interaction, top_mlp, lookup).',
      labelNames: [...own, Label.stage, Label.shard],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.batch = new Histogram({
      name: Metric.batchSize,
      help: 'Samples per request.',
      labelNames: own,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    });
    this.inflight = new Gauge({ name: Metric.inflight, help: 'Requests being served.', labelNames: own, registers });
    this.queued = new Gauge({ name: Metric.queued, help: 'Requests waiting in the admission queue.', labelNames: own, registers });
    this.shed = new Counter({
      name: Metric.shed,
      help: 'Requests shed by admission control before any work (503 OVERLOADED), by reason.',
      labelNames: [...own, Label.reason],
      registers,
    });
    this.lookups = new Counter({ name: Metric.lookups, help: 'Embedding rows read.', labelNames: own, registers });
    this.errors = new Counter({ name: Metric.errors, help: 'Failed requests by error code.', labelNames: [...own, Label.code], registers });
    this.resident = new Gauge({ name: Metric.tableResidentBytes, help: 'Bytes of embedding tables held in memory.', labelNames: own, registers });
    const perShard = { labelNames: [Label.model, Label.shard] as const, registers };
    this.shardUp = new Gauge({ name: Metric.shardUp, help: '1 when the main can reach the sparse shard.', ...perShard });
    this.fallbacks = new Counter({ name: Metric.fallbacks, help: 'Shard calls replaced by zero embeddings under the zero failure policy.', ...perShard });
    this.versionMismatches = new Counter({
      name: Metric.shardVersionMismatches,
      help: 'Lookups a shard refused because it serves another plan or artifact version (version skew).',
      ...perShard,
    });
    this.shardReplicas = new Gauge({
      name: Metric.shardReplicas,
      help: "Replicas of the sparse shard the main spreads its calls over (plan.json's, or its endpoint's addresses).",
      ...perShard,
    });
    this.hedges = new Counter({
      name: Metric.shardHedges,
      help: 'Shard calls re-sent to another replica of the shard because the first had no answer after the recent percentile (--hedge-percentile).',
      ...perShard,
    });
    this.hedgeWins = new Counter({ name: Metric.shardHedgeWins, help: 'Hedged shard calls whose second call answered first.', ...perShard });
    this.parts = new Counter({
      name: Metric.requestParts,
      help: 'Request parts run, by executor (cpu workers or the accelerator).',
      labelNames: [...own, Label.executor],
      registers,
    });
    this.schedulerGauges();
    const labels = this.labels;
    this.own = {
      batch: this.batch.labels(labels),
      inflight: this.inflight.labels(labels),
      queued: this.queued.labels(labels),
      lookups: this.lookups.labels(labels),
    };
  }

  /** The duration series of a stage (and shard: '' for none), resolved once per pair. */
  stage(stage: string, shard = ''): { observe(seconds: number): void } {
    const key = `${stage}/${shard}`;
    let child = this.stages.get(key);
    if (!child) {
      child = this.duration.labels({ ...this.labels, stage, shard });
      this.stages.set(key, child);
    }
    return child;
  }

  /** The main's scheduler state, read at each scrape (see observeScheduler). */
  private schedulerGauges(): void {
    const state = () => this.scheduler?.();
    const labels = () => this.labels;
    const own = OWN;
    new Gauge({
      name: Metric.schedulerBatchSize,
      help: 'The batch size B the main splits queries into (DeepRecSched).',
      labelNames: [...own, Label.mode],
      registers: [this.registry],
      collect() {
        const s = state();
        if (s) this.set({ ...labels(), mode: s.mode }, s.batchSize);
      },
    });
    new Gauge({
      name: Metric.schedulerAcceleratorThreshold,
      help: 'Queries with more samples than this go whole to the accelerator.',
      labelNames: own,
      registers: [this.registry],
      collect() {
        const t = state()?.acceleratorThreshold;
        if (t !== undefined) this.set(labels(), t);
      },
    });
  }

  /** The main's scheduler, read at every scrape. */
  observeScheduler(fn: () => SchedulerInfo): void {
    this.scheduler = fn;
  }

  /** The main's hot-row cache, read at each scrape: its lookups by result and the bytes it holds. */
  observeHotRows(fn: () => { hits: number; misses: number; bytes: number }): void {
    const registered = this.hotRows !== undefined;
    this.hotRows = fn;
    if (registered) return;
    const state = () => this.hotRows!();
    const labels = () => this.labels;
    new Counter({
      name: Metric.hotRowLookups,
      help: 'Lookups of tables whose hot rows the main caches: hit (pooled by the main) or miss (sent to a shard).',
      labelNames: [...OWN, Label.result],
      registers: [this.registry],
      collect() {
        const s = state();
        this.reset();
        this.inc({ ...labels(), result: 'hit' }, s.hits);
        this.inc({ ...labels(), result: 'miss' }, s.misses);
      },
    });
    new Gauge({
      name: Metric.hotRowCacheBytes,
      help: 'Bytes of hot rows the main holds.',
      labelNames: OWN,
      registers: [this.registry],
      collect() {
        this.set(labels(), state().bytes);
      },
    });
  }

  get labels() {
    return { [Label.model]: this.model, [Label.role]: this.role };
  }

  /** The labels of the main's series about one of its shards. */
  shardLabels(shard: number) {
    return { [Label.model]: this.model, [Label.shard]: String(shard) };
  }
}
