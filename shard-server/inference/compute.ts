// The compute of one request part, the same in a worker thread and inline: bottom MLP, pooled lookups in the
// tables this process holds, the interaction with the pooled rows the shards sent, and the top MLP.
import { bottomWidth, type Manifest } from '../../contracts/model-format.js';
import type { Pooling } from '../../contracts/wire/sections.js';
import type { EmbeddingTable } from '../model/load.js';
import type { DenseNet } from './dense.js';
import { poolInto } from './embeddings.js';
import { interact } from './interaction.js';

/** A request part as it crosses to a worker thread (structured-clone friendly). */
export interface PartTask {
  batch: number;
  /** batch x denseFeatures */
  dense: Float32Array;
  pooling: Pooling;
  /** Tables held by this process: [table index, offsets (batch + 1), indices]. */
  sparse: [number, Uint32Array, Uint32Array][];
  /** Rows pooled by the sparse shards: [table index, batch x dim]. */
  remote: [number, Float32Array][];
}

/** Seconds spent in each stage of a part. */
export interface PartTimings {
  bottom: number;
  embeddings: number;
  interaction: number;
  top: number;
}

export interface PartResult {
  /** batch x outputs */
  scores: Float32Array;
  timings: PartTimings;
}

export class PartComputer {
  private readonly bottomOut: number;
  private readonly dims: number[];

  constructor(
    private readonly manifest: Manifest,
    private readonly bottom: DenseNet | undefined,
    private readonly top: DenseNet,
    private readonly local: Map<number, EmbeddingTable>,
  ) {
    this.bottomOut = bottomWidth(manifest);
    this.dims = manifest.tables.map((t) => t.dim);
  }

  async run(task: PartTask): Promise<PartResult> {
    const { batch } = task;
    const now = () => performance.now();
    let t = now();
    const bottom = this.bottom ? await this.bottom.run(task.dense, batch) : task.dense;
    const tBottom = now() - t;

    t = now();
    const pooled: Float32Array[] = this.dims.map(() => EMPTY);
    for (const [index, values] of task.remote) pooled[index] = values;
    for (const [index, offsets, indices] of task.sparse) {
      const table = this.local.get(index);
      if (!table) throw new Error(`table ${index} is not held by this process`);
      const out = new Float32Array(batch * table.meta.dim);
      poolInto(table, offsets, indices, batch, task.pooling, out);
      pooled[index] = out;
    }
    // Tables the request does not mention pool to zeros.
    for (let i = 0; i < pooled.length; i++) if (pooled[i] === EMPTY) pooled[i] = new Float32Array(batch * this.dims[i]!);
    const tEmb = now() - t;

    t = now();
    const z = new Float32Array(batch * this.manifest.topInput);
    interact(this.manifest.interaction, batch, bottom, this.bottomOut, pooled, this.dims, z, this.manifest.topInput);
    const tInt = now() - t;

    t = now();
    const scores = await this.top.run(z, batch);
    return { scores, timings: { bottom: tBottom / 1000, embeddings: tEmb / 1000, interaction: tInt / 1000, top: (now() - t) / 1000 } };
  }
}

const EMPTY = new Float32Array(0);
