// Decide, pure: from what was observed to the plan, the serving version's rollout (operator/rollout), the desired
// children in the order they are applied, and the children to delete.
import type { KubernetesObject } from '@kubernetes/client-node';
import { durationMs } from '../../../lib/duration.js';
import { parseQuantity } from '../../../lib/quantity.js';
import type { ResolvedRecModelSpec } from '../../api/v1alpha1/index.js';
import { resolveScaling, type ActuatorEnv, type ScalingResolution } from '../../autoscaling/policy.js';
import { AUTOSCALER_KINDS, buildAutoscalers, SCALED_OBJECT } from '../../builders/autoscalers.js';
import type { BuilderConfig } from '../../builders/config.js';
import { LABEL_COMPONENT } from '../../builders/labels.js';
import type { Owner } from '../../builders/meta.js';
import { buildNetworkPolicies } from '../../builders/protection.js';
import { decideRollout, type RolloutDecision } from '../../rollout/rollout.js';
import type { PlanOutcome } from '../../status/status.js';
import type { Observed } from './observe.js';
import { prepareNow, type Prepared } from './prepare.js';

export interface Decision {
  outcome: PlanOutcome;
  /** The defaulted spec, when valid. */
  spec?: ResolvedRecModelSpec;
  desired: KubernetesObject[];
  stale: KubernetesObject[];
  /** When spec.autoscaling is enabled: the policy in force, or why there is none. */
  scaling?: ScalingResolution;
  /** Under a plan: how the serving version rolls out (what serves now, the rollout's status and events). */
  rollout?: RolloutDecision;
}

// NetworkPolicies first, so no shard pod ever runs open; budgets and autoscalers once their Deployments exist
const kindOrder: Record<string, number> = {
  NetworkPolicy: 0,
  ConfigMap: 1,
  Service: 2,
  Deployment: 3,
  PodDisruptionBudget: 4,
  HorizontalPodAutoscaler: 4,
  [SCALED_OBJECT]: 4,
};
export const refKey = (o: KubernetesObject) => `${o.kind}/${o.metadata!.name}`;

/** From what was observed and the spec's verdict (prepare.ts; made inline when not given) to what to do. */
export function decide(
  observed: Observed,
  cfg: BuilderConfig,
  now: Date,
  actuators: ActuatorEnv = { kedaServed: false },
  prepared: Prepared = prepareNow(observed.rm, cfg),
): Decision {
  const { rm, owned } = observed;
  if (!prepared.ok) return { outcome: prepared.outcome, ...(prepared.spec ? { spec: prepared.spec } : {}), desired: [], stale: [] };
  const owner: Owner = { name: rm.metadata.name, namespace: rm.metadata.namespace!, uid: rm.metadata.uid! };
  const { spec, target } = prepared;
  const plan = prepared.outcome.plan;
  const rollout = decideRollout({
    target,
    planHash: plan.hash,
    owned,
    pods: observed.pods,
    ...(rm.status?.rollout ? { previous: rm.status.rollout } : {}),
    now,
    progressDeadlineMs: durationMs(spec.rollout.progressDeadline) ?? 600_000,
    drainMs: durationMs(spec.rollout.drainPeriod) ?? 30_000,
    ...(spec.rollout.maxSurgeMemory !== undefined ? { maxSurgeBytes: parseQuantity(spec.rollout.maxSurgeMemory) } : {}),
  });
  const scaling = spec.autoscaling.enabled ? resolveScaling(spec.autoscaling.policyRef!.name, observed.policy, spec.autoscaling, actuators) : undefined;
  const components = [
    { role: 'main' as const },
    ...(rollout.shardsApplied ? plan.shards.map((s) => ({ role: 'sparse' as const, shard: s.index, version: target.version })) : []),
  ];
  const autoscalers = scaling?.ok ? buildAutoscalers(owner, scaling.policy, components, actuators.prometheusUrl) : [];
  // the shards' policy stays while any shard set runs, the target's or one still draining
  const anyShards =
    target.shards.deployments.length > 0 || rollout.retain.some((o) => o.kind === 'Deployment' && o.metadata?.labels?.[LABEL_COMPONENT] === 'sparse');
  const desired = [...buildNetworkPolicies(owner, spec, anyShards, cfg), ...rollout.apply, ...autoscalers];
  desired.sort((a, b) => kindOrder[a.kind!]! - kindOrder[b.kind!]!);
  const wanted = new Set([...desired, ...rollout.retain].map(refKey));
  // While the policy is refused (missing, invalid), HPAs and ScaledObjects already made keep scaling: nothing is lost.
  const keepAutoscalers = scaling !== undefined && !scaling.ok;
  const stale = owned.filter((o) => !wanted.has(refKey(o)) && !(keepAutoscalers && AUTOSCALER_KINDS.has(o.kind!)));
  return { outcome: prepared.outcome, spec, desired, stale, rollout, ...(scaling ? { scaling } : {}) };
}
