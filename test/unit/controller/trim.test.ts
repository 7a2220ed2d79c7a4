import type { V1ConfigMap, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { applyOwnsReplicas } from '../../../operator/controller/autoscaler.js';
import { trimForCache } from '../../../operator/controller/trim.js';
import { FIELD_MANAGER } from '../../../operator/kube/client.js';
import { podProblems } from '../../../operator/status/pods.js';

const field = (manager: string, operation: string, fields: object) => ({ manager, operation, fieldsV1: fields });

describe('what the caches keep', () => {
  it("Deployments keep their spec and our managers' field entries, and lose everyone else's", () => {
    const d: V1Deployment = {
      metadata: {
        name: 'm-main',
        managedFields: [
          field('kube-controller-manager', 'Update', { 'f:status': {} }),
          field(FIELD_MANAGER, 'Apply', { 'f:spec': { 'f:replicas': {} } }),
          field('kubectl', 'Update', { 'f:metadata': {} }),
        ],
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":true}', keep: 'me' },
      },
      spec: { selector: {}, template: { spec: { containers: [{ name: 'c', image: 'i' }], volumes: [{ name: 'plan', configMap: { name: 'p' } }] } } },
    };
    const spec = structuredClone(d.spec);
    expect(applyOwnsReplicas(d)).toBe(true);
    trimForCache('Deployment', d);
    expect(d.metadata!.managedFields!.map((f) => f.manager)).toEqual([FIELD_MANAGER]);
    expect(applyOwnsReplicas(d)).toBe(true);
    expect(d.metadata!.annotations).toEqual({ keep: 'me' });
    expect(d.spec).toEqual(spec);
  });

  it('ConfigMaps keep their metadata and lose their data', () => {
    const cm: V1ConfigMap = { metadata: { name: 'p', labels: { a: 'b' }, managedFields: [field('x', 'Apply', {})] }, data: { 'plan.json': 'x'.repeat(1000) } };
    trimForCache('ConfigMap', cm);
    expect(cm).toEqual({ metadata: { name: 'p', labels: { a: 'b' } } });
  });

  it('pods keep their status and what status and rollouts read of their spec, so problems are reported as before', () => {
    const pod = (): V1Pod => ({
      metadata: {
        name: 'p',
        labels: { 'app.kubernetes.io/component': 'sparse', 'recshard.io/shard': '0' },
        creationTimestamp: new Date(0),
        managedFields: [field('kubelet', 'Update', {})],
      },
      spec: {
        nodeName: 'n1',
        containers: [
          {
            name: 'shard-server',
            image: 'i',
            env: [{ name: 'A', value: 'x'.repeat(500) }],
            args: ['--a'],
            resources: { limits: { memory: '1Gi' }, requests: { cpu: '1' } },
          },
        ],
        volumes: [
          { name: 'plan', configMap: { name: 'cm' } },
          { name: 'tmp', emptyDir: {} },
        ],
      },
      status: {
        phase: 'Running',
        containerStatuses: [
          { name: 'shard-server', image: 'i', imageID: '', ready: false, restartCount: 3, lastState: { terminated: { exitCode: 137, reason: 'OOMKilled' } } },
        ],
      },
    });
    const full = pod();
    const trimmed = trimForCache('Pod', pod());
    expect(trimmed.metadata!.managedFields).toBeUndefined();
    expect(trimmed.spec).toEqual({
      nodeName: 'n1',
      containers: [{ name: 'shard-server', resources: { limits: { memory: '1Gi' } } }],
      volumes: [{ name: 'plan', configMap: { name: 'cm' } }],
    });
    expect(trimmed.status).toEqual(full.status);
    const now = new Date(3_600_000);
    expect(podProblems('m', [trimmed], now)).toEqual(podProblems('m', [full], now));
    expect(podProblems('m', [trimmed], now).length).toBeGreaterThan(0);
  });
});
