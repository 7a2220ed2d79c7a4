import { describe, expect, it } from 'vitest';
import { resolvePolicySpec, type LatencyScalingPolicy } from '../../../operator/api/v1alpha1/index.js';
import { effectivePolicy, resolveScaling } from '../../../operator/autoscaling/policy.js';

const policy = (spec: Record<string, unknown>): LatencyScalingPolicy => ({
  apiVersion: 'recshard.io/v1alpha1',
  kind: 'LatencyScalingPolicy',
  metadata: { name: 'sre' },
  spec: spec as unknown as LatencyScalingPolicy['spec'],
});
const base = { target: { latency: '100ms' }, overrides: { latency: { min: '50ms', max: '200ms' }, maxReplicas: 30 } };

describe('LatencyScalingPolicy defaults and validation', () => {
  it('defaults every field as the API server would', () => {
    const r = resolvePolicySpec({ target: { latency: '100ms' } });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.spec).toMatchObject({
      target: { percentile: 95, latency: '100ms' },
      tolerance: 0.1,
      interval: '15s',
      window: '1m',
      warmup: '30s',
      main: { minReplicas: 1, maxReplicas: 10 },
      sparse: { minReplicas: 1, maxReplicas: 10 },
      scaleUp: { stabilizationWindow: '0s', maxPods: 4, maxPercent: 100, period: '15s' },
      scaleDown: { stabilizationWindow: '5m', maxPods: 1, maxPercent: 10, period: '1m' },
      missingMetrics: 'Hold',
      scaleOn: 'critical-path',
    });
  });

  it('names the field of every bad value', () => {
    const r = resolvePolicySpec({
      target: { latency: 'fast' },
      main: { minReplicas: 5, maxReplicas: 2 },
      missingMetrics: 'ScaleToZero',
      overrides: { maxReplicas: 3 },
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const fields = r.errors.map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['spec.target.latency', 'spec.missingMetrics']));
    const cel = resolvePolicySpec({ target: { latency: '1s' }, main: { minReplicas: 5, maxReplicas: 2 }, overrides: { maxReplicas: 3 } });
    expect(cel.ok ? [] : cel.errors).toEqual(
      expect.arrayContaining([
        { field: 'spec.main', message: 'minReplicas must not exceed maxReplicas' },
        { field: 'spec', message: "spec.overrides.maxReplicas must be at least the policy's own main and sparse maxReplicas" },
      ]),
    );
  });
});

describe('the policy in force for a RecModel', () => {
  it('is the policy itself without overrides, in milliseconds', () => {
    const r = effectivePolicy(policy({ target: { latency: '0.4s', percentile: 99 } }), { enabled: true });
    expect(r).toMatchObject({
      ok: true,
      policy: { name: 'sre', targetMs: 400, percentile: 99, intervalMs: 15_000, windowMs: 60_000, scaleDown: { stabilizationMs: 300_000, periodMs: 60_000 } },
    });
  });

  it('applies overrides the policy allows', () => {
    const r = effectivePolicy(policy(base), { enabled: true, overrides: { latency: '150ms', main: { maxReplicas: 30 }, sparse: { minReplicas: 2 } } });
    expect(r).toMatchObject({ ok: true, policy: { targetMs: 150, main: { min: 1, max: 30 }, sparse: { min: 2, max: 10 } } });
  });

  it('refuses overrides outside the limits, naming the field and the limit', () => {
    const r = effectivePolicy(policy(base), { enabled: true, overrides: { latency: '20ms', main: { maxReplicas: 50 }, scaleOn: 'all' } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toBe('OverrideNotAllowed');
    expect(r.message).toContain('spec.autoscaling.overrides.latency: 20ms is outside the range policy sre allows (50ms to 200ms)');
    expect(r.message).toContain('spec.autoscaling.overrides.main.maxReplicas: 50 exceeds the 30 policy sre allows');
    expect(r.message).toContain('spec.autoscaling.overrides.scaleOn: policy sre does not allow overriding scaleOn (critical-path)');
  });

  it('refuses every override a policy without overrides does not allow', () => {
    const r = effectivePolicy(policy({ target: { latency: '100ms' } }), { enabled: true, overrides: { latency: '100ms', sparse: { maxReplicas: 3 } } });
    expect(r).toMatchObject({ ok: false, reason: 'OverrideNotAllowed' });
    if (r.ok) return;
    expect(r.message).toMatch(/overrides.latency: policy sre does not allow overriding the latency target \(100ms\)/);
    expect(r.message).toMatch(/overrides.sparse: policy sre does not allow overriding replica bounds/);
  });

  it('reports an invalid policy as such', () => {
    expect(effectivePolicy(policy({ target: { latency: 'soon' } }), { enabled: true })).toMatchObject({
      ok: false,
      reason: 'PolicyInvalid',
      message: expect.stringContaining('LatencyScalingPolicy sre: spec.target.latency'),
    });
  });
});

describe('actuators', () => {
  const env = { kedaServed: true, prometheusUrl: 'http://prom:9090' };
  it("default to the operator's own law; HPA and KEDA require scaleOn all, since they cannot follow the critical path", () => {
    const r = resolvePolicySpec({ target: { latency: '100ms' } });
    expect(r.ok && r.spec.actuator).toBe('Operator');
    const bad = resolvePolicySpec({ target: { latency: '100ms' }, actuator: 'HPA' });
    expect(bad.ok ? [] : bad.errors.map((e) => e.message).join()).toMatch(/scaleOn must be all when spec.actuator is HPA or KEDA/);
    const overridable = resolvePolicySpec({ target: { latency: '100ms' }, actuator: 'KEDA', scaleOn: 'all', overrides: { scaleOn: true } });
    expect(overridable.ok ? [] : overridable.errors.map((e) => e.message).join()).toMatch(/overrides.scaleOn cannot be allowed/);
    expect(resolvePolicySpec({ target: { latency: '100ms' }, actuator: 'HPA', scaleOn: 'all' }).ok).toBe(true);
  });

  it('are refused with the reason when the cluster or the HPA API cannot carry them out', () => {
    const keda = policy({ target: { latency: '100ms' }, actuator: 'KEDA', scaleOn: 'all' });
    expect(resolveScaling('sre', keda, { enabled: true }, env)).toMatchObject({ ok: true, policy: { actuator: 'KEDA' } });
    expect(resolveScaling('sre', keda, { enabled: true }, { ...env, kedaServed: false })).toMatchObject({
      ok: false,
      reason: 'ActuatorUnavailable',
      message: expect.stringMatching(/does not serve keda.sh\/v1alpha1 ScaledObjects/),
    });
    expect(resolveScaling('sre', keda, { enabled: true }, { kedaServed: true })).toMatchObject({
      ok: false,
      reason: 'ActuatorUnavailable',
      message: expect.stringMatching(/--prometheus-url/),
    });
    const long = policy({ target: { latency: '100ms' }, actuator: 'HPA', scaleOn: 'all', scaleDown: { stabilizationWindow: '90m', period: '31m' } });
    const r = resolveScaling('sre', long, { enabled: true }, env);
    expect(r).toMatchObject({ ok: false, reason: 'PolicyInvalid' });
    expect(!r.ok && r.message).toMatch(/spec.scaleDown.stabilizationWindow: 5400s exceeds the 3600s a HorizontalPodAutoscaler allows/);
    expect(!r.ok && r.message).toMatch(/spec.scaleDown.period: 1860s exceeds the 1800s/);
    // the operator's own law has no such limits
    expect(resolveScaling('sre', policy({ target: { latency: '100ms' }, scaleDown: { stabilizationWindow: '90m' } }), { enabled: true }, env).ok).toBe(true);
    expect(resolveScaling('gone', undefined, { enabled: true }, env)).toMatchObject({ ok: false, reason: 'PolicyNotFound' });
  });
});
