// Vitest global setup of the cluster project: one local control plane for all cluster suites, or an existing
// one when RECSHARD_KUBECONFIG points at it.
import type { TestProject } from 'vitest/node';
import { startCluster, type Cluster } from '../../local-cluster/harness.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    clusterBinDir: string;
  }
}

let cluster: Cluster | undefined;

export async function setup(project: TestProject): Promise<void> {
  const external = process.env.RECSHARD_KUBECONFIG;
  if (external) {
    project.provide('kubeconfig', external);
    project.provide('clusterBinDir', process.env.RECSHARD_CLUSTER_BIN ?? '');
    return;
  }
  cluster = await startCluster();
  project.provide('kubeconfig', cluster.kubeconfig);
  project.provide('clusterBinDir', cluster.binDir);
}

export async function teardown(): Promise<void> {
  await cluster?.stop();
}
