import type { V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { defaultPolicy, type EffectivePolicy } from '../../../operator/autoscaling/policy.js';
import { adapterRule, buildAutoscalers, buildHpa, buildScaledObject, hpaMetricName, latencyQuery } from '../../../operator/builders/autoscalers.js';

const owner = { name: 'rmc', namespace: 'prod', uid: 'u-1' };
/** A shard's serving version: its Deployment's name, so its autoscaler's, carries it. */
const version = '0a1b2c3d';
const policy = (over: Partial<EffectivePolicy> = {}): EffectivePolicy => ({
  ...defaultPolicy(150, 10),
  main: { min: 2, max: 8 },
  sparse: { min: 1, max: 12 },
  scaleOn: 'all',
  ...over,
});

describe('HPA v2 from a policy', () => {
  it("scales each component on its own latency percentile, within its role's bounds and the policy's rate limits", () => {
    const main = buildHpa(owner, policy({ actuator: 'HPA' }), { role: 'main' });
    const shard = buildHpa(owner, policy({ actuator: 'HPA' }), { role: 'sparse', shard: 3, version });
    expect(main.metadata).toMatchObject({
      name: 'rmc-main',
      namespace: 'prod',
      ownerReferences: [{ kind: 'RecModel', name: 'rmc', uid: 'u-1', controller: true }],
    });
    expect(main.spec).toMatchObject({ scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'rmc-main' }, minReplicas: 2, maxReplicas: 8 });
    expect(shard.metadata!.name).toBe(`rmc-shard-3-${version}`);
    expect(shard.metadata!.labels).toMatchObject({ 'recshard.io/shard': '3', 'recshard.io/version': version });
    expect(main.metadata!.labels).not.toHaveProperty(['recshard.io/version']);
    expect(shard.spec).toMatchObject({ scaleTargetRef: { name: `rmc-shard-3-${version}` }, minReplicas: 1, maxReplicas: 12 });
    expect(shard.spec!.metrics).toEqual([
      {
        type: 'External',
        external: {
          metric: { name: 'recshard_latency_p95_60s_seconds', selector: { matchLabels: { model: 'rmc', role: 'sparse', stage: 'end_to_end', shard: '3' } } },
          target: { type: 'Value', value: '150m' },
        },
      },
    ]);
    expect(main.spec!.metrics![0]!.external!.metric.selector!.matchLabels).toEqual({ model: 'rmc', role: 'main', stage: 'end_to_end' });
    // defaults: up 4 pods or 100% per 15 s at once; down 1 pod or 10% per minute after 5 minutes
    expect(main.spec!.behavior).toEqual({
      scaleUp: {
        stabilizationWindowSeconds: 0,
        selectPolicy: 'Max',
        policies: [
          { type: 'Pods', value: 4, periodSeconds: 15 },
          { type: 'Percent', value: 100, periodSeconds: 15 },
        ],
      },
      scaleDown: {
        stabilizationWindowSeconds: 300,
        selectPolicy: 'Max',
        policies: [
          { type: 'Pods', value: 1, periodSeconds: 60 },
          { type: 'Percent', value: 10, periodSeconds: 60 },
        ],
      },
    });
  });

  it('writes sub-millisecond targets and other percentiles exactly', () => {
    const h: V2HorizontalPodAutoscaler = buildHpa(owner, policy({ actuator: 'HPA', targetMs: 2.5, percentile: 99.9, windowMs: 30_000 }), { role: 'main' });
    expect(h.spec!.metrics![0]!.external!.target.value).toBe('2500u');
    expect(h.spec!.metrics![0]!.external!.metric.name).toBe('recshard_latency_p99_9_30s_seconds');
  });
});

describe('KEDA ScaledObjects from a policy', () => {
  it("query Prometheus for the component's percentile, and fail (hold) rather than read 0 when the series are missing", () => {
    const so = buildScaledObject(owner, policy({ actuator: 'KEDA' }), { role: 'sparse', shard: 1, version }, 'http://prom:9090');
    expect(so).toMatchObject({
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: { name: `rmc-shard-1-${version}`, ownerReferences: [{ kind: 'RecModel', uid: 'u-1' }] },
    });
    expect(so.spec).toMatchObject({ scaleTargetRef: { name: `rmc-shard-1-${version}` }, pollingInterval: 15, minReplicaCount: 1, maxReplicaCount: 12 });
    const trigger = (so.spec.triggers as { type: string; metricType: string; metadata: Record<string, string> }[])[0]!;
    expect(trigger.type).toBe('prometheus');
    expect(trigger.metricType).toBe('Value');
    expect(trigger.metadata).toMatchObject({ serverAddress: 'http://prom:9090', threshold: '0.15', ignoreNullValues: 'false' });
    const sel = 'namespace="prod",model="rmc",role="sparse",stage="end_to_end",shard="1"';
    expect(trigger.metadata.query).toBe(latencyQuery(95, 60_000, sel));
    expect(trigger.metadata.query).toContain(`histogram_quantile(0.95, sum by (le) (rate(recshard_request_duration_seconds_bucket{${sel}}[60s])))`);
    // Hold: no fallback, so a failing query makes the HPA keep its replicas
    expect(so.spec.fallback).toBeUndefined();
    expect((so.spec.advanced as Record<string, unknown>).scalingModifiers).toBeUndefined();
    expect((so.spec.advanced as { horizontalPodAutoscalerConfig: { behavior: unknown } }).horizontalPodAutoscalerConfig.behavior).toEqual(
      buildHpa(owner, policy(), { role: 'main' }).spec!.behavior,
    );
  });

  it('say missingMetrics ScaleUp as a fallback to maxReplicas that never lowers the count', () => {
    const so = buildScaledObject(owner, policy({ actuator: 'KEDA', missingMetrics: 'ScaleUp' }), { role: 'main' }, 'http://prom:9090');
    expect(so.spec.fallback).toEqual({ failureThreshold: 3, replicas: 8, behavior: 'currentReplicasIfHigher' });
    expect((so.spec.advanced as Record<string, unknown>).scalingModifiers).toEqual({ formula: 'latency', target: '0.15', metricType: 'Value' });
  });
});

describe('which autoscaler objects a policy calls for', () => {
  const components = [{ role: 'main' as const }, { role: 'sparse' as const, shard: 0, version }, { role: 'sparse' as const, shard: 1, version }];
  it("one per component under HPA or KEDA, none under the operator's own law", () => {
    expect(buildAutoscalers(owner, policy({ actuator: 'HPA' }), components, undefined).map((o) => `${o.kind}/${o.metadata!.name}`)).toEqual([
      'HorizontalPodAutoscaler/rmc-main',
      `HorizontalPodAutoscaler/rmc-shard-0-${version}`,
      `HorizontalPodAutoscaler/rmc-shard-1-${version}`,
    ]);
    expect(buildAutoscalers(owner, policy({ actuator: 'KEDA' }), components, 'http://p').map((o) => o.kind)).toEqual([
      'ScaledObject',
      'ScaledObject',
      'ScaledObject',
    ]);
    expect(buildAutoscalers(owner, policy({ actuator: 'Operator' }), components, 'http://p')).toEqual([]);
  });
});

describe('the prometheus-adapter rule behind the HPA metric', () => {
  it("serves the metric HPA names with the same query as KEDA's, the HPA's selector as matchers", () => {
    const p = policy({ percentile: 99, windowMs: 120_000 });
    const rule = adapterRule(p);
    expect(rule.name.as).toBe(hpaMetricName(p));
    expect(rule.resources).toEqual({ overrides: { namespace: { resource: 'namespace' } } });
    // filled in as the adapter would, the rule is the query KEDA runs
    const filled = rule.metricsQuery.replaceAll('<<.Series>>', 'recshard_request_duration_seconds_bucket').replaceAll('<<.LabelMatchers>>', 'model="rmc"');
    expect(filled).toBe(latencyQuery(99, 120_000, 'model="rmc"'));
  });
});
