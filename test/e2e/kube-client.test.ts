// The operator's own API client on the real control plane, as the operator makes it (pooled connections): server-side
// apply creates, leaves an unchanged object unchanged, changes what changed, and reports the API server's refusals
// with their code and the field named.
import type { KubernetesObject, V1ConfigMap, V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiErrorMessage, isStatus, KubeClient } from '../../operator/kube/client.js';
import { PooledKubeConfig } from '../../operator/kube/config.js';
import { createNamespace, deleteNamespace, kubeconfig, kubectlJson } from './support.js';

let ns: string;
let kc: PooledKubeConfig;
let c: KubeClient;

beforeAll(() => {
  ns = createNamespace('client');
  kc = new PooledKubeConfig();
  kc.loadFromFile(kubeconfig());
  c = new KubeClient(kc);
});

afterAll(() => {
  kc?.close();
  if (ns) deleteNamespace(ns);
});

const configMap = (data: Record<string, string>): V1ConfigMap => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'cm', namespace: ns, labels: { app: 'client-test' } },
  data,
});

async function refusal(obj: KubernetesObject): Promise<unknown> {
  try {
    await c.apply(obj);
  } catch (e) {
    return e;
  }
  throw new Error(`apply of ${obj.kind} ${obj.metadata?.name} succeeded but should have been refused`);
}

describe('the operator client on the real API server', () => {
  it('creates, leaves an unchanged object as it was, changes what changed, and answers with the object as stored', async () => {
    const created = await c.apply(configMap({ a: '1' }));
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.data).toEqual({ a: '1' });
    const managers = created.metadata?.managedFields?.map((f) => f.manager);
    expect(managers).toEqual(['recshard-operator']);

    const again = await c.apply(configMap({ a: '1' }));
    expect(again.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion);

    const changed = await c.apply(configMap({ a: '2', b: '3' }));
    expect(Number(changed.metadata?.resourceVersion)).toBeGreaterThan(Number(created.metadata?.resourceVersion));
    expect(kubectlJson<V1ConfigMap>(['get', 'configmap', 'cm', '-n', ns]).data).toEqual({ a: '2', b: '3' });
  });

  it('reports a refusal with its code and the field', async () => {
    const bad: V1Deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'no-selector', namespace: ns },
      spec: { template: { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } } as never,
    };
    const e = await refusal(bad);
    expect(isStatus(e, 422)).toBe(true);
    expect(apiErrorMessage(e)).toMatch(/^422: .*spec\.selector/);

    const elsewhere = await refusal({ ...configMap({}), metadata: { name: 'cm', namespace: `${ns}-missing` } });
    expect(isStatus(elsewhere, 404)).toBe(true);
    expect(apiErrorMessage(elsewhere)).toMatch(/^404: namespaces? .*not found/);
  });
});
