// The operator outlives its API server: this suite runs its own control plane, restarts kube-apiserver under
// a running operator, and checks that the broken watches come back and changes made afterwards reconcile.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startCluster, kubectl as kubectlWith, type Cluster } from '../../local-cluster/harness.js';
import { ROOT, readExample, startOperator, waitUntil, type OperatorProcess } from './support.js';

let cluster: Cluster;
let op: OperatorProcess;
const k = (args: string[], input?: string) => kubectlWith(cluster.kubeconfig, args, input);
const shards = (name: string) =>
  JSON.parse(k(['get', 'deployments', '-n', 'default', '-l', `app.kubernetes.io/instance=${name}`, '-o', 'json'])).items.length - 1;
const ready = (name: string) =>
  JSON.parse(k(['get', 'recmodel', name, '-n', 'default', '-o', 'json'])).status?.conditions?.find((c: { type: string }) => c.type === 'Ready')?.status ===
  'True';

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
    const rm = readExample('dlrm-rmc1.yaml').find((r) => r.metadata.name === 'rmc1-lb')!;
    k(['apply', '-n', 'default', '-f', '-'], JSON.stringify(rm));
    await waitUntil('rmc1-lb Ready', () => ready('rmc1-lb'), 60_000);
    expect(shards('rmc1-lb')).toBe(4);

    await cluster.restart('kube-apiserver');
    k(['patch', 'recmodel', 'rmc1-lb', '-n', 'default', '--type=merge', '-p', '{"spec":{"sharding":{"shards":3}}}']);
    await waitUntil('re-planned to 3 shards after the restart', () => shards('rmc1-lb') === 3 && ready('rmc1-lb'), 90_000);
    expect(op.proc.exitCode).toBeNull();

    // a RecModel created after the restart arrives through the re-established watch, not only a resync
    const other = readExample('dlrm-rmc3.yaml').find((r) => r.metadata.name === 'rmc3-singular')!;
    k(['apply', '-n', 'default', '-f', '-'], JSON.stringify(other));
    await waitUntil('rmc3-singular Ready', () => ready('rmc3-singular'), 25_000);
  });
});
