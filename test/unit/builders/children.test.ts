import { describe, expect, it } from 'vitest';
import type { ServingPlan } from '../../../contracts/plan.js';
import { buildChildren } from '../../../operator/builders/children.js';
import { DEFAULT_BUILDER_CONFIG as cfg } from '../../../operator/builders/config.js';
import { dnsLabel, mainName, shardName } from '../../../operator/builders/names.js';
import { podPlacement } from '../../../operator/builders/placement.js';
import { planModel } from '../../../operator/planner/plan.js';
import { specOf } from '../fixtures.js';

const owner = { name: 'rmc', namespace: 'prod', uid: '0000-1111' };

function childrenOf(partial: Parameters<typeof specOf>[0]) {
  const spec = specOf(partial);
  const p = planModel(spec);
  if (!p.ok) throw p.error;
  return { spec, plan: p.plan, children: buildChildren(owner, spec, p.plan, cfg) };
}

const tables = Array.from({ length: 4 }, (_, i) => ({ name: `t${i}`, rows: 100_000, dim: 32, poolingFactor: 10, net: i < 2 ? 'user' : 'item' }));

describe('children of a load-balanced model', () => {
  const { children, plan } = childrenOf({ tables, sharding: { strategy: 'load-balanced', shards: 2 } });

  it('match the snapshot', () => {
    expect(children).toMatchSnapshot();
  });

  it('are one ConfigMap, plus a Deployment and a Service per component, all controlled by the RecModel', () => {
    expect(children.deployments.map((d) => d.metadata!.name)).toEqual(['rmc-main', 'rmc-shard-0', 'rmc-shard-1']);
    expect(children.services.map((s) => s.metadata!.name)).toEqual(['rmc-main', 'rmc-shard-0', 'rmc-shard-1']);
    for (const o of [children.configMap, ...children.deployments, ...children.services]) {
      expect(o.metadata!.ownerReferences).toEqual([
        { apiVersion: 'recshard.io/v1alpha1', kind: 'RecModel', name: 'rmc', uid: '0000-1111', controller: true, blockOwnerDeletion: true },
      ]);
      expect(o.metadata!.labels!['app.kubernetes.io/managed-by']).toBe('recshard-operator');
      expect(o.metadata!.namespace).toBe('prod');
    }
  });

  it('pull the shard-server image with the configured Secrets, and without any when none are', () => {
    expect(children.deployments.every((d) => d.spec!.template.spec!.imagePullSecrets === undefined)).toBe(true);
    const spec = specOf({ tables, sharding: { strategy: 'load-balanced', shards: 2 } });
    const p = planModel(spec);
    if (!p.ok) throw p.error;
    const withSecrets = buildChildren(owner, spec, p.plan, { ...cfg, imagePullSecrets: ['registry-a', 'registry-b'] });
    for (const d of withSecrets.deployments) expect(d.spec!.template.spec!.imagePullSecrets).toEqual([{ name: 'registry-a' }, { name: 'registry-b' }]);
  });

  it('carry the plan hash on pod templates and derive shard memory from the plan', () => {
    for (const d of children.deployments) expect(d.spec!.template.metadata!.annotations!['recshard.io/plan-hash']).toBe(plan.hash);
    const shardBytes = plan.shards[0]!.bytes;
    const mem = children.deployments[1]!.spec!.template.spec!.containers[0]!.resources!.requests!.memory;
    expect(mem).toBe(`${Math.ceil((shardBytes * 1.1 + 256 * 2 ** 20) / 2 ** 20)}Mi`);
    expect(children.deployments[0]!.spec!.template.spec!.containers[0]!.resources).toBeUndefined();
  });

  it('select pods of exactly one component', () => {
    const selectors = children.deployments.map((d) => JSON.stringify(d.spec!.selector.matchLabels));
    expect(new Set(selectors).size).toBe(3);
    children.services.forEach((s, i) => expect(s.spec!.selector).toEqual(children.deployments[i]!.spec!.selector.matchLabels));
  });
});

describe('replicas', () => {
  it('are set from placement, and left out when autoscaling owns them', () => {
    const manual = childrenOf({ tables, placement: { main: { replicas: 3 }, sparse: { replicas: 2 } } }).children;
    expect(manual.deployments.map((d) => d.spec!.replicas)).toEqual([3, 2, 2]);
    const auto = childrenOf({ tables, autoscaling: { enabled: true, policyRef: { name: 'p' } } }).children;
    for (const d of auto.deployments) expect('replicas' in d.spec!).toBe(false);
  });
});

describe('monolithic', () => {
  it('has only the main, which holds every table and gets their memory', () => {
    const { children, plan } = childrenOf({ tables, sharding: { strategy: 'monolithic' } });
    expect(children.deployments).toHaveLength(1);
    expect(JSON.parse(children.configMap.data!['plan.json']!).main.tables).toEqual(plan.tables.map((t) => t.name));
    expect(children.deployments[0]!.spec!.template.spec!.containers[0]!.resources!.requests!.memory).toMatch(/Mi$/);
  });
});

describe('placement', () => {
  const base = { device: 'cpu' as const, replicas: 1 };

  it.each([
    ['cpu avoids GPU nodes', base, [{ key: 'nvidia.com/gpu.present', operator: 'DoesNotExist' }], undefined, undefined],
    [
      'gpu requires GPU nodes, asks for one GPU and tolerates the taint',
      { ...base, device: 'gpu' as const },
      [{ key: 'nvidia.com/gpu.present', operator: 'In', values: ['true'] }],
      [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      { 'nvidia.com/gpu': '1' },
    ],
    [
      'gpus sets the GPU count',
      { ...base, device: 'gpu' as const, gpus: 4 },
      [{ key: 'nvidia.com/gpu.present', operator: 'In', values: ['true'] }],
      [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      { 'nvidia.com/gpu': '4' },
    ],
  ])('%s', (_name, p, expressions, tolerations, limits) => {
    const out = podPlacement(p, cfg);
    expect(out.affinity.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([{ matchExpressions: expressions }]);
    expect(out.tolerations).toEqual(tolerations);
    expect(out.resources.limits).toEqual(limits);
  });

  it('ANDs the device requirement into each user term and keeps the rest of the user affinity', () => {
    const out = podPlacement(
      {
        ...base,
        device: 'gpu',
        nodeSelector: { zone: 'a' },
        tolerations: [
          { key: 'dedicated', operator: 'Equal', value: 'recsys', effect: 'NoSchedule' },
          { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
        ],
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchExpressions: [{ key: 'gpu-model', operator: 'In', values: ['h100'] }] },
                { matchExpressions: [{ key: 'gpu-model', operator: 'In', values: ['a100'] }] },
              ],
            },
            preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 10, preference: { matchExpressions: [{ key: 'spot', operator: 'DoesNotExist' }] } }],
          },
          podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] },
        },
        resources: { limits: { 'nvidia.com/gpu': '2', memory: '8Gi' } },
      },
      cfg,
    );
    const device = { key: 'nvidia.com/gpu.present', operator: 'In', values: ['true'] };
    expect(out.affinity.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([
      { matchExpressions: [device, { key: 'gpu-model', operator: 'In', values: ['h100'] }] },
      { matchExpressions: [device, { key: 'gpu-model', operator: 'In', values: ['a100'] }] },
    ]);
    expect(out.affinity.nodeAffinity!.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    expect(out.affinity.podAntiAffinity).toEqual({ preferredDuringSchedulingIgnoredDuringExecution: [] });
    expect(out.nodeSelector).toEqual({ zone: 'a' });
    expect(out.tolerations).toEqual([
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
      { key: 'dedicated', operator: 'Equal', value: 'recsys', effect: 'NoSchedule' },
    ]);
    expect(out.resources.limits).toEqual({ 'nvidia.com/gpu': '2', memory: '8Gi' });
  });

  it('keeps a user memory request over the derived one', () => {
    expect(podPlacement({ ...base, resources: { requests: { memory: '3Gi' } } }, cfg, 10 * 2 ** 30).resources.requests).toEqual({ memory: '3Gi' });
    expect(podPlacement(base, cfg, 10 * 2 ** 20).resources.requests).toEqual({ memory: '10Mi' });
  });
});

describe('names', () => {
  it('are DNS-1123 labels of at most 63 characters, hashed when long, and never collide', () => {
    expect(mainName('rmc1')).toBe('rmc1-main');
    expect(shardName('rmc1', 7)).toBe('rmc1-shard-7');
    const long = 'a'.repeat(80);
    const a = shardName(long, 12);
    const b = shardName(`${long}b`, 12);
    for (const n of [a, b, mainName(long), dnsLabel(long)]) {
      expect(n.length).toBeLessThanOrEqual(63);
      expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    expect(a).not.toBe(b);
    expect(a.endsWith('-shard-12')).toBe(true);
    expect(dnsLabel('my.model')).toBe('my-model');
  });
});

describe('what the pods read', () => {
  it('plan.json is the document the shard-server serves from, and model.json carries the artifact source', async () => {
    const { children, plan } = childrenOf({
      tables,
      sharding: { strategy: 'net-specific' },
      artifact: { uri: 'file:///models/rmc/', volume: { persistentVolumeClaim: { claimName: 'models', readOnly: true } } },
    });
    const served: ServingPlan = JSON.parse(children.configMap.data!['plan.json']!);
    expect(served.model).toBe('rmc');
    expect(served.main.tables).toEqual([]);
    expect(served.shards.map((s) => [s.index, s.tables, s.endpoint])).toEqual(
      plan.shards.map((s) => [s.index, s.tables, `http://rmc-shard-${s.index}.prod.svc:8080`]),
    );
    expect(JSON.parse(children.configMap.data!['model.json']!).artifact.uri).toBe('file:///models/rmc/');
    for (const d of children.deployments) {
      const pod = d.spec!.template.spec!;
      expect(pod.volumes).toContainEqual({ name: 'model', persistentVolumeClaim: { claimName: 'models', readOnly: true } });
      expect(pod.containers[0]!.volumeMounts).toContainEqual({ name: 'model', mountPath: '/models/rmc', readOnly: true });
      expect(pod.containers[0]!.args).toContain('--model-config=/etc/recshard/model.json');
    }
  });
});

describe("the main's scheduling", () => {
  const argsOf = (partial: Parameters<typeof specOf>[0]) =>
    childrenOf({ tables, ...partial }).children.deployments.map((d) => d.spec!.template.spec!.containers[0]!.args!);

  it('gives the main as many workers as its CPU limit, else its request, rounded up', () => {
    expect(argsOf({ placement: { main: { resources: { limits: { cpu: '3' }, requests: { cpu: '1' } } } } })[0]).toContain('--workers=3');
    expect(argsOf({ placement: { main: { resources: { requests: { cpu: '1500m' } } } } })[0]).toContain('--workers=2');
    expect(argsOf({ placement: { main: { resources: { requests: { cpu: '100m' } } } } })[0]).toContain('--workers=1');
  });

  it('leaves the count to spec.serving.workers (model.json) or the node when set or unknown, and never touches shards', () => {
    const explicit = argsOf({ serving: { workers: 4 }, placement: { main: { resources: { requests: { cpu: '2' } } } } });
    expect(explicit[0]!.some((a) => a.startsWith('--workers'))).toBe(false);
    expect(argsOf({})[0]!.some((a) => a.startsWith('--workers'))).toBe(false);
    for (const shard of explicit.slice(1)) expect(shard.some((a) => a.startsWith('--workers') || a.startsWith('--accelerator'))).toBe(false);
  });

  it('gives a GPU main the CUDA session for whole large queries', () => {
    expect(argsOf({ placement: { main: { device: 'gpu' } } })[0]).toContain('--accelerator=cuda');
    expect(argsOf({})[0]!.some((a) => a.startsWith('--accelerator'))).toBe(false);
  });

  it('passes the scheduler settings to the main through model.json', () => {
    const { children } = childrenOf({ tables, serving: { scheduler: 'fixed', batchSize: 16 } });
    expect(JSON.parse(children.configMap.data!['model.json']!).serving).toMatchObject({ scheduler: 'fixed', batchSize: 16 });
  });
});

describe("what protects a model's pods", () => {
  it('a PodDisruptionBudget per component keeps one pod of each through a drain, and lets unready pods go', () => {
    const { children } = childrenOf({ tables, sharding: { strategy: 'load-balanced', shards: 2 } });
    expect(children.pdbs.map((p) => p.metadata!.name)).toEqual(['rmc-main', 'rmc-shard-0', 'rmc-shard-1']);
    for (const [i, p] of children.pdbs.entries()) {
      expect(p.spec).toEqual({ minAvailable: 1, selector: children.deployments[i]!.spec!.selector, unhealthyPodEvictionPolicy: 'AlwaysAllow' });
      expect(p.metadata!.ownerReferences![0]).toMatchObject({ kind: 'RecModel', uid: '0000-1111', controller: true });
    }
  });

  it("sparse shards take their port only from the model's main pods and the trusted namespaces; the main from anyone", () => {
    const { children, spec } = childrenOf({ tables, sharding: { strategy: 'load-balanced', shards: 2 } });
    const [main, shards] = children.networkPolicies;
    const port = [{ protocol: 'TCP', port: spec.serving.port }];
    expect(main!.spec).toEqual({
      podSelector: {
        matchLabels: { 'app.kubernetes.io/name': 'recshard-shard-server', 'app.kubernetes.io/instance': 'rmc', 'app.kubernetes.io/component': 'main' },
      },
      policyTypes: ['Ingress'],
      ingress: [{ ports: port }],
    });
    expect(shards!.metadata!.name).toBe('rmc-shards');
    expect(shards!.spec!.podSelector?.matchLabels).toEqual({
      'app.kubernetes.io/name': 'recshard-shard-server',
      'app.kubernetes.io/instance': 'rmc',
      'app.kubernetes.io/component': 'sparse',
    });
    expect(shards!.spec!.ingress).toEqual([
      {
        _from: [{ podSelector: main!.spec!.podSelector }, { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
        ports: port,
      },
    ]);
    // every shard Deployment's pods are selected: its pod labels carry the selector's
    for (const d of children.deployments.filter((x) => x.metadata!.name !== 'rmc-main'))
      expect(d.spec!.template.metadata!.labels).toMatchObject(shards!.spec!.podSelector!.matchLabels!);
  });

  it("a monolithic model has only the main's policy, and none when NetworkPolicies are off", () => {
    const spec = specOf({ tables, sharding: { strategy: 'monolithic' } });
    const p = planModel(spec);
    if (!p.ok) throw p.error;
    expect(buildChildren(owner, spec, p.plan, cfg).networkPolicies.map((n) => n.metadata!.name)).toEqual(['rmc-main']);
    expect(buildChildren(owner, spec, p.plan, { ...cfg, networkPolicies: false }).networkPolicies).toEqual([]);
  });
});
