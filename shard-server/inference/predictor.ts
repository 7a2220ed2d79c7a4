// The main role's pipeline, free of any web framework. A query fetches the rows pooled by the shards that hold
// tables it touches (one call per shard, in parallel, only those shards), then is split into parts of the batch
// size the scheduler chooses (DeepRecSched), each run on a free executor slot with its samples' rows: bottom MLP,
// pooled lookups in local tables, interaction, top MLP. Large queries may go whole to an accelerator executor.
import { ServeError } from '../../contracts/errors.js';
import type { Stage as MetricStage } from '../../contracts/metrics.js';
import { outputWidth, type Manifest } from '../../contracts/model-format.js';
import type { FailurePolicy } from '../../contracts/shard-server-args.js';
import type { TableLookup } from '../../contracts/wire/sections.js';
import type { Clock } from '../../lib/clock.js';
import { joinScores, splitQuery, type Part } from './batching.js';
import type { PartTask } from './compute.js';
import type { Executor } from './executor.js';
import { cachedSum, combine, type CacheSplit, type HotRows } from './hot-rows.js';
import type { PredictInput } from './request.js';
import type { Scheduler } from './scheduler.js';
import type { ShardClient } from './shard-client.js';
import type { SplitRoute, SplitTable } from './split.js';

/** The stages a predict times, besides end_to_end (which the HTTP layer times from arrival). */
export type Stage = Exclude<MetricStage, 'end_to_end' | 'lookup'>;

export interface PredictHooks {
  stage?(stage: Stage, seconds: number, shard?: number): void;
  fallback?(shard: number, error: ServeError): void;
}

/** The request's life as the HTTP layer tracks it: when its answer is due (clock ms) and its abort signal. */
export interface PredictScope {
  deadline: number;
  /** Aborted (its reason a ServeError) at the deadline or when the client leaves: the rest of the work is dropped. */
  signal?: AbortSignal;
}

export interface PredictResult {
  scores: Float32Array;
  outputs: number;
  /** Shards whose tables were replaced by zeros under the zero policy. */
  fallbacks: number[];
  /** Parts the query was split into, and whether it ran on the accelerator. */
  parts: number;
  accelerator: boolean;
}

export interface PredictorParts {
  manifest: Manifest;
  /** Indices of the tables this process holds. */
  localTables: number[];
  shards: ShardClient[];
  /** Tables split by rows across shards: the main pools them from the rows their pieces answer. */
  splits?: SplitTable[];
  /** The hot rows the main holds itself (spec.serving.hotRowCache): their lookups go to no shard. */
  hotRows?: HotRows;
  executor: Executor;
  accelerator?: Executor;
  scheduler: Scheduler;
  policy: FailurePolicy;
  clock: Clock;
}

/** The largest part run on the event loop: about a millisecond of compute for DLRM-RMC1's shape. */
export const INLINE_MAX_BATCH = 64;

/** A split table's pieces held by one shard: which split, and which of its pieces. */
type HeldPieces = { split: SplitTable; piece: number }[];

/** One query's routing of a split table, and the rows its pieces answered. */
interface SplitCall {
  split: SplitTable;
  route: SplitRoute;
  rows: (Float32Array | undefined)[];
}

export class Predictor {
  readonly manifest: Manifest;
  readonly shards: ShardClient[];
  readonly scheduler: Scheduler;
  private readonly outputs: number;
  /** By shard number: the pieces of split tables it holds. */
  private readonly held = new Map<number, HeldPieces>();
  /** Queries being predicted now. */
  private inflight = 0;

  constructor(private readonly p: PredictorParts) {
    this.manifest = p.manifest;
    this.outputs = outputWidth(p.manifest);
    this.shards = p.shards;
    this.scheduler = p.scheduler;
    for (const split of p.splits ?? [])
      split.pieces.forEach((piece, i) => {
        const own = this.held.get(piece.shard);
        if (own) own.push({ split, piece: i });
        else this.held.set(piece.shard, [{ split, piece: i }]);
      });
  }

  /**
   * Scores a query by its scope's deadline: the answer, or the scope's abort reason (DEADLINE_EXCEEDED, the client
   * gone) as soon as it fires; parts not yet started are then not run and shard calls are cancelled.
   */
  async predict(input: PredictInput, scope: PredictScope, hooks: PredictHooks = {}): Promise<PredictResult> {
    const start = performance.now();
    const { signal } = scope;
    signal?.throwIfAborted();
    const decision = this.scheduler.decide(input.batch);
    const accelerator = decision.accelerator && this.p.accelerator !== undefined;
    const executor = accelerator ? this.p.accelerator! : this.p.executor;
    const parts = splitQuery(input, accelerator ? input.batch : decision.batchSize, this.manifest.denseFeatures);
    const fallbacks = new Set<number>();
    this.inflight++;
    let done: Awaited<ReturnType<Predictor['runPart']>>[];
    try {
      const work = this.fanout(input, scope, hooks, fallbacks).then((remote) => {
        // asked once the rows are in: a lone small part may run on the event loop (Executor.inlineFor); a large one
        // would hold the loop for long enough to delay the sheds and probes of what arrives meanwhile
        const alone = parts.length === 1 && input.batch <= INLINE_MAX_BATCH && this.inflight === 1;
        const inline = executor.inlineFor?.(alone);
        return Promise.all(parts.map((part) => this.runPart(part, parts.length, remote, inline ?? executor, inline !== undefined, scope, hooks)));
      });
      done = signal ? await Promise.race([work, aborted(signal)]) : await work;
    } finally {
      this.inflight--;
    }
    const scores = joinScores(done, input.batch, this.outputs);
    this.scheduler.observe(performance.now() - start, performance.now(), input.batch);
    return { scores, outputs: this.outputs, fallbacks: [...fallbacks].sort((a, b) => a - b), parts: parts.length, accelerator };
  }

  /**
   * One call per shard for the whole query (not per part): the rows each shard pooled, per table, for every
   * sample of the query, and split tables pooled here from their pieces' rows. Parts take their samples' rows
   * from these.
   */
  private async fanout(input: PredictInput, scope: PredictScope, hooks: PredictHooks, fallbacks: Set<number>): Promise<[number, Float32Array][]> {
    const remote: [number, Float32Array][] = [];
    if (!this.shards.length) return remote;
    const t0 = performance.now();
    const splits = new Map<SplitTable, SplitCall>();
    for (const split of this.p.splits ?? []) {
      const sp = input.sparse.get(split.table);
      if (sp) splits.set(split, { split, route: split.route(sp.indices), rows: [] });
    }
    await Promise.all(this.shards.map((s) => this.callShard(s, input, scope, hooks, fallbacks, remote, splits)));
    for (const { split, route, rows } of splits.values())
      remote.push([split.table, split.pool(route, input.sparse.get(split.table)!.offsets, input.batch, input.pooling, rows)]);
    hooks.stage?.('fanout', (performance.now() - t0) / 1000);
    scope.signal?.throwIfAborted();
    return remote;
  }

  private async runPart(
    part: Part,
    parts: number,
    remote: [number, Float32Array][],
    executor: Executor,
    inline: boolean,
    scope: PredictScope,
    hooks: PredictHooks,
  ) {
    const { input } = part;
    // A worker gets its own copies (transferred, not cloned again); the event loop works on views of the request's
    // buffers. A query of one part hands over the shards' rows as they came, a part of several its own samples' rows.
    const own = <T extends Float32Array | Uint32Array>(a: T): T => (inline ? a : (a.slice() as T));
    const task: PartTask = { batch: input.batch, dense: own(input.dense), pooling: input.pooling, sparse: [], remote: [] };
    for (const t of this.p.localTables) {
      const sp = input.sparse.get(t);
      if (sp) task.sparse.push([t, own(sp.offsets), own(sp.indices)]);
    }
    for (const [table, values] of remote) {
      if (parts === 1) {
        task.remote.push([table, values]);
        continue;
      }
      const dim = this.manifest.tables[table]!.dim;
      const from = part.start * dim;
      const to = (part.start + input.batch) * dim;
      task.remote.push([table, inline ? values.subarray(from, to) : values.slice(from, to)]);
    }
    const r = await executor.run(task, scope.signal);
    hooks.stage?.('queue', r.waited);
    if (this.manifest.bottomMLP.length) hooks.stage?.('bottom_mlp', r.timings.bottom);
    if (task.sparse.length) hooks.stage?.('embeddings', r.timings.embeddings);
    hooks.stage?.('interaction', r.timings.interaction);
    hooks.stage?.('top_mlp', r.timings.top);
    return { start: part.start, scores: r.scores };
  }

  private async callShard(
    s: ShardClient,
    input: PredictInput,
    scope: PredictScope,
    hooks: PredictHooks,
    fallbacks: Set<number>,
    remote: [number, Float32Array][],
    splits: Map<SplitTable, SplitCall>,
  ): Promise<void> {
    const lookups: TableLookup[] = [];
    // tables with cached rows: the shard pools the others, the main adds the cached rows' sum
    const cached: [number, CacheSplit, number | undefined][] = [];
    const hot = this.p.hotRows;
    for (const t of s.tables) {
      const sp = input.sparse.get(t);
      if (!sp) continue;
      hot?.observe(t, sp.indices);
      const c = hot?.split(t, sp.offsets, sp.indices, input.batch);
      if (!c) lookups.push({ table: t, pooling: input.pooling, offsets: sp.offsets, indices: sp.indices });
      else {
        cached.push([t, c, c.indices.length ? lookups.length : undefined]);
        if (c.indices.length) lookups.push({ table: t, pooling: 'sum', offsets: c.offsets, indices: c.indices });
      }
    }
    // the rows of its pieces this query reads, each once (as if one sample of them, framed for a batch)
    const pieces: [SplitCall, number][] = [];
    for (const { split, piece } of this.held.get(s.shard) ?? []) {
      const call = splits.get(split);
      const asks = call?.route.asks[piece];
      if (!asks?.length) continue;
      const offsets = new Uint32Array(input.batch + 1);
      offsets[input.batch] = asks.length;
      lookups.push({ table: split.table, pooling: 'rows', offsets, indices: asks });
      pieces.push([call!, piece]);
    }
    const withCache = (sums: Float32Array[], answers: { values: Float32Array }[]) =>
      cached.forEach(([t, , at], i) =>
        remote.push([t, combine(sums[i]!, at === undefined ? undefined : answers[at]!.values, input.sparse.get(t)!.offsets, input.batch, input.pooling)]),
      );
    const poolCached = () => cached.map(([, c]) => cachedSum(c, input.batch));
    if (!lookups.length) return withCache(poolCached(), []);
    const ts = performance.now();
    try {
      const pending = s.lookup({ batch: input.batch, lookups }, scope.deadline, scope.signal);
      // the cached rows are pooled while the shard works, once the other shards' requests have gone out too
      let sums: Float32Array[] = [];
      if (cached.length) {
        await null;
        sums = poolCached();
      }
      const answers = await pending;
      const pooled = answers.length - pieces.length;
      const isCached = new Set(cached.flatMap(([, , at]) => (at === undefined ? [] : [at])));
      for (let i = 0; i < pooled; i++) if (!isCached.has(i)) remote.push([answers[i]!.table, answers[i]!.values]);
      withCache(sums, answers);
      pieces.forEach(([call, piece], i) => (call.rows[piece] = answers[pooled + i]!.values));
    } catch (e) {
      // the zero policy replaces an unavailable shard, not a request that is over (deadline, client gone)
      if (!(e instanceof ServeError) || this.p.policy === 'fail' || scope.signal?.aborted) throw e;
      fallbacks.add(s.shard);
      hooks.fallback?.(s.shard, e);
    } finally {
      hooks.stage?.('shard_call', (performance.now() - ts) / 1000, s.shard);
    }
  }
}

/** Rejects with the signal's reason once it aborts (never resolves). */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}
