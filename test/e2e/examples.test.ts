// Every example applied with kubectl to the real control plane: the operator makes the planned ConfigMap,
// Deployments and Services, the scheduler places GPU components on GPU nodes and CPU ones on CPU nodes, pods
// become Ready through KWOK, and `kubectl wait --for=condition=Ready` succeeds.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_NODES } from '../../local-cluster/harness.js';
import { resolveSpec, type RecModel } from '../../operator/api/v1alpha1/index.js';
import { ANNOTATION_CONFIG, ANNOTATION_PLAN_HASH, LABEL_VERSION } from '../../operator/builders/labels.js';
import { shardName } from '../../operator/builders/names.js';
import { planModel } from '../../operator/planner/plan.js';
import {
  ROOT,
  childNames,
  condition,
  createNamespace,
  deleteNamespace,
  getRecModel,
  installCrd,
  kubeconfig,
  kubectl,
  kubectlJson,
  readExample,
  servingVersion,
  shardNameOf,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from './support.js';

const EXAMPLES = ['dlrm-rmc1.yaml', 'dlrm-rmc2.yaml', 'dlrm-rmc3.yaml', 'wide-and-deep.yaml'];

let ns: string;
let op: OperatorProcess;

beforeAll(async () => {
  installCrd();
  ns = createNamespace('examples');
  op = await startOperator(ns);
});

afterAll(async () => {
  await op?.stop();
  if (ns) deleteNamespace(ns);
});

function planOf(rm: RecModel) {
  const r = resolveSpec(rm.spec);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const p = planModel(r.spec);
  if (!p.ok) throw p.error;
  return { spec: r.spec, plan: p.plan };
}

describe.each(EXAMPLES)('example %s', (file) => {
  it('reconciles every strategy into the planned, correctly placed, Ready children', async () => {
    kubectl(['apply', '-n', ns, '-f', join(ROOT, 'examples', file)]);
    for (const rm of readExample(file)) {
      const name = rm.metadata.name;
      kubectl(['wait', '-n', ns, '--for=condition=Ready', `recmodel/${name}`, '--timeout=120s']);
      const { spec, plan } = planOf(rm);
      // the first version of the model: its shards are named (and selected) by it
      const version = await waitUntil(`${name}'s first version complete`, () => {
        const r = getRecModel(ns, name).status?.rollout;
        return r?.phase === 'Complete' && r.toPlan === plan.hash && r.toVersion;
      });
      const shards = plan.shards.map((s) => shardName(name, s.index, version));

      expect(childNames(ns, 'deployments', name)).toEqual([`${name}-main`, ...shards].sort());
      expect(childNames(ns, 'services', name)).toEqual([`${name}-main`, ...shards].sort());
      // one plan ConfigMap, immutable, named by its content and labelled with the version; every pod mounts it
      const [configMap, ...more] = childNames(ns, 'configmaps', name);
      expect(more).toEqual([]);
      expect(configMap).toMatch(new RegExp(`^${name}-plan-[0-9a-f]{10}$`));

      const cm = kubectlJson(['get', 'configmap', configMap!, '-n', ns]);
      expect(cm.immutable).toBe(true);
      expect(cm.metadata.labels[LABEL_VERSION]).toBe(version);
      const served = JSON.parse(cm.data['plan.json']);
      expect(served.version).toBe(version);
      expect(served.strategy).toBe(plan.strategy);
      expect(served.shards.map((s: { tables: string[] }) => s.tables)).toEqual(plan.shards.map((s) => s.tables));
      expect(served.shards.map((s: { endpoint: string }) => s.endpoint)).toEqual(shards.map((s) => `http://${s}.${ns}.svc:8080`));

      const live = getRecModel(ns, name);
      expect(live.status?.observedGeneration).toBe(live.metadata.generation);
      expect(live.status?.plan?.hash).toBe(plan.hash);
      expect(live.status?.plan?.shards).toBe(plan.shards.length);
      expect(live.status?.ready).toBe(`${shards.length + 1}/${shards.length + 1}`);

      for (const [deployment, role] of [[`${name}-main`, 'main'], ...shards.map((s) => [s, 'sparse'])] as [string, 'main' | 'sparse'][]) {
        const d = kubectlJson(['get', 'deployment', deployment, '-n', ns]);
        const device = role === 'main' ? spec.placement.main.device : spec.placement.sparse.device;
        const container = d.spec.template.spec.containers[0];
        expect(d.spec.template.metadata.annotations[ANNOTATION_PLAN_HASH]).toBe(plan.hash);
        expect(d.spec.template.metadata.annotations[ANNOTATION_CONFIG]).toBe(configMap);
        expect(d.spec.template.spec.volumes).toContainEqual({ name: 'config', configMap: expect.objectContaining({ name: configMap }) });
        expect(d.spec.template.metadata.labels[LABEL_VERSION]).toBe(version);
        // a shard's selector is its version's; the main's is not (one main Deployment rolls from version to version)
        expect(d.spec.selector.matchLabels[LABEL_VERSION]).toBe(role === 'sparse' ? version : undefined);
        expect(d.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
        expect(container.args).toContain(`--role=${role}`);
        if (device === 'gpu') {
          expect(container.resources.limits['nvidia.com/gpu']).toBe('1');
          expect(d.spec.template.spec.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
        } else {
          expect(container.resources?.limits?.['nvidia.com/gpu']).toBeUndefined();
        }
        if (role === 'sparse') expect(container.resources.requests.memory).toMatch(/^\d+Mi$/);
        const pods = kubectlJson([
          'get',
          'pods',
          '-n',
          ns,
          '-l',
          Object.entries(d.spec.selector.matchLabels)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
        ]).items;
        expect(pods).toHaveLength(1);
        expect(pods[0].metadata.labels[LABEL_VERSION]).toBe(version);
        const nodes: readonly string[] = device === 'gpu' ? FAKE_NODES.gpu : FAKE_NODES.cpu;
        expect(nodes).toContain(pods[0].spec.nodeName);
        expect(pods[0].status.conditions.find((c: { type: string }) => c.type === 'Ready').status).toBe('True');
      }
    }
  });
});

describe('what users see', () => {
  it('kubectl get recmodels shows strategy, shards, ready, rollout, latency and age columns (and the version with -o wide)', () => {
    const out = kubectl(['get', 'rm', '-n', ns]);
    const [header, ...rows] = out.trim().split('\n');
    expect(header!.split(/\s+/)).toEqual(['NAME', 'STRATEGY', 'SHARDS', 'READY', 'ROLLOUT', 'LATENCY', 'AGE']);
    const lb = rows.find((r) => r.startsWith('rmc1-lb '))!.split(/\s+/);
    expect(lb.slice(1, 5)).toEqual(['load-balanced', '4', '5/5', 'Complete']);
    const [wide, ...wideRows] = kubectl(['get', 'rm', '-n', ns, '-o', 'wide']).trim().split('\n');
    const at = wide!.split(/\s+/).indexOf('VERSION');
    expect(at).toBeGreaterThan(0);
    expect(wideRows.find((r) => r.startsWith('rmc1-lb '))!.split(/\s+/)[at]).toBe(servingVersion(ns, 'rmc1-lb'));
  });

  it('kubectl explain documents the fields', () => {
    const out = kubectl(['explain', 'recmodel.spec.sharding.strategy']);
    expect(out).toContain('net-specific (tables of');
    expect(kubectl(['explain', 'latencyscalingpolicy.spec.missingMetrics'])).toMatch(/Neither\s+ever\s+removes\s+pods/);
    // the autoscaling examples (policies and a model under one) are accepted by the API server as written
    const dryRun = kubectl(['apply', '--dry-run=server', '-n', ns, '-f', join(ROOT, 'examples', 'autoscaling')]);
    expect(dryRun).toMatch(/latencyscalingpolicy.recshard.io\/recsys-p95-100ms (created|configured|unchanged) \(server dry run\)/);
    expect(dryRun).toMatch(/latencyscalingpolicy.recshard.io\/recsys-hpa-p95-100ms (created|configured|unchanged) \(server dry run\)/);
    expect(kubectl(['explain', 'latencyscalingpolicy.spec.actuator'])).toMatch(/HorizontalPodAutoscaler/);
  });

  it("the kind walkthrough's manifests are accepted as written, and its model pods mount the volume read-only", async () => {
    const dir = join(ROOT, 'examples', 'kind');
    const dryRun = kubectl(['apply', '--dry-run=server', '-n', ns, '-f', join(dir, 'model.yaml'), '-f', join(dir, 'rmc1.yaml')]);
    expect(dryRun).toMatch(/persistentvolumeclaim\/recshard-models created \(server dry run\)/);
    expect(dryRun).toMatch(/job.batch\/rmc1-model created \(server dry run\)/);
    expect(dryRun).toMatch(/recmodel.recshard.io\/rmc1-kind created \(server dry run\)/);
    kubectl(['apply', '-n', ns, '-f', join(dir, 'rmc1.yaml')]);
    // planned and built; its pods wait for the volume, which only the dry run created
    await waitUntil(
      'rmc1-kind planned with 2 shards',
      () => {
        const r = getRecModel(ns, 'rmc1-kind');
        return condition(r, 'Planned')?.status === 'True' && r.status?.rollout?.toVersion && childNames(ns, 'deployments', 'rmc1-kind').length === 3;
      },
      60_000,
    );
    const shard = kubectlJson(['get', 'deployment', shardNameOf(ns, 'rmc1-kind', 0), '-n', ns]).spec.template.spec;
    expect(shard.volumes).toContainEqual({ name: 'model', persistentVolumeClaim: { claimName: 'recshard-models', readOnly: true } });
    expect(shard.containers[0].volumeMounts).toContainEqual({ name: 'model', mountPath: '/models', readOnly: true });
    kubectl(['delete', '-n', ns, '-f', join(dir, 'rmc1.yaml'), '--wait=false']);
  });

  it('the kubectl plugin prints the plan (kubectl recshard plan)', () => {
    const env = { ...process.env, PATH: `${join(ROOT, 'bin')}:${process.env.PATH}`, KUBECONFIG: kubeconfig() };
    const table = execFileSync('kubectl', ['recshard', 'plan', join(ROOT, 'examples', 'dlrm-rmc2.yaml')], { env, encoding: 'utf8' });
    expect(table).toContain('Model rmc2-net: net-specific, 32 tables');
    const json = JSON.parse(
      execFileSync('kubectl', ['recshard', 'plan', '-o', 'json', join(ROOT, 'examples', 'dlrm-rmc1.yaml')], { env, encoding: 'utf8' }).split('\n\n')[0]!,
    );
    expect(json.model).toBe('rmc1-mono');
  });
});
