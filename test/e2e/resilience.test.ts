// The operator outlives its API server: this suite runs its own control plane, restarts kube-apiserver under
// a running operator, and checks that the broken watches come back and changes made afterwards reconcile.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startCluster, kubectl as kubectlWith, type Cluster } from '../../local-cluster/harness.js';
import type { RecModel } from '../../operator/api/v1alpha1/index.js';
import { ROOT, readExample, startOperator, waitUntil, type OperatorProcess } from './support.js';

let cluster: Cluster;
let op: OperatorProcess;
const k = (args: string[], input?: string) => kubectlWith(cluster.kubeconfig, args, input);
/** The versions of the model's sparse shard Deployments, one entry per Deployment. */
const shardVersions = (name: string): string[] =>
  JSON.parse(k(['get', 'deployments', '-n', 'default', '-l', `app.kubernetes.io/instance=${name},app.kubernetes.io/component=sparse`, '-o', 'json'])).items.map(
    (d: { metadata: { labels: Record<string, string> } }) => d.metadata.labels['recshard.io/version'],
  );
const status = (name: string) => JSON.parse(k(['get', 'recmodel', name, '-n', 'default', '-o', 'json'])).status as RecModel['status'];
const ready = (name: string) => status(name)?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
/** Ready with the rollout complete: the version `status.rollout.toVersion` names serves alone. */
const version = (name: string) => {
  const s = status(name);
  return s?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' && s.rollout?.phase === 'Complete' ? s.rollout.toVersion : undefined;
};

beforeAll(async () => {
  // its own control plane, to restart the API server under the operator; its pods need not run
  cluster = await startCluster({ binDir: inject('clusterBinDir') || undefined, realNode: false, log: () => {} });
  k(['apply', '-f', join(ROOT, 'crds')]);
  k(['wait', '--for=condition=Established', 'crd/recmodels.recshard.io']);
  op = await startOperator('default', { kubeconfig: cluster.kubeconfig });
});

afterAll(async () => {
  await op?.stop();
  await cluster?.stop();
});

describe('API server restart', () => {
  it('watches recover and later changes are reconciled', async () => {
    const example = readExample('dlrm-rmc1.yaml').find((r) => r.metadata.name === 'rmc1-lb')!;
    // a short drain, so the old shards go soon after the main has switched
    const rm = { ...example, spec: { ...example.spec, rollout: { drainPeriod: '2s' } } };
    k(['apply', '-n', 'default', '-f', '-'], JSON.stringify(rm));
    const first = await waitUntil('rmc1-lb Ready', () => version('rmc1-lb'), 60_000);
    expect(shardVersions('rmc1-lb')).toEqual([first, first, first, first]);

    await cluster.restart('kube-apiserver');
    k(['patch', 'recmodel', 'rmc1-lb', '-n', 'default', '--type=merge', '-p', '{"spec":{"sharding":{"shards":3}}}']);
    // a new version: its 3 shards beside the old 4, then the main on them, then the old set deleted
    await waitUntil(
      're-planned to 3 shards after the restart',
      () => {
        const v = version('rmc1-lb');
        const shards = shardVersions('rmc1-lb');
        return v !== undefined && v !== first && shards.length === 3 && shards.every((s) => s === v);
      },
      90_000,
    );
    expect(op.proc.exitCode).toBeNull();

    // a RecModel created after the restart arrives through the re-established watch, not only a resync
    const other = readExample('dlrm-rmc3.yaml').find((r) => r.metadata.name === 'rmc3-singular')!;
    k(['apply', '-n', 'default', '-f', '-'], JSON.stringify(other));
    await waitUntil('rmc3-singular Ready', () => ready('rmc3-singular'), 25_000);
  });
});
