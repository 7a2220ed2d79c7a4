// The main role's pipeline, free of any web framework: bottom MLP, pooled embeddings (local tables, or a
// parallel fan-out to only the shards that hold the tables the request touches), interaction, top MLP.
import type { Clock } from '../../operator/lib/clock.js';
import { ServeError } from '../http/errors.js';
import type { EmbeddingTable } from '../model/load.js';
import type { Manifest } from '../model/manifest.js';
import type { DenseNet } from './dense.js';
import { poolInto } from './embeddings.js';
import { interact } from './interaction.js';
import type { TableLookup } from './protocol.js';
import type { PredictInput } from './request.js';
import type { ShardClient } from './shard-client.js';

export type FailurePolicy = 'fail' | 'zero';
export type Stage = 'bottom_mlp' | 'embeddings' | 'fanout' | 'shard_call' | 'interaction' | 'top_mlp';

export interface PredictHooks {
  stage?(stage: Stage, seconds: number, shard?: number): void;
  fallback?(shard: number, error: ServeError): void;
}

export interface PredictResult {
  scores: Float32Array;
  outputs: number;
  /** Shards whose tables were replaced by zeros under the zero policy. */
  fallbacks: number[];
}

export class Predictor {
  readonly bottomOut: number;
  private readonly dims: number[];

  constructor(
    readonly manifest: Manifest,
    private readonly bottom: DenseNet | undefined,
    private readonly top: DenseNet,
    private readonly local: Map<number, EmbeddingTable>,
    readonly shards: ShardClient[],
    private readonly opts: { policy: FailurePolicy; deadlineMs: number },
    private readonly clock: Clock,
  ) {
    this.bottomOut = manifest.bottomMLP.length ? manifest.bottomMLP[manifest.bottomMLP.length - 1]! : manifest.denseFeatures;
    this.dims = manifest.tables.map((t) => t.dim);
  }

  async predict(input: PredictInput, hooks: PredictHooks = {}): Promise<PredictResult> {
    const { batch } = input;
    const now = () => performance.now();
    const deadline = this.clock.now().getTime() + this.opts.deadlineMs;
    const pooled = this.dims.map((d) => new Float32Array(batch * d));

    // Remote lookups start first so the network overlaps the bottom MLP.
    const fallbacks: number[] = [];
    const t0 = now();
    const remote = Promise.all(
      this.shards.map(async (s) => {
        const lookups: TableLookup[] = [];
        for (const t of s.tables) {
          const sp = input.sparse.get(t);
          if (sp) lookups.push({ table: t, pooling: input.pooling, offsets: sp.offsets, indices: sp.indices });
        }
        if (!lookups.length) return;
        const ts = now();
        try {
          for (const r of await s.lookup({ batch, lookups }, deadline)) pooled[r.table]!.set(r.values);
        } catch (e) {
          if (!(e instanceof ServeError) || this.opts.policy === 'fail') throw e;
          fallbacks.push(s.shard);
          hooks.fallback?.(s.shard, e);
        } finally {
          hooks.stage?.('shard_call', (now() - ts) / 1000, s.shard);
        }
      }),
    );
    remote.catch(() => {}); // observed below; avoid an unhandled rejection while the bottom MLP runs

    let tb = now();
    const bottom = this.bottom ? await this.bottom.run(input.dense, batch) : input.dense;
    if (this.bottom) hooks.stage?.('bottom_mlp', (now() - tb) / 1000);

    tb = now();
    for (const [t, table] of this.local) {
      const sp = input.sparse.get(t);
      if (sp) poolInto(table, sp.offsets, sp.indices, batch, input.pooling, pooled[t]!);
    }
    if (this.local.size) hooks.stage?.('embeddings', (now() - tb) / 1000);

    await remote;
    if (this.shards.length) hooks.stage?.('fanout', (now() - t0) / 1000);

    tb = now();
    const z = new Float32Array(batch * this.manifest.topInput);
    interact(this.manifest.interaction, batch, bottom, this.bottomOut, pooled, this.dims, z, this.manifest.topInput);
    hooks.stage?.('interaction', (now() - tb) / 1000);

    tb = now();
    const scores = await this.top.run(z, batch);
    hooks.stage?.('top_mlp', (now() - tb) / 1000);
    return { scores, outputs: this.top.outputs, fallbacks: fallbacks.sort() };
  }
}
