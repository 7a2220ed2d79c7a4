// The autoscaling part of RecModel status, pure: the policy in force, the main's latency and the critical
// component, per-component latency and desired replicas, when and why each last scaled, and the conditions
// ScalingActive, ScalingLimited and MetricsUnavailable.
import { formatMs } from '../../lib/duration.js';
import { ConditionType, Reason } from '../api/reasons.js';
import type { ComponentStatus, RecModelStatus } from '../api/v1alpha1/index.js';
import type { Evaluation } from '../autoscaling/evaluate.js';
import type { EffectivePolicy } from '../autoscaling/policy.js';
import type { AutoscalingInput, ExternalView } from '../autoscaling/state.js';
import type { ConditionInput } from './conditions.js';

const NO_SAMPLES = "no latency samples from the main's warm pods";
const MISSING_SCALE_UP = 'adding pods at the scale-up rate, as the policy says';

/** Fields merged into each component's status: the HPA's view, or the autoscaler's latest evaluation and last scaling. */
export function componentAutoscaling(input: AutoscalingInput | undefined, c: ComponentStatus, previous: ComponentStatus | undefined): ComponentStatus {
  if (input?.state === 'external') {
    const v = input.views.find((x) => x.deployment === c.name);
    if (!v?.found) return c;
    return {
      ...c,
      ...(v.latencyMs !== undefined ? { latency: formatMs(v.latencyMs) } : {}),
      ...(v.desired !== undefined ? { desiredReplicas: v.desired } : {}),
      ...(v.lastScaleTime ? { lastScaleTime: v.lastScaleTime, lastScaleReason: `scaled by HorizontalPodAutoscaler ${v.hpa} (${input.policy.actuator})` } : {}),
    };
  }
  if (!input || input.state !== 'active') return c;
  // what the autoscaler remembers wins; the previous status only fills in after an operator restart
  const keep = (fields: readonly (keyof ComponentStatus)[]) =>
    Object.fromEntries(fields.flatMap((f) => (previous?.[f] !== undefined ? [[f, previous[f]]] : [])));
  const last = input.lastScales.get(c.name);
  const scale = last ? { lastScaleTime: last.time, lastScaleReason: last.reason } : keep(['lastScaleTime', 'lastScaleReason']);
  const d = input.evaluation?.components.find((x) => x.name === c.name);
  if (!d) return { ...c, ...keep(['latency', 'requestRate', 'desiredReplicas']), ...scale };
  return {
    ...c,
    ...(d.latencyMs !== undefined ? { latency: formatMs(d.latencyMs) } : {}),
    requestRate: Math.round(d.rate * 100) / 100,
    desiredReplicas: d.desired,
    ...scale,
  };
}

export function autoscalingStatus(
  input: AutoscalingInput | undefined,
  previous: RecModelStatus['autoscaling'],
  nowIso: string,
): RecModelStatus['autoscaling'] | undefined {
  if (!input) return undefined;
  if (input.state === 'refused') return { policy: input.policyName };
  const p = input.policy;
  const base = { policy: p.name, actuator: p.actuator, percentile: p.percentile, target: formatMs(p.targetMs) };
  if (input.state === 'external') {
    const main = input.views.find((v) => v.role === 'main')?.latencyMs;
    return { ...base, ...(main !== undefined ? { mainLatency: formatMs(main) } : {}) };
  }
  const e = input.evaluation;
  if (!e) return { ...previous, ...base };
  return {
    ...base,
    ...(e.mainLatencyMs !== undefined ? { mainLatency: formatMs(e.mainLatencyMs) } : {}),
    ...(e.critical ? { criticalComponent: e.critical } : {}),
    lastEvaluationTime: input.evaluatedAt ?? nowIso,
  };
}

const T = ConditionType;
const R = Reason;

/** Before the first evaluation: the previous conditions while they are all there (an operator restart), else pending. */
function pendingConditions(p: EffectivePolicy, previous: RecModelStatus['conditions']): ConditionInput[] {
  const kept = [T.ScalingActive, T.ScalingLimited, T.MetricsUnavailable].map((type) => previous?.find((c) => c.type === type));
  if (kept.every(Boolean))
    return kept.map((c) => ({
      type: c!.type as ConditionInput['type'],
      status: c!.status as ConditionInput['status'],
      reason: c!.reason as ConditionInput['reason'],
      message: c!.message,
    }));
  return [
    {
      type: T.ScalingActive,
      status: 'True',
      reason: R.ScalingOnLatency,
      message: `scaling on p${p.percentile} latency under policy ${p.name}; first evaluation pending`,
    },
    { type: T.ScalingLimited, status: 'False', reason: R.WithinLimits, message: 'no evaluation yet' },
    { type: T.MetricsUnavailable, status: 'Unknown', reason: R.NoSamples, message: 'no evaluation yet' },
  ];
}

/** The conditions of the operator's latest evaluation. */
function evaluatedConditions(p: EffectivePolicy, e: Evaluation, sourceError: string | undefined): ConditionInput[] {
  const limited = e.components.filter((c) => c.limited);
  const atBounds = limited.some((c) => /bounds/.test(c.limited!));
  const holding = p.missingMetrics === 'ScaleUp' ? MISSING_SCALE_UP : 'holding replicas';
  return [
    {
      type: T.ScalingActive,
      status: 'True',
      reason: R.ScalingOnLatency,
      message: `holding the main's p${p.percentile} under ${formatMs(p.targetMs)} (policy ${p.name}, ${p.scaleOn})`,
    },
    limited.length
      ? {
          type: T.ScalingLimited,
          status: 'True',
          reason: atBounds ? R.AtBounds : R.RateLimited,
          message: limited.map((c) => `${c.name}: ${c.limited}`).join('; '),
        }
      : { type: T.ScalingLimited, status: 'False', reason: R.WithinLimits, message: 'every recommendation is within the bounds and rate limits' },
    e.metricsMissing
      ? { type: T.MetricsUnavailable, status: 'True', reason: sourceError ? R.SourceFailed : R.NoSamples, message: `${sourceError ?? NO_SAMPLES}; ${holding}` }
      : { type: T.MetricsUnavailable, status: 'False', reason: R.MetricsAvailable, message: `main p${p.percentile} ${formatMs(e.mainLatencyMs!)}` },
  ];
}

/** The three scaling conditions; the previous ones are kept while an evaluation is not due. */
export function autoscalingConditions(input: AutoscalingInput | undefined, previous: RecModelStatus['conditions']): ConditionInput[] {
  if (!input) return [];
  if (input.state === 'refused') {
    return [
      { type: T.ScalingActive, status: 'False', reason: input.reason, message: input.message },
      { type: T.ScalingLimited, status: 'False', reason: R.WithinLimits, message: 'not scaling' },
      { type: T.MetricsUnavailable, status: 'Unknown', reason: input.reason, message: 'not reading metrics' },
    ];
  }
  if (input.state === 'external') return externalConditions(input.policy, input.views);
  return input.evaluation ? evaluatedConditions(input.policy, input.evaluation, input.sourceError) : pendingConditions(input.policy, previous);
}

const hpaLimitReason: Record<string, string> = {
  TooFewReplicas: Reason.AtBounds,
  TooManyReplicas: Reason.AtBounds,
  ScaleUpLimit: Reason.RateLimited,
  ScaleDownLimit: Reason.RateLimited,
};

/** The three conditions from the HPAs' own: AbleToScale/ScalingActive/ScalingLimited, as the HPA controller sets them. */
function externalConditions(p: EffectivePolicy, views: ExternalView[]): ConditionInput[] {
  const cond = (v: ExternalView, type: string) => v.conditions.find((c) => c.type === type);
  const missing = views.filter((v) => !v.found);
  const keda = p.actuator === 'KEDA';
  const by = keda ? 'KEDA' : 'the operator';
  const target = formatMs(p.targetMs);
  const active: ConditionInput = missing.length
    ? {
        type: T.ScalingActive,
        status: 'False',
        reason: R.AutoscalerPending,
        message: `waiting for HorizontalPodAutoscaler ${missing.map((v) => v.hpa).join(', ')} (made by ${by}${keda ? '; is KEDA running?' : ''})`,
      }
    : {
        type: T.ScalingActive,
        status: 'True',
        reason: R.ScalingByHPA,
        message: `${p.actuator}: HorizontalPodAutoscalers scale each component on its p${p.percentile} latency toward ${target} (policy ${p.name})`,
      };
  const limited = views.filter((v) => cond(v, 'ScalingLimited')?.status === 'True');
  const limitedC: ConditionInput = limited.length
    ? {
        type: T.ScalingLimited,
        status: 'True',
        reason: limited.some((v) => hpaLimitReason[cond(v, 'ScalingLimited')!.reason ?? ''] === R.AtBounds) ? R.AtBounds : R.RateLimited,
        message: limited.map((v) => `${v.deployment}: ${cond(v, 'ScalingLimited')!.message ?? cond(v, 'ScalingLimited')!.reason}`).join('; '),
      }
    : { type: T.ScalingLimited, status: 'False', reason: R.WithinLimits, message: 'no HorizontalPodAutoscaler is limited' };
  const failing = views.filter((v) => v.found && cond(v, 'ScalingActive')?.status === 'False');
  const unread = views.filter((v) => !v.found || !cond(v, 'ScalingActive'));
  const metrics: ConditionInput = failing.length
    ? {
        type: T.MetricsUnavailable,
        status: 'True',
        reason: R.SourceFailed,
        message:
          `${failing.map((v) => `${v.deployment}: ${cond(v, 'ScalingActive')!.reason}: ${cond(v, 'ScalingActive')!.message ?? ''}`.trim()).join('; ')}; ` +
          `the HPA holds replicas`,
      }
    : unread.length
      ? { type: T.MetricsUnavailable, status: 'Unknown', reason: R.NoSamples, message: `no metric reading yet from ${unread.map((v) => v.hpa).join(', ')}` }
      : { type: T.MetricsUnavailable, status: 'False', reason: R.MetricsAvailable, message: 'every HorizontalPodAutoscaler reads its latency metric' };
  return [active, limitedC, metrics];
}
