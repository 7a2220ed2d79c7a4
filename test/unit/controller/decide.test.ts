import type { KubernetesObject, V1Deployment } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { resolveSpec, type LatencyScalingPolicy, type RecModel } from '../../../operator/api/v1alpha1/index.js';
import { buildVersion, type VersionChildren } from '../../../operator/builders/children.js';
import { DEFAULT_BUILDER_CONFIG, type BuilderConfig } from '../../../operator/builders/config.js';
import { decide } from '../../../operator/controller/reconcile/decide.js';
import { planModel } from '../../../operator/planner/plan.js';
import { customModel } from '../../fixtures.js';

const rm = (autoscaling?: Record<string, unknown>): RecModel => ({
  apiVersion: 'recshard.io/v1alpha1',
  kind: 'RecModel',
  metadata: { name: 'm', namespace: 'ns', uid: 'u-1', generation: 1 },
  spec: {
    model: customModel(),
    sharding: { strategy: 'load-balanced', shards: 2 },
    ...(autoscaling ? { autoscaling } : {}),
  } as RecModel['spec'],
});
const policy = (actuator: string): LatencyScalingPolicy => ({
  apiVersion: 'recshard.io/v1alpha1',
  kind: 'LatencyScalingPolicy',
  metadata: { name: 'sre' },
  spec: { target: { latency: '100ms' }, actuator, scaleOn: 'all' } as LatencyScalingPolicy['spec'],
});
const env = { kedaServed: true, prometheusUrl: 'http://prom:9090' };
const ours = (kind: string, name: string): KubernetesObject => ({
  kind,
  apiVersion: kind === 'ScaledObject' ? 'keda.sh/v1alpha1' : 'autoscaling/v2',
  metadata: { name, namespace: 'ns', ownerReferences: [{ apiVersion: 'recshard.io/v1alpha1', kind: 'RecModel', name: 'm', uid: 'u-1', controller: true }] },
});
const refs = (objs: KubernetesObject[], kinds = ['HorizontalPodAutoscaler', 'ScaledObject']) =>
  objs.filter((o) => kinds.includes(o.kind!)).map((o) => `${o.kind}/${o.metadata!.name}`);
const enabled = { enabled: true, policyRef: { name: 'sre' } };
const now = new Date('2026-01-01T00:00:00Z');

/** The children of the model's serving version, as the operator builds them (its version names its shards). */
function versionOf(model: RecModel, cfg: BuilderConfig = DEFAULT_BUILDER_CONFIG): VersionChildren {
  const r = resolveSpec(model.spec);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const p = planModel(r.spec);
  if (!p.ok) throw p.error;
  return buildVersion({ name: 'm', namespace: 'ns', uid: 'u-1' }, r.spec, p.plan, cfg);
}
const v = versionOf(rm()).version;

describe('decide with an HPA or KEDA actuator', () => {
  it('adds one HPA per component after the Deployments, under actuator HPA', () => {
    const d = decide({ rm: rm(enabled), owned: [], foreign: [], pods: [], policy: policy('HPA') }, DEFAULT_BUILDER_CONFIG, now, env);
    expect(refs(d.desired)).toEqual(['HorizontalPodAutoscaler/m-main', `HorizontalPodAutoscaler/m-shard-0-${v}`, `HorizontalPodAutoscaler/m-shard-1-${v}`]);
    // a first version: everything of it is applied at once, the main included (after the shards it calls)
    expect(refs(d.desired, ['Deployment'])).toEqual([`Deployment/m-shard-0-${v}`, `Deployment/m-shard-1-${v}`, 'Deployment/m-main']);
    expect(d.desired.map((o) => o.kind).lastIndexOf('Deployment')).toBeLessThan(d.desired.findIndex((o) => o.kind === 'HorizontalPodAutoscaler'));
    expect(d.scaling).toMatchObject({ ok: true, policy: { actuator: 'HPA' } });
  });

  it('replaces the HPAs by ScaledObjects when the policy moves to KEDA, and drops them when autoscaling is off', () => {
    const hpas = ['m-main', `m-shard-0-${v}`, `m-shard-1-${v}`].map((n) => ours('HorizontalPodAutoscaler', n));
    const toKeda = decide({ rm: rm(enabled), owned: hpas, foreign: [], pods: [], policy: policy('KEDA') }, DEFAULT_BUILDER_CONFIG, now, env);
    expect(refs(toKeda.desired)).toEqual(['ScaledObject/m-main', `ScaledObject/m-shard-0-${v}`, `ScaledObject/m-shard-1-${v}`]);
    expect(refs(toKeda.stale)).toEqual(['HorizontalPodAutoscaler/m-main', `HorizontalPodAutoscaler/m-shard-0-${v}`, `HorizontalPodAutoscaler/m-shard-1-${v}`]);
    const off = decide({ rm: rm(), owned: hpas, foreign: [], pods: [] }, DEFAULT_BUILDER_CONFIG, now, env);
    expect(refs(off.desired)).toEqual([]);
    expect(refs(off.stale)).toHaveLength(3);
    const operator = decide({ rm: rm(enabled), owned: hpas, foreign: [], pods: [], policy: policy('Operator') }, DEFAULT_BUILDER_CONFIG, now, env);
    expect(refs(operator.stale)).toHaveLength(3);
  });

  it('keeps HPAs that exist while the policy is missing or cannot be carried out: nothing stops scaling by accident', () => {
    const hpas = [ours('HorizontalPodAutoscaler', 'm-main')];
    const missing = decide({ rm: rm(enabled), owned: hpas, foreign: [], pods: [] }, DEFAULT_BUILDER_CONFIG, now, env);
    expect(missing.scaling).toMatchObject({ ok: false, reason: 'PolicyNotFound' });
    expect(refs(missing.stale)).toEqual([]);
    const noKeda = decide(
      { rm: rm(enabled), owned: [ours('ScaledObject', 'm-main')], foreign: [], pods: [], policy: policy('KEDA') },
      DEFAULT_BUILDER_CONFIG,
      now,
      {
        kedaServed: false,
      },
    );
    expect(noKeda.scaling).toMatchObject({ ok: false, reason: 'ActuatorUnavailable' });
    expect(refs(noKeda.desired)).toEqual([]);
    expect(refs(noKeda.stale)).toEqual([]);
  });
});

describe('decide while another version serves', () => {
  // what runs: the main and the shards of the version the previous image made, all available
  const oldCfg = { ...DEFAULT_BUILDER_CONFIG, shardServerImage: 'ghcr.io/recshard/shard-server:0.0.9' };
  const old = versionOf(rm(enabled), oldCfg);
  const available = (d: V1Deployment): V1Deployment => ({
    ...d,
    kind: 'Deployment',
    metadata: { ...d.metadata, generation: 1 },
    status: { observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1 },
  });
  const live: KubernetesObject[] = [
    old.configMap,
    old.main.service,
    old.main.pdb,
    available(old.main.deployment),
    ...old.shards.services,
    ...old.shards.pdbs,
    ...old.shards.deployments.map(available),
  ];

  it("applies the new version's shards (and the main's Service and budget) first, keeping the main and the old shards as they are", () => {
    expect(old.version).not.toBe(v);
    const d = decide({ rm: rm(enabled), owned: live, foreign: [], pods: [], policy: policy('HPA') }, DEFAULT_BUILDER_CONFIG, now, env);
    expect(refs(d.desired, ['Deployment'])).toEqual([`Deployment/m-shard-0-${v}`, `Deployment/m-shard-1-${v}`]);
    expect(refs(d.desired, ['Service'])).toEqual(['Service/m-main', `Service/m-shard-0-${v}`, `Service/m-shard-1-${v}`]);
    expect(refs(d.desired, ['PodDisruptionBudget'])).toEqual(['PodDisruptionBudget/m-main', `PodDisruptionBudget/m-shards-${v}`]);
    // the new plan ConfigMap is applied beside the old one, which the running main still mounts
    const target = versionOf(rm(enabled));
    expect(refs(d.desired, ['ConfigMap'])).toEqual([`ConfigMap/${target.configMap.metadata!.name}`]);
    expect(target.configMap.metadata!.name).not.toBe(old.configMap.metadata!.name);
    // the new shards get their autoscalers with them; the main's keeps scaling the main
    expect(refs(d.desired)).toEqual(['HorizontalPodAutoscaler/m-main', `HorizontalPodAutoscaler/m-shard-0-${v}`, `HorizontalPodAutoscaler/m-shard-1-${v}`]);
    // nothing that serves is deleted
    expect(d.stale).toEqual([]);
    expect(refs(d.rollout!.retain, ['Deployment', 'ConfigMap']).sort()).toEqual(
      [`ConfigMap/${old.configMap.metadata!.name}`, 'Deployment/m-main', ...old.shards.deployments.map((x) => `Deployment/${x.metadata!.name}`)].sort(),
    );
    expect(d.rollout!.status).toMatchObject({ fromVersion: old.version, toVersion: v, mode: 'Overlap', phase: 'StartingShards' });
    expect(d.rollout!.progressing).toMatchObject({ type: 'Progressing', status: 'True', reason: 'StartingShards' });
  });

  it('moves the main to the new version once every new shard is available (applied after them)', () => {
    const target = versionOf(rm(enabled));
    const started = decide({ rm: rm(enabled), owned: live, foreign: [], pods: [], policy: policy('HPA') }, DEFAULT_BUILDER_CONFIG, now, env);
    const withShards = [...live, target.configMap, ...target.shards.services, ...target.shards.deployments.map(available)];
    const model = { ...rm(enabled), status: { rollout: started.rollout!.status } };
    const d = decide(
      { rm: model, owned: withShards, foreign: [], pods: [], policy: policy('HPA') },
      DEFAULT_BUILDER_CONFIG,
      new Date(now.getTime() + 10_000),
      env,
    );
    expect(refs(d.desired, ['Deployment'])).toEqual([`Deployment/m-shard-0-${v}`, `Deployment/m-shard-1-${v}`, 'Deployment/m-main']);
    const main = d.desired.find((o) => o.kind === 'Deployment' && o.metadata!.name === 'm-main') as V1Deployment;
    expect(main.spec!.template.metadata!.labels!['recshard.io/version']).toBe(v);
    expect(main.spec!.template.metadata!.annotations!['recshard.io/plan-configmap']).toBe(target.configMap.metadata!.name);
    // the old shards stay while old main pods may still call them
    expect(refs(d.stale, ['Deployment'])).toEqual([]);
    expect(d.rollout!.status.phase).toBe('SwitchingMain');
  });
});
