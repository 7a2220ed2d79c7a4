import type { V1Deployment } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ServingPlan } from '../../../contracts/plan.js';
import { buildVersion, buildVersionInTurns, type VersionChildren } from '../../../operator/builders/children.js';
import { DEFAULT_BUILDER_CONFIG as cfg } from '../../../operator/builders/config.js';
import { dnsLabel, mainName, shardName } from '../../../operator/builders/names.js';
import { podPlacement } from '../../../operator/builders/placement.js';
import { buildNetworkPolicies } from '../../../operator/builders/protection.js';
import { servingVersion } from '../../../operator/builders/serving-files.js';
import { planModel } from '../../../operator/planner/plan.js';
import { specOf } from '../fixtures.js';

const owner = { name: 'rmc', namespace: 'prod', uid: '0000-1111' };

function childrenOf(partial: Parameters<typeof specOf>[0], config = cfg) {
  const spec = specOf(partial);
  const p = planModel(spec);
  if (!p.ok) throw p.error;
  return { spec, plan: p.plan, children: buildVersion(owner, spec, p.plan, config) };
}

/** The main first, then the shards in index order. */
const deployments = (c: VersionChildren): V1Deployment[] => [c.main.deployment, ...c.shards.deployments];
const services = (c: VersionChildren) => [c.main.service, ...c.shards.services];
const pdbs = (c: VersionChildren) => [c.main.pdb, ...c.shards.pdbs];

const tables = Array.from({ length: 4 }, (_, i) => ({ name: `t${i}`, rows: 100_000, dim: 32, poolingFactor: 10, net: i < 2 ? 'user' : 'item' }));

describe('children of a load-balanced model', () => {
  const { children, plan, spec } = childrenOf({ tables, sharding: { strategy: 'load-balanced', shards: 2 } });
  const v = children.version;

  it('match the snapshot', () => {
    expect(children).toMatchSnapshot();
  });

  it("are one version's ConfigMap, a Deployment and a Service per component, a budget for the main and one for the shards, all the RecModel's", () => {
    expect(v).toMatch(/^[0-9a-f]{8}$/);
    expect(v).toBe(servingVersion(spec, plan, cfg.shardServerImage));
    expect(deployments(children).map((d) => d.metadata!.name)).toEqual(['rmc-main', `rmc-shard-0-${v}`, `rmc-shard-1-${v}`]);
    expect(services(children).map((s) => s.metadata!.name)).toEqual(['rmc-main', `rmc-shard-0-${v}`, `rmc-shard-1-${v}`]);
    expect(pdbs(children).map((s) => s.metadata!.name)).toEqual(['rmc-main', `rmc-shards-${v}`]);
    for (const o of [children.configMap, ...deployments(children), ...services(children), ...pdbs(children)]) {
      expect(o.metadata!.ownerReferences).toEqual([
        { apiVersion: 'recshard.io/v1alpha1', kind: 'RecModel', name: 'rmc', uid: '0000-1111', controller: true, blockOwnerDeletion: true },
      ]);
      expect(o.metadata!.labels!['app.kubernetes.io/managed-by']).toBe('recshard-operator');
      expect(o.metadata!.namespace).toBe('prod');
    }
  });

  it("label the shards' objects and every pod with the version, and keep the main's own labels and selector version-free", () => {
    for (const o of [...children.shards.deployments, ...children.shards.services, ...children.shards.pdbs])
      expect(o.metadata!.labels!['recshard.io/version']).toBe(v);
    for (const d of children.shards.deployments) expect(d.spec!.selector.matchLabels!['recshard.io/version']).toBe(v);
    for (const d of deployments(children)) expect(d.spec!.template.metadata!.labels!['recshard.io/version']).toBe(v);
    for (const o of [children.main.deployment, children.main.service, children.main.pdb])
      expect(o.metadata!.labels).not.toHaveProperty(['recshard.io/version']);
    expect(children.main.deployment.spec!.selector.matchLabels).not.toHaveProperty(['recshard.io/version']);
    expect(children.main.service.spec!.selector).not.toHaveProperty(['recshard.io/version']);
  });

  it('pull the shard-server image with the configured Secrets, and without any when none are', () => {
    expect(deployments(children).every((d) => d.spec!.template.spec!.imagePullSecrets === undefined)).toBe(true);
    const withSecrets = childrenOf({ tables, sharding: { strategy: 'load-balanced', shards: 2 } }, { ...cfg, imagePullSecrets: ['registry-a', 'registry-b'] });
    for (const d of deployments(withSecrets.children))
      expect(d.spec!.template.spec!.imagePullSecrets).toEqual([{ name: 'registry-a' }, { name: 'registry-b' }]);
  });

  it('carry the plan hash and the plan ConfigMap they mount on pod templates and derive shard memory from the plan', () => {
    const configMap = children.configMap.metadata!.name!;
    for (const d of deployments(children)) {
      expect(d.spec!.template.metadata!.annotations).toEqual({ 'recshard.io/plan-hash': plan.hash, 'recshard.io/plan-configmap': configMap });
      expect(d.spec!.template.spec!.volumes).toContainEqual({ name: 'config', configMap: { name: configMap } });
    }
    const shardBytes = plan.shards[0]!.bytes;
    const mem = children.shards.deployments[0]!.spec!.template.spec!.containers[0]!.resources!.requests!.memory;
    expect(mem).toBe(`${Math.ceil((shardBytes * 1.1 + 256 * 2 ** 20) / 2 ** 20)}Mi`);
    expect(children.main.deployment.spec!.template.spec!.containers[0]!.resources).toBeUndefined();
  });

  it('roll in place without losing capacity, and keep serving a while after SIGTERM', () => {
    for (const d of deployments(children)) {
      expect(d.spec!.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
      expect(d.spec!.template.spec!.containers[0]!.args).toContain('--shutdown-delay-ms=5000');
    }
  });

  it('select pods of exactly one component', () => {
    const selectors = deployments(children).map((d) => JSON.stringify(d.spec!.selector.matchLabels));
    expect(new Set(selectors).size).toBe(3);
    services(children).forEach((s, i) => expect(s.spec!.selector).toEqual(deployments(children)[i]!.spec!.selector.matchLabels));
    // each selector matches its own pods
    for (const d of deployments(children)) expect(d.spec!.template.metadata!.labels).toMatchObject(d.spec!.selector.matchLabels!);
  });
});

describe('the plan ConfigMap', () => {
  const sharded = { tables, sharding: { strategy: 'load-balanced' as const, shards: 2 } };

  it('is immutable, labelled with its version and named by the hash of its content', () => {
    const { children } = childrenOf(sharded);
    expect(children.configMap.immutable).toBe(true);
    expect(children.configMap.metadata!.labels!['recshard.io/version']).toBe(children.version);
    expect(children.configMap.metadata!.name).toMatch(/^rmc-plan-[0-9a-f]{10}$/);
    // the same spec builds the same ConfigMap under the same name
    expect(childrenOf(sharded).children.configMap).toEqual(children.configMap);
  });

  it('gets a new name when what it holds changes, within one version or across versions', () => {
    const { children } = childrenOf(sharded);
    // scheduling is no part of the version (it rolls in place), but model.json changes: another ConfigMap
    const scheduling = childrenOf({ ...sharded, serving: { scheduler: 'fixed', batchSize: 16 } }).children;
    expect(scheduling.version).toBe(children.version);
    expect(scheduling.configMap.data!['model.json']).not.toBe(children.configMap.data!['model.json']);
    expect(scheduling.configMap.metadata!.name).not.toBe(children.configMap.metadata!.name);
    expect(scheduling.main.deployment.spec!.template.metadata!.annotations!['recshard.io/plan-configmap']).toBe(scheduling.configMap.metadata!.name);
    // another image is another version: new shard names, new endpoints in plan.json, another ConfigMap
    const image = childrenOf(sharded, { ...cfg, shardServerImage: 'ghcr.io/recshard/shard-server:0.2.0' }).children;
    expect(image.version).not.toBe(children.version);
    expect(image.shards.deployments.map((d) => d.metadata!.name)).toEqual([`rmc-shard-0-${image.version}`, `rmc-shard-1-${image.version}`]);
    expect(JSON.parse(image.configMap.data!['plan.json']!).version).toBe(image.version);
    expect(image.configMap.metadata!.name).not.toBe(children.configMap.metadata!.name);
    // the main keeps its name from version to version
    expect(image.main.deployment.metadata!.name).toBe('rmc-main');
  });

  it('a new plan (another table assignment) is another version', () => {
    const two = childrenOf(sharded).children;
    const three = childrenOf({ tables, sharding: { strategy: 'load-balanced', shards: 3 } }).children;
    expect(three.version).not.toBe(two.version);
    expect(three.shards.deployments).toHaveLength(3);
  });
});

describe('replicas', () => {
  it('are set from placement, and left out when autoscaling owns them', () => {
    const manual = childrenOf({ tables, placement: { main: { replicas: 3 }, sparse: { replicas: 2 } } }).children;
    expect(deployments(manual).map((d) => d.spec!.replicas)).toEqual([3, 2, 2]);
    const auto = childrenOf({ tables, autoscaling: { enabled: true, policyRef: { name: 'p' } } }).children;
    expect(deployments(auto)).toHaveLength(3);
    for (const d of deployments(auto)) expect('replicas' in d.spec!).toBe(false);
  });
});

describe('monolithic', () => {
  it('has only the main, which holds every table and gets their memory', () => {
    const { children, plan } = childrenOf({ tables, sharding: { strategy: 'monolithic' } });
    expect(children.shards).toEqual({ deployments: [], services: [], pdbs: [] });
    expect(JSON.parse(children.configMap.data!['plan.json']!).main.tables).toEqual(plan.tables.map((t) => t.name));
    expect(children.main.deployment.spec!.template.spec!.containers[0]!.resources!.requests!.memory).toMatch(/Mi$/);
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
    expect(shardName('rmc1', 7, '0a1b2c3d')).toBe('rmc1-shard-7-0a1b2c3d');
    expect(shardName('rmc1', 7, '0a1b2c3d')).not.toBe(shardName('rmc1', 7, '0a1b2c3e'));
    const long = 'a'.repeat(80);
    const a = shardName(long, 12, '0a1b2c3d');
    const b = shardName(`${long}b`, 12, '0a1b2c3d');
    for (const n of [a, b, mainName(long), dnsLabel(long)]) {
      expect(n.length).toBeLessThanOrEqual(63);
      expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    expect(a).not.toBe(b);
    expect(a.endsWith('-shard-12-0a1b2c3d')).toBe(true);
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
    const v = children.version;
    expect(served.model).toBe('rmc');
    expect(served.version).toBe(v);
    expect(served.main.tables).toEqual([]);
    // each shard answers at its own version's Service
    expect(served.shards.map((s) => [s.index, s.tables, s.service, s.endpoint])).toEqual(
      plan.shards.map((s) => [s.index, s.tables, `rmc-shard-${s.index}-${v}`, `http://rmc-shard-${s.index}-${v}.prod.svc:8080`]),
    );
    expect(children.shards.services.map((s) => s.metadata!.name)).toEqual(served.shards.map((s) => s.service));
    expect(JSON.parse(children.configMap.data!['model.json']!).artifact.uri).toBe('file:///models/rmc/');
    expect(deployments(children).length).toBeGreaterThan(1);
    for (const d of deployments(children)) {
      const pod = d.spec!.template.spec!;
      expect(pod.volumes).toContainEqual({ name: 'model', persistentVolumeClaim: { claimName: 'models', readOnly: true } });
      expect(pod.containers[0]!.volumeMounts).toContainEqual({ name: 'model', mountPath: '/models/rmc', readOnly: true });
      expect(pod.containers[0]!.args).toContain('--model-config=/etc/recshard/model.json');
    }
  });
});

describe("the main's scheduling", () => {
  const argsOf = (partial: Parameters<typeof specOf>[0]) =>
    deployments(childrenOf({ tables, ...partial }).children).map((d) => d.spec!.template.spec!.containers[0]!.args!);

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
  it('the main keeps a pod through a drain, the shard set loses one pod at a time, and unready pods may always go', () => {
    const { children } = childrenOf({ tables, sharding: { strategy: 'load-balanced', shards: 2 } });
    const v = children.version;
    const [main, shards] = pdbs(children);
    expect(pdbs(children)).toHaveLength(2);
    expect(main!.spec).toEqual({ minAvailable: 1, selector: children.main.deployment.spec!.selector, unhealthyPodEvictionPolicy: 'AlwaysAllow' });
    expect(shards!.metadata!.name).toBe(`rmc-shards-${v}`);
    expect(shards!.spec).toEqual({
      maxUnavailable: 1,
      selector: {
        matchLabels: {
          'app.kubernetes.io/name': 'recshard-shard-server',
          'app.kubernetes.io/instance': 'rmc',
          'app.kubernetes.io/component': 'sparse',
          'recshard.io/version': v,
        },
      },
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    });
    // the set's selector picks every shard's pods of this version, and only those
    const picks = (labels: Record<string, string>) => Object.entries(shards!.spec!.selector!.matchLabels!).every(([k, val]) => labels[k] === val);
    for (const d of children.shards.deployments) expect(picks(d.spec!.template.metadata!.labels!)).toBe(true);
    expect(picks(children.main.deployment.spec!.template.metadata!.labels!)).toBe(false);
    for (const p of pdbs(children)) expect(p.metadata!.ownerReferences![0]).toMatchObject({ kind: 'RecModel', uid: '0000-1111', controller: true });
    // a model whose main holds every table has no shard budget
    expect(childrenOf({ tables, sharding: { strategy: 'monolithic' } }).children.shards.pdbs).toEqual([]);
  });

  it("lookups only from the model's main pods, metrics only from trusted namespaces, the main's API from anyone; egress to DNS and shards", () => {
    const { children, spec } = childrenOf({ tables, sharding: { strategy: 'load-balanced', shards: 2 } });
    const policies = buildNetworkPolicies(owner, spec, true, cfg);
    expect(policies).toHaveLength(2);
    const [main, shards] = policies;
    const api = [{ protocol: 'TCP', port: 8080 }];
    const metrics = [{ protocol: 'TCP', port: 9464 }];
    const monitoring = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }];
    const dns = {
      ports: [
        { protocol: 'UDP', port: 53 },
        { protocol: 'TCP', port: 53 },
      ],
    };
    const selector = (component: string) => ({
      matchLabels: {
        'app.kubernetes.io/name': 'recshard-shard-server',
        'app.kubernetes.io/instance': 'rmc',
        'app.kubernetes.io/component': component,
        'app.kubernetes.io/managed-by': 'recshard-operator',
      },
    });
    expect(main!.spec).toEqual({
      podSelector: selector('main'),
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ ports: api }, { _from: monitoring, ports: metrics }],
      egress: [{ to: [{ podSelector: selector('sparse') }], ports: api }, dns],
    });
    expect(shards!.metadata!.name).toBe('rmc-shards');
    expect(shards!.spec).toEqual({
      podSelector: selector('sparse'),
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        { _from: [{ podSelector: selector('main') }], ports: api },
        { _from: monitoring, ports: metrics },
      ],
      egress: [dns],
    });
    // the pods serve /metrics on the port the policy opens to monitoring, the API on the other
    const ports = children.main.deployment.spec!.template.spec!.containers[0]!.ports;
    expect(ports).toEqual([
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'metrics', containerPort: 9464, protocol: 'TCP' },
    ]);
    expect(children.main.deployment.spec!.template.spec!.containers[0]!.args).toEqual(expect.arrayContaining(['--port=8080', '--metrics-port=9464']));
    // an http(s) artifact's port is open for the download, on both roles
    const fetched = childrenOf({ tables, sharding: { strategy: 'load-balanced', shards: 2 }, artifact: { uri: 'https://models.example:8443/rmc/' } });
    for (const p of buildNetworkPolicies(owner, fetched.spec, true, cfg)) expect(p.spec!.egress).toContainEqual({ ports: [{ protocol: 'TCP', port: 8443 }] });
    // every shard Deployment's pods are selected, whatever their version: its pod labels carry the selector's
    expect(children.shards.deployments).toHaveLength(2);
    for (const d of children.shards.deployments) expect(d.spec!.template.metadata!.labels).toMatchObject(shards!.spec!.podSelector!.matchLabels!);
    const other = childrenOf(
      { tables, sharding: { strategy: 'load-balanced', shards: 2 } },
      { ...cfg, shardServerImage: 'ghcr.io/recshard/shard-server:0.2.0' },
    );
    for (const d of other.children.shards.deployments) expect(d.spec!.template.metadata!.labels).toMatchObject(shards!.spec!.podSelector!.matchLabels!);
    // the main's pods are the only ones the shards' policy lets in
    expect(children.main.deployment.spec!.template.metadata!.labels).toMatchObject(main!.spec!.podSelector!.matchLabels!);
  });

  it("a model without shards has only the main's policy, and none when NetworkPolicies are off", () => {
    const { children, spec } = childrenOf({ tables, sharding: { strategy: 'monolithic' } });
    const anyShards = children.shards.deployments.length > 0;
    expect(anyShards).toBe(false);
    expect(buildNetworkPolicies(owner, spec, anyShards, cfg).map((n) => n.metadata!.name)).toEqual(['rmc-main']);
    expect(buildNetworkPolicies(owner, spec, true, cfg).map((n) => n.metadata!.name)).toEqual(['rmc-main', 'rmc-shards']);
    expect(buildNetworkPolicies(owner, spec, anyShards, { ...cfg, networkPolicies: false })).toEqual([]);
    expect(buildNetworkPolicies(owner, spec, true, { ...cfg, networkPolicies: false })).toEqual([]);
  });
});

describe('mutual TLS (spec.serving.tls)', () => {
  const sharding = { strategy: 'load-balanced' as const, shards: 2 };
  const plain = childrenOf({ tables, sharding }).children;
  const tls = childrenOf({ tables, sharding, serving: { tls: { secretName: 'rmc-tls' } } }).children;

  it('mounts the Secret read-only in every pod and passes its files to every shard-server', () => {
    for (const d of deployments(tls)) {
      const pod = d.spec!.template.spec!;
      expect(pod.volumes).toContainEqual({ name: 'tls', secret: { secretName: 'rmc-tls' } });
      const c = pod.containers[0]!;
      expect(c.volumeMounts).toContainEqual({ name: 'tls', mountPath: '/etc/recshard-tls', readOnly: true });
      expect(c.args).toEqual(
        expect.arrayContaining(['--tls-cert=/etc/recshard-tls/tls.crt', '--tls-key=/etc/recshard-tls/tls.key', '--tls-ca=/etc/recshard-tls/ca.crt']),
      );
    }
    for (const d of deployments(plain)) {
      expect(d.spec!.template.spec!.volumes!.some((v) => v.secret)).toBe(false);
      expect(d.spec!.template.spec!.containers[0]!.args!.some((a) => a.startsWith('--tls'))).toBe(false);
    }
  });

  it('probes the shards over HTTPS (they serve TLS) and the main over HTTP (its API stays plain)', () => {
    const [main, ...shards] = deployments(tls);
    expect(main!.spec!.template.spec!.containers[0]!.readinessProbe!.httpGet!.scheme).toBeUndefined();
    for (const s of shards) {
      const c = s.spec!.template.spec!.containers[0]!;
      expect([c.readinessProbe!.httpGet!.scheme, c.livenessProbe!.httpGet!.scheme]).toEqual(['HTTPS', 'HTTPS']);
    }
  });

  it('writes https:// shard endpoints and is a serving version of its own; without it, versions are as before', () => {
    const endpoints = (c: VersionChildren) => (JSON.parse(c.configMap.data!['plan.json']!) as { shards: { endpoint: string }[] }).shards.map((s) => s.endpoint);
    expect(endpoints(tls)).toEqual([0, 1].map((i) => `https://rmc-shard-${i}-${tls.version}.prod.svc:8080`));
    expect(endpoints(plain)).toEqual([0, 1].map((i) => `http://rmc-shard-${i}-${plain.version}.prod.svc:8080`));
    expect(tls.version).not.toBe(plain.version);
    const other = childrenOf({ tables, sharding, serving: { tls: { secretName: 'other' } } }).children;
    expect(other.version).not.toBe(tls.version);
    // the same hash as a spec that never heard of TLS: an operator upgrade rolls nothing
    const { spec, plan } = childrenOf({ tables, sharding });
    expect(plain.version).toBe(servingVersion({ model: spec.model, artifact: spec.artifact }, plan, cfg.shardServerImage));
  });
});

describe('built a slice of shards per turn', () => {
  it('gives exactly the children buildVersion gives, pausing between slices', async () => {
    const spec = specOf({ tables, sharding: { strategy: 'load-balanced', shards: 5 } });
    const p = planModel(spec);
    if (!p.ok) throw p.error;
    let pauses = 0;
    const inTurns = await buildVersionInTurns(owner, spec, p.plan, cfg, async () => void pauses++, 2);
    expect(inTurns).toEqual(buildVersion(owner, spec, p.plan, cfg));
    const n = p.plan.shards.length;
    expect(n).toBeGreaterThan(2);
    expect(pauses).toBe(Math.floor((n - 1) / 2)); // after each full slice of two but the last
  });
});
