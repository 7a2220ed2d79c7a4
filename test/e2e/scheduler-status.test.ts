// status.scheduler end to end: a real main (shard-server processes on loopback) serves the model, the operator
// reconciles the same RecModel on the real control plane and, pointed at that main by its URL template, shows
// the main's batch size in status and in `kubectl get -o wide`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveLocal, type LocalDeployment } from '../../cli/local.js';
import type { RecModel } from '../../operator/api/v1alpha1/index.js';
import { applyYaml, createNamespace, deleteNamespace, getRecModel, installCrd, kubectl, startOperator, waitUntil, type OperatorProcess } from './support.js';

const rm: RecModel = {
  apiVersion: 'recshard.io/v1alpha1',
  kind: 'RecModel',
  metadata: { name: 'ncf-sched' },
  spec: {
    model: {
      architecture: 'ncf',
      denseFeatures: 0,
      topMLP: [64, 1],
      tables: [
        { name: 'users', rows: 100_000, dim: 16, net: 'user' },
        { name: 'items', rows: 100_000, dim: 16, net: 'item' },
      ],
    },
    sharding: { strategy: 'singular' },
    serving: { scheduler: 'fixed', batchSize: 7 },
  } as RecModel['spec'],
};

let ns: string;
let op: OperatorProcess;
let local: LocalDeployment;

beforeAll(async () => {
  installCrd();
  ns = createNamespace('sched');
  local = await serveLocal(rm, { scale: 0.01, seed: 2 });
  op = await startOperator(ns, { extraArgs: [`--main-url-template=${local.mainUrl}`, '--serving-poll=1'] });
});

afterAll(async () => {
  await op?.stop();
  await local?.stop();
  if (ns) deleteNamespace(ns);
});

describe('status.scheduler', () => {
  it('shows the batch size the main runs with, read from the main once it is serving', async () => {
    applyYaml(ns, [rm]);
    const status = await waitUntil('status.scheduler', () => getRecModel(ns, 'ncf-sched').status?.scheduler, 60_000);
    expect(status).toMatchObject({ mode: 'fixed', batchSize: 7 });
    expect(Date.parse(status.observedTime!)).toBeGreaterThan(Date.now() - 120_000);
    const wide = kubectl(['get', 'recmodel', 'ncf-sched', '-n', ns, '-o', 'wide']);
    expect(wide.split('\n')[0]).toMatch(/BATCH/);
    expect(wide.split('\n')[1]).toMatch(/\s7\s/);
  });
});
