// The policy in force for one RecModel: its LatencyScalingPolicy, defaulted and validated, with the model's
// overrides applied where the policy allows them. Pure; every refusal names the field and the limit.
import type { Role } from '../../contracts/shard-server-args.js';
import { durationMs } from '../../lib/duration.js';
import { Reason } from '../api/reasons.js';
import {
  API_VERSION,
  formatFieldErrors,
  POLICY_KIND,
  resolvePolicySpec,
  type FieldError,
  type LatencyScalingPolicy,
  type ResolvedLatencyScalingPolicySpec,
  type ResolvedRecModelSpec,
} from '../api/v1alpha1/index.js';

export interface Bounds {
  min: number;
  max: number;
}

export interface RateLimit {
  stabilizationMs: number;
  maxPods: number;
  maxPercent: number;
  periodMs: number;
}

export type ScaleOn = 'critical-path' | 'all';
/** Who changes the replicas: recshard's control law, or HPA / KEDA objects the operator emits from the policy. */
export type Actuator = 'Operator' | 'HPA' | 'KEDA';

export interface EffectivePolicy {
  name: string;
  percentile: number;
  targetMs: number;
  tolerance: number;
  intervalMs: number;
  windowMs: number;
  warmupMs: number;
  main: Bounds;
  sparse: Bounds;
  scaleUp: RateLimit;
  scaleDown: RateLimit;
  missingMetrics: 'Hold' | 'ScaleUp';
  scaleOn: ScaleOn;
  actuator: Actuator;
}

export type PolicyResult =
  { ok: true; policy: EffectivePolicy } | { ok: false; reason: typeof Reason.PolicyInvalid | typeof Reason.OverrideNotAllowed; message: string };
/** A model's scaling as the reconcile resolves it: the policy in force, or why there is none. */
export type ScalingResolution = PolicyResult | { ok: false; reason: typeof Reason.PolicyNotFound | typeof Reason.ActuatorUnavailable; message: string };

/** Whole seconds, rounded up (the HPA API counts in seconds). */
export const seconds = (ms: number) => Math.ceil(ms / 1000);
/** Limits the autoscaling/v2 API puts on behavior (seconds). */
const HPA_MAX_STABILIZATION_S = 3600;
const HPA_MAX_PERIOD_S = 1800;

const ms = (d: string) => durationMs(d)!; // the schema's patterns admit only durations

/** The policy's own settings, in milliseconds and bounds. */
function fromSpec(name: string, s: ResolvedLatencyScalingPolicySpec): EffectivePolicy {
  const rate = (l: typeof s.scaleUp): RateLimit => ({
    stabilizationMs: ms(l.stabilizationWindow),
    maxPods: l.maxPods,
    maxPercent: l.maxPercent,
    periodMs: ms(l.period),
  });
  return {
    name,
    percentile: s.target.percentile,
    targetMs: ms(s.target.latency),
    tolerance: s.tolerance,
    intervalMs: ms(s.interval),
    windowMs: ms(s.window),
    warmupMs: ms(s.warmup),
    main: { min: s.main.minReplicas, max: s.main.maxReplicas },
    sparse: { min: s.sparse.minReplicas, max: s.sparse.maxReplicas },
    scaleUp: rate(s.scaleUp),
    scaleDown: rate(s.scaleDown),
    missingMetrics: s.missingMetrics,
    scaleOn: s.scaleOn,
    actuator: s.actuator,
  };
}

type Overrides = NonNullable<ResolvedRecModelSpec['autoscaling']['overrides']>;
const field = (f: string) => `spec.autoscaling.overrides.${f}`;

/** A model's replica bounds for one role, where the policy's ceiling allows them; the refusals go to `errors`. */
function overrideBounds(policy: EffectivePolicy, role: Role, o: Overrides, ceiling: number | undefined, errors: FieldError[]): void {
  const b = o[role];
  if (!b || (b.minReplicas === undefined && b.maxReplicas === undefined)) return;
  if (ceiling === undefined) {
    errors.push({ field: field(role), message: `policy ${policy.name} does not allow overriding replica bounds` });
    return;
  }
  const bounds = { min: b.minReplicas ?? policy[role].min, max: b.maxReplicas ?? policy[role].max };
  if (bounds.max > ceiling) errors.push({ field: field(`${role}.maxReplicas`), message: `${bounds.max} exceeds the ${ceiling} policy ${policy.name} allows` });
  else if (bounds.min > ceiling)
    errors.push({ field: field(`${role}.minReplicas`), message: `${bounds.min} exceeds the ${ceiling} policy ${policy.name} allows` });
  else if (bounds.min > bounds.max) errors.push({ field: field(`${role}.minReplicas`), message: `${bounds.min} exceeds maxReplicas ${bounds.max}` });
  else policy[role] = bounds;
}

/** Applies the model's overrides the policy allows to `policy`; returns the ones it does not. */
function applyOverrides(policy: EffectivePolicy, o: Overrides, s: ResolvedLatencyScalingPolicySpec): FieldError[] {
  const errors: FieldError[] = [];
  const allowed = s.overrides;
  if (o.latency !== undefined) {
    const range = allowed?.latency;
    const want = ms(o.latency);
    if (!range) errors.push({ field: field('latency'), message: `policy ${policy.name} does not allow overriding the latency target (${s.target.latency})` });
    else if (want < ms(range.min) || want > ms(range.max))
      errors.push({ field: field('latency'), message: `${o.latency} is outside the range policy ${policy.name} allows (${range.min} to ${range.max})` });
    else policy.targetMs = want;
  }
  for (const role of ['main', 'sparse'] as const) overrideBounds(policy, role, o, allowed?.maxReplicas, errors);
  if (o.scaleOn !== undefined && o.scaleOn !== policy.scaleOn) {
    if (!allowed?.scaleOn) errors.push({ field: field('scaleOn'), message: `policy ${policy.name} does not allow overriding scaleOn (${policy.scaleOn})` });
    else policy.scaleOn = o.scaleOn;
  }
  return errors;
}

/** The policy `p` as `autoscaling` (a resolved RecModel spec's) changes it. */
export function effectivePolicy(p: LatencyScalingPolicy, autoscaling: ResolvedRecModelSpec['autoscaling']): PolicyResult {
  const r = resolvePolicySpec(p.spec);
  if (!r.ok) return { ok: false, reason: Reason.PolicyInvalid, message: `LatencyScalingPolicy ${p.metadata.name}: ${formatFieldErrors(r.errors)}` };
  const policy = fromSpec(p.metadata.name, r.spec);
  if (!autoscaling.overrides) return { ok: true, policy };
  const errors = applyOverrides(policy, autoscaling.overrides, r.spec);
  return errors.length ? { ok: false, reason: Reason.OverrideNotAllowed, message: formatFieldErrors(errors) } : { ok: true, policy };
}

/** What an HPA or KEDA actuator cannot express of this policy; empty when it can (or the actuator is the operator). */
export function externalActuatorProblems(p: EffectivePolicy): FieldError[] {
  if (p.actuator === 'Operator') return [];
  const out: FieldError[] = [];
  for (const dir of ['scaleUp', 'scaleDown'] as const) {
    const r = p[dir];
    if (seconds(r.stabilizationMs) > HPA_MAX_STABILIZATION_S)
      out.push({
        field: `spec.${dir}.stabilizationWindow`,
        message: `${seconds(r.stabilizationMs)}s exceeds the ${HPA_MAX_STABILIZATION_S}s a HorizontalPodAutoscaler allows`,
      });
    if (seconds(r.periodMs) > HPA_MAX_PERIOD_S)
      out.push({ field: `spec.${dir}.period`, message: `${seconds(r.periodMs)}s exceeds the ${HPA_MAX_PERIOD_S}s a HorizontalPodAutoscaler allows` });
  }
  return out;
}

/** What the cluster offers the actuators: whether KEDA's ScaledObject API is served, and the Prometheus its triggers query. */
export interface ActuatorEnv {
  kedaServed: boolean;
  prometheusUrl?: string;
}

/** The scaling of a model whose spec.autoscaling is enabled: its policy (absent: not found) resolved and checked against what the actuator can do here. */
export function resolveScaling(
  policyName: string,
  policy: LatencyScalingPolicy | undefined,
  autoscaling: ResolvedRecModelSpec['autoscaling'],
  env: ActuatorEnv,
): ScalingResolution {
  if (!policy) return { ok: false, reason: Reason.PolicyNotFound, message: `LatencyScalingPolicy ${policyName} not found; replicas are left as they are` };
  const r = effectivePolicy(policy, autoscaling);
  if (!r.ok) return r;
  const problems = externalActuatorProblems(r.policy);
  if (problems.length)
    return {
      ok: false,
      reason: Reason.PolicyInvalid,
      message: `LatencyScalingPolicy ${policyName} (actuator ${r.policy.actuator}): ${formatFieldErrors(problems)}`,
    };
  if (r.policy.actuator === 'KEDA' && !env.kedaServed)
    return {
      ok: false,
      reason: Reason.ActuatorUnavailable,
      message:
        `policy ${policyName} uses KEDA, but this cluster does not serve keda.sh/v1alpha1 ScaledObjects (install KEDA, ` +
        `then restart the operator); replicas are left as they are`,
    };
  if (r.policy.actuator === 'KEDA' && !env.prometheusUrl)
    return {
      ok: false,
      reason: Reason.ActuatorUnavailable,
      message:
        `policy ${policyName} uses KEDA, whose Prometheus trigger needs the operator's --prometheus-url (chart value autoscaling.prometheusUrl); ` +
        `replicas are left as they are`,
    };
  return r;
}

/** A policy with the CRD's defaults, this target and these upper bounds (for the simulator and tests). */
export function defaultPolicy(targetMs: number, maxReplicas: number): EffectivePolicy {
  const p: LatencyScalingPolicy = {
    apiVersion: API_VERSION,
    kind: POLICY_KIND,
    metadata: { name: 'default' },
    spec: { target: { latency: `${targetMs}ms` }, main: { maxReplicas }, sparse: { maxReplicas } },
  };
  const r = effectivePolicy(p, { enabled: true });
  if (!r.ok) throw new Error(r.message);
  return r.policy;
}
