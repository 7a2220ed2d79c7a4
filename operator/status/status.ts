// RecModel status as a pure function of what the reconcile decided and observed.
import type { V1Deployment } from '@kubernetes/client-node';
import { metaTime } from '../../lib/clock.js';
import { plural } from '../../lib/text.js';
import { ConditionType as T, Reason as R, type PlanFailureReason } from '../api/reasons.js';
import type { ComponentStatus, RecModelStatus } from '../api/v1alpha1/index.js';
import type { AutoscalingInput } from '../autoscaling/state.js';
import { LABEL_COMPONENT, LABEL_SHARD, selectorLabels, selectorString } from '../builders/labels.js';
import type { Plan } from '../planner/plan.js';
import type { SchedulerReading } from '../signals/serving.js';
import { autoscalingConditions, autoscalingStatus, componentAutoscaling } from './autoscaling.js';
import { mergeConditions, type ConditionInput } from './conditions.js';

export type PlanOutcome = { ok: true; plan: Plan } | { ok: false; reason: PlanFailureReason; message: string };

export interface StatusInput {
  name: string;
  generation: number;
  previous: RecModelStatus | undefined;
  plan: PlanOutcome;
  /** Live Deployments of the model's components (desired ones after apply, or existing ones when not planned). */
  deployments: V1Deployment[];
  /** Names of objects another owner holds, which the operator refused to touch. */
  conflicts: string[];
  /** Messages of failed writes in this reconcile. */
  applyErrors: string[];
  /** The main's scheduler as just read; absent when it was not read (the previous reading is kept). */
  scheduler?: SchedulerReading;
  /** Absent when spec.autoscaling is not enabled. */
  autoscaling?: AutoscalingInput;
  now: Date;
}

/** Readings older than this are re-stamped even when unchanged, so observedTime shows the data is fresh. */
export const SCHEDULER_RESTAMP_MS = 5 * 60_000;

export function componentStatus(d: V1Deployment): ComponentStatus {
  const labels = d.metadata?.labels ?? {};
  const role = labels[LABEL_COMPONENT] === 'sparse' ? 'sparse' : 'main';
  const shard = labels[LABEL_SHARD];
  return {
    name: d.metadata!.name!,
    role,
    ...(shard !== undefined ? { shard: Number(shard) } : {}),
    replicas: d.spec?.replicas ?? 1,
    readyReplicas: d.status?.readyReplicas ?? 0,
    availableReplicas: d.status?.availableReplicas ?? 0,
  };
}

export function isAvailable(d: V1Deployment): boolean {
  return (d.status?.availableReplicas ?? 0) >= (d.spec?.replicas ?? 1);
}

/** A rollout is in progress until the Deployment controller has seen the spec and every replica is new and ready. */
export function isRollingOut(d: V1Deployment): boolean {
  const want = d.spec?.replicas ?? 1;
  const s = d.status ?? {};
  return (
    (s.observedGeneration ?? 0) < (d.metadata?.generation ?? 0) ||
    (s.updatedReplicas ?? 0) < want ||
    (s.replicas ?? 0) > (s.updatedReplicas ?? 0) ||
    (s.availableReplicas ?? 0) < (s.updatedReplicas ?? 0)
  );
}

function planSummary(plan: Plan): NonNullable<RecModelStatus['plan']> {
  return {
    strategy: plan.strategy,
    hash: plan.hash,
    shards: plan.shards.length,
    tables: plan.tables.length,
    totalBytes: plan.totalBytes,
    capacityBytes: plan.capacityBytes,
    imbalance: plan.imbalance.toFixed(3),
    shardBytes: plan.shards.map((s) => s.bytes),
  };
}

export function computeStatus(input: StatusInput): RecModelStatus {
  const { plan, deployments } = input;
  const sorted = [...deployments].sort((a, b) => (a.metadata!.name! < b.metadata!.name! ? -1 : 1));
  const nowIso = metaTime(input.now);
  const components = sorted.map(componentStatus).map((c) =>
    componentAutoscaling(
      input.autoscaling,
      c,
      input.previous?.components?.find((p) => p.name === c.name),
    ),
  );
  const available = sorted.filter(isAvailable);
  const rolling = sorted.filter(isRollingOut);
  const unavailable = sorted.filter((d) => !isAvailable(d)).map((d) => d.metadata!.name!);

  const planned: ConditionInput = plan.ok
    ? {
        type: T.Planned,
        status: 'True',
        reason: R.PlanComputed,
        message:
          `${plan.plan.strategy}: ${plural(plan.plan.shards.length, 'shard')}, ${plural(plan.plan.tables.length, 'table')}, ` +
          `imbalance ${plan.plan.imbalance.toFixed(3)}, plan ${plan.plan.hash}`,
      }
    : { type: T.Planned, status: 'False', reason: plan.reason, message: plan.message };
  const availableC: ConditionInput =
    sorted.length > 0 && unavailable.length === 0
      ? { type: T.Available, status: 'True', reason: R.AllComponentsAvailable, message: `${sorted.length} of ${sorted.length} components available` }
      : {
          type: T.Available,
          status: 'False',
          reason: R.ComponentsUnavailable,
          message: sorted.length ? `waiting for ${unavailable.join(', ')}` : 'no components yet',
        };
  const progressing: ConditionInput = rolling.length
    ? { type: T.Progressing, status: 'True', reason: R.RollingOut, message: `rolling out ${rolling.map((d) => d.metadata!.name).join(', ')}` }
    : { type: T.Progressing, status: 'False', reason: R.RolloutComplete, message: 'every component runs the current plan' };
  const degradedMsgs = [...input.conflicts.map((n) => `${n} exists and is not controlled by this RecModel`), ...input.applyErrors];
  const degraded: ConditionInput = degradedMsgs.length
    ? { type: T.Degraded, status: 'True', reason: input.conflicts.length ? R.ResourceConflict : R.ApplyFailed, message: degradedMsgs.join('; ') }
    : { type: T.Degraded, status: 'False', reason: R.AsExpected, message: 'no problems found' };

  const ready: ConditionInput =
    planned.status !== 'True'
      ? { type: T.Ready, status: 'False', reason: R.NotPlanned, message: planned.message }
      : degraded.status === 'True'
        ? { type: T.Ready, status: 'False', reason: R.Degraded, message: degraded.message }
        : availableC.status !== 'True'
          ? { type: T.Ready, status: 'False', reason: R.NotAvailable, message: availableC.message }
          : progressing.status === 'True'
            ? { type: T.Ready, status: 'False', reason: R.Progressing, message: progressing.message }
            : { type: T.Ready, status: 'True', reason: R.Ready, message: 'all components available on the current plan' };

  const main = sorted.find((d) => d.metadata?.labels?.[LABEL_COMPONENT] === 'main');
  const summary = plan.ok ? planSummary(plan.plan) : input.previous?.plan;
  const scaling = autoscalingStatus(input.autoscaling, input.previous?.autoscaling, nowIso);
  const conditions = [ready, planned, availableC, progressing, degraded, ...autoscalingConditions(input.autoscaling, input.previous?.conditions)];
  return {
    observedGeneration: input.generation,
    conditions: mergeConditions(input.previous?.conditions, conditions, input.generation, input.now),
    ...(summary ? { plan: summary } : {}),
    replicas: main?.status?.replicas ?? 0,
    selector: selectorString(selectorLabels(input.name, 'main')),
    ready: `${available.length}/${sorted.length}`,
    components,
    ...schedulerStatus(input),
    ...(scaling ? { autoscaling: scaling } : {}),
  };
}

/** A new reading replaces the old one; an unchanged one keeps its observedTime for a while (no write churn). */
function schedulerStatus(input: StatusInput): Pick<RecModelStatus, 'scheduler'> {
  const prev = input.previous?.scheduler;
  const r = input.scheduler;
  if (!r) return prev ? { scheduler: prev } : {};
  const next = { mode: r.mode, batchSize: r.batchSize, ...(r.acceleratorThreshold !== undefined ? { acceleratorThreshold: r.acceleratorThreshold } : {}) };
  const { observedTime, windowLatencyMs: _w, ...prevValues } = prev ?? {};
  const fresh = observedTime !== undefined && input.now.getTime() - Date.parse(observedTime) < SCHEDULER_RESTAMP_MS;
  if (prev && fresh && canonical(prevValues) === canonical(next)) return { scheduler: prev };
  return { scheduler: { ...next, ...(r.windowLatencyMs !== undefined ? { windowLatencyMs: r.windowLatencyMs } : {}), observedTime: input.now.toISOString() } };
}

/** Status equality ignoring nothing but key order, to skip writes that would change nothing. */
export function sameStatus(a: RecModelStatus | undefined, b: RecModelStatus): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val) =>
    val && typeof val === 'object' && !Array.isArray(val) ? Object.fromEntries(Object.entries(val).sort(([x], [y]) => (x < y ? -1 : 1))) : val,
  );
}
