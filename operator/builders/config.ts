// Operator-wide settings the builders need: images and how CPU and GPU nodes are told apart. Injected, never
// read from the environment inside a builder.
export interface BuilderConfig {
  shardServerImage: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Node label that marks GPU nodes (NVIDIA GPU feature discovery sets nvidia.com/gpu.present=true). */
  gpuNodeLabel: string;
  gpuNodeLabelValue: string;
  /** Extended resource name of a GPU; also the key of the GPU nodes' NoSchedule taint. */
  gpuResource: string;
  /** Memory a shard-server needs besides its tables, added to derived memory requests. */
  baseMemoryBytes: number;
  /** Multiplier on table bytes for derived memory requests (allocator and buffer overhead). */
  memoryOverhead: number;
  /** NetworkPolicies per model: sparse shards take traffic only from their main (and the namespaces below). */
  networkPolicies: boolean;
  /** Namespaces whose pods may read every component's port: Prometheus (metrics), the operator (scrape, serving probe). */
  trustedNamespaces: string[];
  /** Secrets (by name, in each model's namespace) the model pods pull the shard-server image with. */
  imagePullSecrets: string[];
  /** Whether a model's tolerations and node selection may place its pods on control-plane nodes. */
  allowControlPlane: boolean;
  /** The ServiceAccount model pods run as (its token is never mounted); "default": the namespace's own. */
  modelServiceAccount: string;
}

export const DEFAULT_BUILDER_CONFIG: BuilderConfig = {
  shardServerImage: 'ghcr.io/recshard/shard-server:0.1.0',
  imagePullPolicy: 'IfNotPresent',
  gpuNodeLabel: 'nvidia.com/gpu.present',
  gpuNodeLabelValue: 'true',
  gpuResource: 'nvidia.com/gpu',
  baseMemoryBytes: 256 * 2 ** 20,
  memoryOverhead: 1.1,
  networkPolicies: true,
  trustedNamespaces: ['monitoring'],
  imagePullSecrets: [],
  allowControlPlane: false,
  modelServiceAccount: 'default',
};
