// The DeepRecInfra architectures as model shapes (the RecModel's spec.model form), at full size. Where a
// model's real structure is not an MLP over pooled embeddings, the simplification is written next to it and in
// docs/model-format.md.
import type { ResolvedModel } from '../operator/api/v1alpha1/index.js';

export type ModelShape = Pick<ResolvedModel, 'architecture' | 'denseFeatures' | 'bottomMLP' | 'topMLP' | 'interaction' | 'tableGroups' | 'tables'>;

const group = (namePrefix: string, count: number, rows: number, dim: number, poolingFactor: number, net: string) => ({
  namePrefix,
  count,
  rows,
  dim,
  poolingFactor,
  net,
  dtype: 'fp32' as const,
});
/** Half the tables feed the user net, half the item net, so net-specific sharding has two nets to keep apart. */
const split = (count: number, rows: number, dim: number, pooling: number) => [
  group('user-emb-', Math.ceil(count / 2), rows, dim, pooling, 'user'),
  group('item-emb-', Math.floor(count / 2), rows, dim, pooling, 'item'),
];

export const ZOO: Record<string, ModelShape> = {
  'dlrm-rmc1': {
    architecture: 'dlrm-rmc1',
    denseFeatures: 128,
    bottomMLP: [64, 32],
    topMLP: [256, 64, 1],
    interaction: 'dot',
    tableGroups: split(8, 4_000_000, 32, 80),
  },
  'dlrm-rmc2': {
    architecture: 'dlrm-rmc2',
    denseFeatures: 256,
    bottomMLP: [128, 64],
    topMLP: [128, 64, 1],
    interaction: 'dot',
    tableGroups: split(32, 500_000, 64, 120),
  },
  'dlrm-rmc3': {
    architecture: 'dlrm-rmc3',
    denseFeatures: 2560,
    bottomMLP: [1024, 256, 32],
    topMLP: [512, 256, 1],
    interaction: 'dot',
    tableGroups: split(10, 2_000_000, 32, 20),
  },
  'wide-and-deep': {
    architecture: 'wide-and-deep',
    denseFeatures: 512,
    bottomMLP: [],
    topMLP: [1024, 512, 256, 1],
    interaction: 'concat',
    tableGroups: split(27, 1_000_000, 32, 1),
  },
  // MT-WnD: the shared 1024-512 trunk and the per-task 256-128 towers become one MLP with one output per task (3).
  'mt-wnd': {
    architecture: 'mt-wnd',
    denseFeatures: 512,
    bottomMLP: [],
    topMLP: [1024, 512, 256, 128, 3],
    interaction: 'concat',
    tableGroups: [...split(41, 500_000, 32, 1), group('ctx-emb-', 2, 5_000_000, 32, 1, 'context')],
  },
  // NCF: the GMF element-wise product is replaced by concatenation; the MLP tower 256-256-128-64 is kept.
  ncf: {
    architecture: 'ncf',
    denseFeatures: 0,
    bottomMLP: [],
    topMLP: [256, 256, 128, 64, 1],
    interaction: 'concat',
    tables: [
      { name: 'user-mf', rows: 140_000, dim: 64, dtype: 'fp32', poolingFactor: 1, net: 'user' },
      { name: 'user-mlp', rows: 140_000, dim: 64, dtype: 'fp32', poolingFactor: 1, net: 'user' },
      { name: 'item-mf', rows: 28_000, dim: 64, dtype: 'fp32', poolingFactor: 1, net: 'item' },
      { name: 'item-mlp', rows: 28_000, dim: 64, dtype: 'fp32', poolingFactor: 1, net: 'item' },
    ],
  },
  // DIN: the attention unit over behaviour embeddings becomes mean pooling of the behaviour table (3 lookups).
  din: {
    architecture: 'din',
    denseFeatures: 0,
    bottomMLP: [],
    topMLP: [200, 80, 2],
    interaction: 'concat',
    tables: [
      { name: 'profile', rows: 1_000_000, dim: 32, dtype: 'fp32', poolingFactor: 1, net: 'user' },
      { name: 'behaviour', rows: 100_000, dim: 32, dtype: 'fp32', poolingFactor: 3, net: 'user' },
      { name: 'ad', rows: 10_000_000, dim: 32, dtype: 'fp32', poolingFactor: 1, net: 'item' },
      { name: 'context', rows: 10_000_000, dim: 32, dtype: 'fp32', poolingFactor: 1, net: 'context' },
    ],
  },
  // DIEN: the two GRU layers and attention over the behaviour sequence become pooled embeddings into the MLP.
  dien: {
    architecture: 'dien',
    denseFeatures: 0,
    bottomMLP: [],
    topMLP: [200, 80, 2],
    interaction: 'concat',
    tableGroups: [...split(41, 500_000, 32, 1), group('ctx-emb-', 2, 5_000_000, 32, 1, 'context')],
  },
};

export const ARCHITECTURES = Object.keys(ZOO);
