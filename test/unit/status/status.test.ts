import type { V1Deployment, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ComponentDecision, Evaluation } from '../../../operator/autoscaling/evaluate.js';
import { defaultPolicy } from '../../../operator/autoscaling/policy.js';
import { externalViews } from '../../../operator/controller/hpa-views.js';
import { planModel } from '../../../operator/planner/plan.js';
import { DEFAULT_MAIN_URL_TEMPLATE, mainUrl } from '../../../operator/signals/serving.js';
import { mergeConditions } from '../../../operator/status/conditions.js';
import { computeStatus, sameStatus, SCHEDULER_RESTAMP_MS, type StatusInput } from '../../../operator/status/status.js';
import { specOf } from '../fixtures.js';

const t0 = new Date('2026-01-01T00:00:00Z');
const t1 = new Date('2026-01-01T00:05:00Z');

function deployment(
  name: string,
  role: 'main' | 'sparse',
  s: { replicas?: number; ready?: number; available?: number; updated?: number; total?: number; observed?: number; generation?: number },
): V1Deployment {
  return {
    metadata: {
      name,
      generation: s.generation ?? 1,
      labels: { 'app.kubernetes.io/component': role, ...(role === 'sparse' ? { 'recshard.io/shard': name.slice(-1) } : {}) },
    },
    spec: { replicas: s.replicas ?? 1, selector: {}, template: {} },
    status: {
      observedGeneration: s.observed ?? 1,
      replicas: s.total ?? s.replicas ?? 1,
      readyReplicas: s.ready ?? 1,
      availableReplicas: s.available ?? 1,
      updatedReplicas: s.updated ?? s.replicas ?? 1,
    },
  };
}

const plan = (() => {
  const p = planModel(specOf({ sharding: { strategy: 'singular' } }));
  if (!p.ok) throw p.error;
  return p.plan;
})();

function input(over: Partial<StatusInput>): StatusInput {
  return {
    name: 'm',
    generation: 2,
    previous: undefined,
    plan: { ok: true, plan },
    deployments: [deployment('m-main', 'main', {}), deployment('m-shard-0', 'sparse', {})],
    conflicts: [],
    applyErrors: [],
    now: t0,
    ...over,
  };
}

const cond = (s: ReturnType<typeof computeStatus>, type: string) => s.conditions!.find((c) => c.type === type)!;

describe('condition messages at scale', () => {
  it('name five components and count the rest: a thousand shards starting make a short message', () => {
    const shards = Array.from({ length: 1000 }, (_, i) =>
      deployment(`m-shard-${String(i).padStart(4, '0')}`, 'sparse', { available: 0, ready: 0, updated: 0 }),
    );
    const s = computeStatus(input({ deployments: [deployment('m-main', 'main', {}), ...shards] }));
    expect(cond(s, 'Available').message).toBe(
      'waiting for 1000 of 1001 components: m-shard-0000, m-shard-0001, m-shard-0002, m-shard-0003, m-shard-0004 and 995 more',
    );
    expect(cond(s, 'Progressing').message).toMatch(/^rolling out m-shard-0000, .* and 995 more$/);
    expect(cond(s, 'Ready').message).toBe(cond(s, 'Available').message);
    expect(s.components).toHaveLength(1001);
  });
});

describe('conditions', () => {
  it.each([
    [
      'all available and rolled out',
      {},
      {
        Ready: ['True', 'Ready'],
        Available: ['True', 'AllComponentsAvailable'],
        Progressing: ['False', 'RolloutComplete'],
        Degraded: ['False', 'AsExpected'],
        Planned: ['True', 'PlanComputed'],
      },
    ],
    [
      'a shard not yet available',
      { deployments: [deployment('m-main', 'main', {}), deployment('m-shard-0', 'sparse', { available: 0, ready: 0 })] },
      { Ready: ['False', 'NotAvailable'], Available: ['False', 'ComponentsUnavailable'], Progressing: ['True', 'RollingOut'] },
    ],
    [
      'a rollout not yet observed',
      { deployments: [deployment('m-main', 'main', { generation: 2, observed: 1 }), deployment('m-shard-0', 'sparse', {})] },
      { Ready: ['False', 'Progressing'], Progressing: ['True', 'RollingOut'], Available: ['True', 'AllComponentsAvailable'] },
    ],
    [
      'old pods still present',
      { deployments: [deployment('m-main', 'main', { total: 2, updated: 1 }), deployment('m-shard-0', 'sparse', {})] },
      { Ready: ['False', 'Progressing'] },
    ],
    [
      'an infeasible plan',
      { plan: { ok: false as const, reason: 'Infeasible' as const, message: 'too big' } },
      { Ready: ['False', 'NotPlanned'], Planned: ['False', 'Infeasible'] },
    ],
    ['a conflict', { conflicts: ['Service m-main'] }, { Ready: ['False', 'Degraded'], Degraded: ['True', 'ResourceConflict'] }],
    ['an apply error', { applyErrors: ['apply Deployment m-main: 422: bad'] }, { Ready: ['False', 'Degraded'], Degraded: ['True', 'ApplyFailed'] }],
  ])('%s', (_name, over, expected) => {
    const s = computeStatus(input(over));
    for (const [type, [status, reason]] of Object.entries(expected)) expect(cond(s, type)).toMatchObject({ status, reason, observedGeneration: 2 });
  });

  it('keep lastTransitionTime while the status does not change', () => {
    const first = computeStatus(input({ now: t0 }));
    const again = computeStatus(input({ now: t1, previous: first }));
    expect(cond(again, 'Ready').lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    expect(sameStatus(first, again)).toBe(true);
    const broken = computeStatus(input({ now: t1, previous: first, conflicts: ['x'] }));
    expect(cond(broken, 'Ready').lastTransitionTime).toBe('2026-01-01T00:05:00Z');
    expect(cond(broken, 'Planned').lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    expect(sameStatus(first, broken)).toBe(false);
  });

  it('mergeConditions stamps the generation and formats times without milliseconds', () => {
    const [c] = mergeConditions(undefined, [{ type: 'Ready', status: 'True', reason: 'Ready', message: '' }], 7, new Date('2026-01-01T00:00:00.123Z'));
    expect(c).toEqual({ type: 'Ready', status: 'True', reason: 'Ready', message: '', observedGeneration: 7, lastTransitionTime: '2026-01-01T00:00:00Z' });
  });
});

describe('status fields', () => {
  it('summarise the plan, components, ready count and the scale subresource', () => {
    const s = computeStatus(
      input({
        deployments: [deployment('m-main', 'main', { replicas: 3, total: 3, ready: 2, available: 2, updated: 3 }), deployment('m-shard-0', 'sparse', {})],
      }),
    );
    expect(s.plan).toMatchObject({ strategy: 'singular', shards: 1, tables: 1, hash: plan.hash, imbalance: '1.000' });
    expect(s.ready).toBe('1/2');
    expect(s.replicas).toBe(3);
    expect(s.selector).toBe('app.kubernetes.io/name=recshard-shard-server,app.kubernetes.io/instance=m,app.kubernetes.io/component=main');
    expect(s.components).toEqual([
      { name: 'm-main', role: 'main', replicas: 3, readyReplicas: 2, availableReplicas: 2 },
      { name: 'm-shard-0', role: 'sparse', shard: 0, replicas: 1, readyReplicas: 1, availableReplicas: 1 },
    ]);
  });

  it('keep the last good plan summary while the new spec cannot be planned', () => {
    const good = computeStatus(input({}));
    const bad = computeStatus(input({ previous: good, plan: { ok: false, reason: 'InvalidSpec', message: 'x' } }));
    expect(bad.plan).toEqual(good.plan);
  });
});

describe('status.scheduler', () => {
  const reading = { mode: 'auto' as const, batchSize: 24, windowLatencyMs: 41.2 };

  it('records a reading with the time it was read, and keeps the last one while the main cannot be read', () => {
    const s = computeStatus(input({ scheduler: reading }));
    expect(s.scheduler).toEqual({ mode: 'auto', batchSize: 24, windowLatencyMs: 41.2, observedTime: t0.toISOString() });
    expect(computeStatus(input({ previous: s, now: new Date(t0.getTime() + 60_000) })).scheduler).toEqual(s.scheduler);
  });

  it('does not rewrite status for an unchanged reading until it is five minutes old, but does for a new B', () => {
    const first = computeStatus(input({ scheduler: reading }));
    const later = (ms: number, r = reading) =>
      computeStatus(input({ previous: first, scheduler: { ...r, windowLatencyMs: 50 }, now: new Date(t0.getTime() + ms) }));
    expect(sameStatus(first, later(60_000))).toBe(true);
    expect(later(SCHEDULER_RESTAMP_MS + 1).scheduler!.observedTime).not.toBe(first.scheduler!.observedTime);
    expect(later(60_000, { ...reading, batchSize: 32 }).scheduler).toMatchObject({ batchSize: 32, windowLatencyMs: 50 });
  });
});

describe('main URL templates', () => {
  it('fill in the model, namespace, Service and port', () => {
    const t = { name: 'rmc', namespace: 'prod', service: 'rmc-main', port: 8080 };
    expect(mainUrl(DEFAULT_MAIN_URL_TEMPLATE, t)).toBe('http://rmc-main.prod.svc:8080');
    expect(mainUrl('http://127.0.0.1:9000/{namespace}/{name}', t)).toBe('http://127.0.0.1:9000/prod/rmc');
  });
});

describe('autoscaling status', () => {
  const policy = defaultPolicy(100, 10);
  const decision = (name: string, over: Partial<ComponentDecision> = {}): ComponentDecision => ({
    name,
    role: name.endsWith('main') ? 'main' : 'sparse',
    current: 1,
    desired: 1,
    recommended: 1,
    reason: 'WithinTolerance',
    message: 'fine',
    latencyMs: 42.345,
    rate: 12.345,
    ...over,
  });
  const evaluation: Evaluation = {
    mainLatencyMs: 142.34,
    critical: 'm-shard-0',
    metricsMissing: false,
    components: [
      decision('m-main'),
      decision('m-shard-0', {
        desired: 3,
        recommended: 4,
        reason: 'LatencyAboveTarget',
        message: '142 ms against 100 ms',
        limited: 'the scale-up rate limit allows 3 now, not 4',
      }),
    ],
  };

  it("shows the policy, the main's tail, the critical component, per-component latency and desired replicas", () => {
    const s = computeStatus(
      input({
        autoscaling: {
          state: 'active',
          policy,
          evaluation,
          evaluatedAt: '2026-01-01T00:00:00Z',
          lastScales: new Map([['m-shard-0', { time: '2026-01-01T00:00:00Z', reason: 'LatencyAboveTarget: 142 ms against 100 ms' }]]),
        },
      }),
    );
    expect(s.autoscaling).toEqual({
      policy: 'default',
      actuator: 'Operator',
      percentile: 95,
      target: '100ms',
      mainLatency: '142.3ms',
      criticalComponent: 'm-shard-0',
      lastEvaluationTime: '2026-01-01T00:00:00Z',
    });
    expect(s.components![1]).toMatchObject({
      name: 'm-shard-0',
      latency: '42.3ms',
      requestRate: 12.35,
      desiredReplicas: 3,
      lastScaleTime: '2026-01-01T00:00:00Z',
      lastScaleReason: 'LatencyAboveTarget: 142 ms against 100 ms',
    });
    expect(s.components![0]!.lastScaleTime).toBeUndefined();
    expect(cond(s, 'ScalingActive')).toMatchObject({ status: 'True', reason: 'ScalingOnLatency' });
    expect(cond(s, 'ScalingLimited')).toMatchObject({
      status: 'True',
      reason: 'RateLimited',
      message: 'm-shard-0: the scale-up rate limit allows 3 now, not 4',
    });
    expect(cond(s, 'MetricsUnavailable')).toMatchObject({ status: 'False', reason: 'MetricsAvailable' });
  });

  it("shows the autoscaler's latest evaluation and last scalings between evaluations, whatever the cached status says", () => {
    const lastScales = new Map([['m-shard-0', { time: '2026-01-01T00:00:00Z', reason: 'LatencyAboveTarget: x' }]]);
    const active = { state: 'active' as const, policy, evaluation, evaluatedAt: '2026-01-01T00:00:00Z', lastScales };
    const first = computeStatus(input({ autoscaling: active }));
    // a reconcile right after, reading a cached status from before the scaling (the watch lags the patch)
    const stale = computeStatus(
      input({
        autoscaling: { state: 'active', policy, evaluation: { ...evaluation, components: [] }, evaluatedAt: '2025-12-31T23:59:00Z', lastScales: new Map() },
      }),
    );
    const later = computeStatus(input({ previous: stale, now: t1, autoscaling: active }));
    expect(later.components![1]).toMatchObject({
      lastScaleTime: '2026-01-01T00:00:00Z',
      lastScaleReason: 'LatencyAboveTarget: x',
      desiredReplicas: 3,
      latency: '42.3ms',
    });
    expect(later.autoscaling).toEqual(first.autoscaling);
    expect(cond(later, 'ScalingLimited')).toMatchObject({
      status: cond(first, 'ScalingLimited').status,
      reason: cond(first, 'ScalingLimited').reason,
      message: cond(first, 'ScalingLimited').message,
    });
  });

  it('keeps what status said until the first evaluation after an operator restart', () => {
    const before = computeStatus(
      input({
        autoscaling: {
          state: 'active',
          policy,
          evaluation,
          evaluatedAt: '2026-01-01T00:00:00Z',
          lastScales: new Map([['m-shard-0', { time: '2026-01-01T00:00:00Z', reason: 'LatencyAboveTarget: x' }]]),
        },
      }),
    );
    const restarted = computeStatus(input({ previous: before, now: t1, autoscaling: { state: 'active', policy, lastScales: new Map() } }));
    expect(restarted.components![1]).toMatchObject({ lastScaleTime: '2026-01-01T00:00:00Z', lastScaleReason: 'LatencyAboveTarget: x', desiredReplicas: 3 });
    expect(restarted.autoscaling).toEqual(before.autoscaling);
    expect(cond(restarted, 'ScalingLimited')).toMatchObject({ reason: cond(before, 'ScalingLimited').reason });
  });

  it('says why when the metrics are missing, and when the policy is refused', () => {
    const missing = computeStatus(
      input({
        autoscaling: {
          state: 'active',
          policy,
          evaluation: { ...evaluation, metricsMissing: true, mainLatencyMs: undefined },
          lastScales: new Map(),
          sourceError: 'prometheus: connect ECONNREFUSED',
        },
      }),
    );
    expect(cond(missing, 'MetricsUnavailable')).toMatchObject({
      status: 'True',
      reason: 'SourceFailed',
      message: 'prometheus: connect ECONNREFUSED; holding replicas',
    });
    const refused = computeStatus(
      input({ autoscaling: { state: 'refused', policyName: 'gone', reason: 'PolicyNotFound', message: 'LatencyScalingPolicy gone not found' } }),
    );
    expect(cond(refused, 'ScalingActive')).toMatchObject({ status: 'False', reason: 'PolicyNotFound', message: 'LatencyScalingPolicy gone not found' });
    expect(refused.autoscaling).toEqual({ policy: 'gone' });
    expect(refused.conditions!.find((c) => c.type === 'Ready')!.status).toBe('True'); // serving is not autoscaling
  });

  it('adds no scaling conditions without autoscaling', () => {
    expect(computeStatus(input({})).conditions!.map((c) => c.type)).toEqual(['Ready', 'Planned', 'Available', 'Progressing', 'Degraded']);
  });
});

describe('autoscaling status under an HPA or KEDA actuator', () => {
  const policy = { ...defaultPolicy(100, 10), actuator: 'HPA' as const, scaleOn: 'all' as const };
  const hpa = (name: string, over: Partial<V2HorizontalPodAutoscaler['status']> = {}): V2HorizontalPodAutoscaler => ({
    metadata: { name },
    spec: { scaleTargetRef: { kind: 'Deployment', name: name.replace(/^keda-hpa-/, '') }, maxReplicas: 10 },
    status: { currentReplicas: 1, desiredReplicas: 1, ...over } as V2HorizontalPodAutoscaler['status'],
  });
  const active = (status: string, reason: string, message = '') => ({ type: 'ScalingActive', status, reason, message });
  const main = { name: 'm-main', role: 'main' as const };
  const shard0 = { name: 'm-shard-0', role: 'sparse' as const };

  it('mirrors the HPAs: latency, desired replicas, last scale, and their failing metric as MetricsUnavailable', () => {
    const views = externalViews(
      policy,
      [main, shard0],
      [
        hpa('m-main', {
          desiredReplicas: 3,
          lastScaleTime: new Date('2026-01-01T00:00:00Z'),
          currentMetrics: [{ type: 'External', external: { metric: { name: 'x' }, current: { value: '142300u' } } }],
          conditions: [
            active('True', 'ValidMetricFound'),
            { type: 'ScalingLimited', status: 'True', reason: 'TooManyReplicas', message: 'the desired replica count is more than the maximum replica count' },
          ],
        }),
        hpa('m-shard-0', {
          conditions: [active('False', 'FailedGetExternalMetric', 'the HPA was unable to compute the replica count: unable to get external metric')],
        }),
      ],
    );
    const s = computeStatus(input({ autoscaling: { state: 'external', policy, views } }));
    expect(s.autoscaling).toEqual({ policy: 'default', actuator: 'HPA', percentile: 95, target: '100ms', mainLatency: '142.3ms' });
    expect(s.components![0]).toMatchObject({
      name: 'm-main',
      latency: '142.3ms',
      desiredReplicas: 3,
      lastScaleTime: '2026-01-01T00:00:00.000Z',
      lastScaleReason: 'scaled by HorizontalPodAutoscaler m-main (HPA)',
    });
    expect(cond(s, 'ScalingActive')).toMatchObject({ status: 'True', reason: 'ScalingByHPA' });
    expect(cond(s, 'ScalingLimited')).toMatchObject({
      status: 'True',
      reason: 'AtBounds',
      message: 'm-main: the desired replica count is more than the maximum replica count',
    });
    expect(cond(s, 'MetricsUnavailable')).toMatchObject({
      status: 'True',
      reason: 'SourceFailed',
      message: expect.stringMatching(/^m-shard-0: FailedGetExternalMetric: the HPA was unable.*; the HPA holds replicas$/),
    });
  });

  it("waits for KEDA's HPAs, and says so", () => {
    const keda = { ...policy, actuator: 'KEDA' as const };
    const views = externalViews(keda, [main, shard0], [hpa('keda-hpa-m-main', { conditions: [active('True', 'ValidMetricFound')] })]);
    expect(views.map((v) => [v.hpa, v.found])).toEqual([
      ['keda-hpa-m-main', true],
      ['keda-hpa-m-shard-0', false],
    ]);
    const s = computeStatus(input({ autoscaling: { state: 'external', policy: keda, views } }));
    expect(cond(s, 'ScalingActive')).toMatchObject({
      status: 'False',
      reason: 'AutoscalerPending',
      message: expect.stringMatching(/keda-hpa-m-shard-0 \(made by KEDA; is KEDA running\?\)/),
    });
    expect(cond(s, 'MetricsUnavailable')).toMatchObject({ status: 'Unknown', reason: 'NoSamples' });
    const all = externalViews(keda, [main], [hpa('keda-hpa-m-main', { conditions: [active('True', 'ValidMetricFound')] })]);
    expect(cond(computeStatus(input({ autoscaling: { state: 'external', policy: keda, views: all } })), 'MetricsUnavailable')).toMatchObject({
      status: 'False',
      reason: 'MetricsAvailable',
    });
  });
});

describe('Progressing and Degraded tell the truth', () => {
  it("an infeasible or invalid model is Progressing=False with the planner's reason, never RolloutComplete", () => {
    for (const reason of ['Infeasible', 'InvalidSpec', 'PlanTooLarge'] as const) {
      const s = computeStatus(input({ plan: { ok: false, reason, message: 'the numbers' } }));
      expect(cond(s, 'Progressing')).toMatchObject({ status: 'False', reason, message: 'not rolling out: the numbers' });
      expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'NotPlanned' });
    }
  });

  it('a Deployment past its progress deadline: Progressing=False and Degraded=True, ProgressDeadlineExceeded, naming it', () => {
    const stuck = deployment('m-shard-0', 'sparse', { available: 0, ready: 0 });
    stuck.status!.conditions = [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet has timed out progressing.' }];
    const s = computeStatus(input({ deployments: [deployment('m-main', 'main', {}), stuck] }));
    expect(cond(s, 'Progressing')).toMatchObject({
      status: 'False',
      reason: 'ProgressDeadlineExceeded',
      message: 'm-shard-0 made no progress within its progress deadline',
    });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'ProgressDeadlineExceeded' });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'Degraded' });
  });
});
