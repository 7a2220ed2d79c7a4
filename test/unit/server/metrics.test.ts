import { describe, expect, it } from 'vitest';
import type { ComponentDecision } from '../../../operator/autoscaling/evaluate.js';
import { defaultPolicy } from '../../../operator/autoscaling/policy.js';
import { OperatorMetrics } from '../../../operator/server/metrics.js';

const cond = (type: string, status: 'True' | 'False', reason: string) => ({ type, status, reason, message: '', lastTransitionTime: '2026-01-01T00:00:00Z' });
const decision = (name: string, role: 'main' | 'sparse', latencyMs: number): ComponentDecision =>
  ({ name, role, current: 1, desired: 1, latencyMs, rate: 10, recommended: 1, reason: 'WithinBand', message: '' }) as unknown as ComponentDecision;

async function series(m: OperatorMetrics, name: string) {
  const metric = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (metric?.values ?? []).map((v) => ({ ...v.labels, value: v.value }));
}

describe('per-RecModel series', () => {
  it("carry the conditions, the policy target and each component's latency, in seconds", async () => {
    const m = new OperatorMetrics();
    const policy = defaultPolicy(100, 10);
    m.recordModel('ns', 'rm', [cond('Ready', 'True', 'Ready'), cond('Planned', 'True', 'PlanComputed')], {
      state: 'active',
      policy,
      lastScales: new Map(),
      evaluation: { mainLatencyMs: 142, metricsMissing: false, components: [decision('rm-main', 'main', 142), decision('rm-shard-0', 'sparse', 40)] },
    });
    expect(await series(m, 'recshard_operator_recmodel_condition')).toEqual([
      { namespace: 'ns', model: 'rm', type: 'Ready', status: 'True', reason: 'Ready', value: 1 },
      { namespace: 'ns', model: 'rm', type: 'Planned', status: 'True', reason: 'PlanComputed', value: 1 },
    ]);
    expect(await series(m, 'recshard_operator_latency_target_seconds')).toEqual([{ namespace: 'ns', model: 'rm', percentile: '95', value: 0.1 }]);
    expect(await series(m, 'recshard_operator_latency_seconds')).toEqual([
      { namespace: 'ns', model: 'rm', component: 'rm-main', role: 'main', value: 0.142 },
      { namespace: 'ns', model: 'rm', component: 'rm-shard-0', role: 'sparse', value: 0.04 },
    ]);
  });

  it('replace the last status (a changed condition leaves no old series), keep desired replicas, and go with the model', async () => {
    const m = new OperatorMetrics();
    m.recordDesired('ns', 'rm', 'rm-main', 3);
    m.recordModel('ns', 'rm', [cond('Planned', 'True', 'PlanComputed')], undefined);
    m.recordModel('ns', 'rm', [cond('Planned', 'False', 'Infeasible')], undefined);
    m.recordModel('ns', 'other', [cond('Planned', 'True', 'PlanComputed')], undefined);
    expect(await series(m, 'recshard_operator_recmodel_condition')).toEqual([
      { namespace: 'ns', model: 'rm', type: 'Planned', status: 'False', reason: 'Infeasible', value: 1 },
      { namespace: 'ns', model: 'other', type: 'Planned', status: 'True', reason: 'PlanComputed', value: 1 },
    ]);
    expect(await series(m, 'recshard_operator_desired_replicas')).toEqual([{ namespace: 'ns', model: 'rm', component: 'rm-main', value: 3 }]);
    m.forgetModel('ns', 'rm');
    expect(await series(m, 'recshard_operator_desired_replicas')).toEqual([]);
    expect(await series(m, 'recshard_operator_recmodel_condition')).toEqual([
      { namespace: 'ns', model: 'other', type: 'Planned', status: 'True', reason: 'PlanComputed', value: 1 },
    ]);
  });
});
