import type { KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { LatencyScalingPolicy, RecModel } from '../../../operator/api/v1alpha1/index.js';
import { DEFAULT_BUILDER_CONFIG } from '../../../operator/builders/config.js';
import { decide } from '../../../operator/controller/reconcile/decide.js';
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

describe('decide with an HPA or KEDA actuator', () => {
  it('adds one HPA per component after the Deployments, under actuator HPA', () => {
    const d = decide({ rm: rm(enabled), owned: [], foreign: [], pods: [], policy: policy('HPA') }, DEFAULT_BUILDER_CONFIG, env);
    expect(refs(d.desired)).toEqual(['HorizontalPodAutoscaler/m-main', 'HorizontalPodAutoscaler/m-shard-0', 'HorizontalPodAutoscaler/m-shard-1']);
    expect(d.desired.map((o) => o.kind).lastIndexOf('Deployment')).toBeLessThan(d.desired.findIndex((o) => o.kind === 'HorizontalPodAutoscaler'));
    expect(d.scaling).toMatchObject({ ok: true, policy: { actuator: 'HPA' } });
  });

  it('replaces the HPAs by ScaledObjects when the policy moves to KEDA, and drops them when autoscaling is off', () => {
    const hpas = ['m-main', 'm-shard-0', 'm-shard-1'].map((n) => ours('HorizontalPodAutoscaler', n));
    const toKeda = decide({ rm: rm(enabled), owned: hpas, foreign: [], pods: [], policy: policy('KEDA') }, DEFAULT_BUILDER_CONFIG, env);
    expect(refs(toKeda.desired)).toEqual(['ScaledObject/m-main', 'ScaledObject/m-shard-0', 'ScaledObject/m-shard-1']);
    expect(refs(toKeda.stale)).toEqual(['HorizontalPodAutoscaler/m-main', 'HorizontalPodAutoscaler/m-shard-0', 'HorizontalPodAutoscaler/m-shard-1']);
    const off = decide({ rm: rm(), owned: hpas, foreign: [], pods: [] }, DEFAULT_BUILDER_CONFIG, env);
    expect(refs(off.desired)).toEqual([]);
    expect(refs(off.stale)).toHaveLength(3);
    const operator = decide({ rm: rm(enabled), owned: hpas, foreign: [], pods: [], policy: policy('Operator') }, DEFAULT_BUILDER_CONFIG, env);
    expect(refs(operator.stale)).toHaveLength(3);
  });

  it('keeps HPAs that exist while the policy is missing or cannot be carried out: nothing stops scaling by accident', () => {
    const hpas = [ours('HorizontalPodAutoscaler', 'm-main')];
    const missing = decide({ rm: rm(enabled), owned: hpas, foreign: [], pods: [] }, DEFAULT_BUILDER_CONFIG, env);
    expect(missing.scaling).toMatchObject({ ok: false, reason: 'PolicyNotFound' });
    expect(refs(missing.stale)).toEqual([]);
    const noKeda = decide({ rm: rm(enabled), owned: [ours('ScaledObject', 'm-main')], foreign: [], pods: [], policy: policy('KEDA') }, DEFAULT_BUILDER_CONFIG, {
      kedaServed: false,
    });
    expect(noKeda.scaling).toMatchObject({ ok: false, reason: 'ActuatorUnavailable' });
    expect(refs(noKeda.desired)).toEqual([]);
    expect(refs(noKeda.stale)).toEqual([]);
  });
});
