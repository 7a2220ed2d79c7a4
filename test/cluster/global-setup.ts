// Vitest global setup of the cluster project: one local control plane for all cluster suites, or an existing
// one when RECSHARD_KUBECONFIG points at it.
import { existsSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { startCluster, type Cluster } from '../../local-cluster/harness.js';
import { nodeLeftovers } from '../../local-cluster/node/node.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    clusterBinDir: string;
    /** The real node (JSON of NodeInfo); empty for an external cluster without one. */
    clusterNode: string;
  }
}

let cluster: Cluster | undefined;

export async function setup(project: TestProject): Promise<void> {
  const external = process.env.RECSHARD_KUBECONFIG;
  if (external) {
    project.provide('kubeconfig', external);
    project.provide('clusterBinDir', process.env.RECSHARD_CLUSTER_BIN ?? '');
    project.provide('clusterNode', process.env.RECSHARD_CLUSTER_NODE ?? '');
    return;
  }
  cluster = await startCluster();
  project.provide('kubeconfig', cluster.kubeconfig);
  project.provide('clusterBinDir', cluster.binDir);
  project.provide('clusterNode', cluster.node ? JSON.stringify(cluster.node) : '');
}

export async function teardown(): Promise<void> {
  if (!cluster) return;
  await cluster.stop();
  // the suite's own cluster must leave nothing behind either
  const left = cluster.node ? nodeLeftovers(cluster.node) : [];
  if (existsSync(cluster.dir) && !process.env.RECSHARD_KEEP_CLUSTER) left.push(`directory ${cluster.dir}`);
  if (left.length) throw new Error(`the cluster left behind:\n${left.join('\n')}`);
}
