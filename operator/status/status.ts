// RecModel status as a pure function of what the reconcile decided and observed.
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { metaTime } from '../../lib/clock.js';
import { plural, someOf } from '../../lib/text.js';
import { ConditionType as T, Reason as R, type PlanFailureReason } from '../api/reasons.js';
import type { ComponentStatus, RecModelStatus } from '../api/v1alpha1/index.js';
import type { AutoscalingInput } from '../autoscaling/state.js';
import { LABEL_COMPONENT, LABEL_SHARD, selectorLabels, selectorString } from '../builders/labels.js';
import type { Plan } from '../planner/plan.js';
import type { SchedulerReading } from '../signals/serving.js';
import { autoscalingConditions, autoscalingStatus, componentAutoscaling } from './autoscaling.js';
import { mergeConditions, type ConditionInput } from './conditions.js';
import { isAvailable, isRollingOut, progressDeadlineExceeded } from './deployments.js';
import { PROBLEM_SEVERITY, podProblems, type PodProblem } from './pods.js';

export type PlanOutcome = { ok: true; plan: Plan } | { ok: false; reason: PlanFailureReason; message: string };

export interface StatusInput {
  name: string;
  generation: number;
  previous: RecModelStatus | undefined;
  plan: PlanOutcome;
  /** Live Deployments of the model's components (desired ones after apply, or existing ones when not planned). */
  deployments: V1Deployment[];
  /** The model's pods, as the kubelet and the scheduler report them (OOM kills, crash loops, pulls, scheduling). */
  pods?: V1Pod[];
  /** Names of objects another owner holds, which the operator refused to touch. */
  conflicts: string[];
  /** Messages of failed writes in this reconcile. */
  applyErrors: string[];
  /** The main's scheduler as just read; absent when it was not read (the previous reading is kept). */
  scheduler?: SchedulerReading;
  /** Absent when spec.autoscaling is not enabled. */
  autoscaling?: AutoscalingInput;
  /** Under a plan: the serving version's rollout (its status, its Progressing, the Deployments that serve now). */
  rollout?: { status: NonNullable<RecModelStatus['rollout']>; progressing?: ConditionInput; serving: V1Deployment[] };
  now: Date;
}

/** Problems a condition's message spells out; the rest are counted (a thousand shards make no 200 KB message). */
const PROBLEMS_SHOWN = 3;

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

function planSummary(plan: Plan): NonNullable<RecModelStatus['plan']> {
  return {
    strategy: plan.strategy,
    hash: plan.hash,
    shards: plan.shards.length,
    tables: plan.tables.length,
    ...splitCount(plan),
    totalBytes: plan.totalBytes,
    capacityBytes: plan.capacityBytes,
    imbalance: plan.imbalance.toFixed(3),
    shardBytes: plan.shards.map((s) => s.bytes),
  };
}

/** How many tables the plan splits by rows (absent when none, as status had it before splits). */
function splitCount(plan: Plan): { splitTables?: number } {
  const split = new Set(plan.shards.flatMap((s) => (s.pieces ?? []).map((p) => p.table)));
  return split.size ? { splitTables: split.size } : {};
}

function plannedCondition(plan: PlanOutcome): ConditionInput {
  if (!plan.ok) return { type: T.Planned, status: 'False', reason: plan.reason, message: plan.message };
  const p = plan.plan;
  return {
    type: T.Planned,
    status: 'True',
    reason: R.PlanComputed,
    message:
      `${p.strategy}: ${plural(p.shards.length, 'shard')}, ${plural(p.tables.length, 'table')}, imbalance ${p.imbalance.toFixed(3)}, plan ${p.hash}` +
      p.notes.map((n) => `; ${n}`).join(''),
  };
}

/**
 * Available (judged on the Deployments that serve now: a new version's shards starting beside them do not count
 * yet), Progressing (the rollout's while a version changes, else the Deployments') and Degraded, from the
 * Deployments (sorted by name) and what this reconcile could not write.
 */
function componentConditions(
  plan: PlanOutcome,
  sorted: V1Deployment[],
  serving: V1Deployment[],
  rollout: ConditionInput | undefined,
  conflicts: string[],
  applyErrors: string[],
  pods: PodProblem[],
) {
  const rolling = sorted.filter(isRollingOut);
  const stalled = sorted.filter(progressDeadlineExceeded).map((d) => d.metadata!.name!);
  const unavailable = serving.filter((d) => !isAvailable(d)).map((d) => d.metadata!.name!);
  const available: ConditionInput =
    serving.length > 0 && unavailable.length === 0
      ? { type: T.Available, status: 'True', reason: R.AllComponentsAvailable, message: `${serving.length} of ${serving.length} components available` }
      : {
          type: T.Available,
          status: 'False',
          reason: R.ComponentsUnavailable,
          message: serving.length ? `waiting for ${unavailable.length} of ${serving.length} components: ${someOf(unavailable)}` : 'no components yet',
        };
  const progressing: ConditionInput = !plan.ok
    ? { type: T.Progressing, status: 'False', reason: plan.reason, message: `not rolling out: ${plan.message}` }
    : rollout
      ? rollout
      : stalled.length
        ? {
            type: T.Progressing,
            status: 'False',
            reason: R.ProgressDeadlineExceeded,
            message: `${someOf(stalled)} made no progress within its progress deadline`,
          }
        : rolling.length
          ? { type: T.Progressing, status: 'True', reason: R.RollingOut, message: `rolling out ${someOf(rolling.map((d) => d.metadata!.name!))}` }
          : { type: T.Progressing, status: 'False', reason: R.RolloutComplete, message: 'every component runs the current plan' };
  const problems = [...conflicts.map((n) => `${n} exists and is not controlled by this RecModel`), ...applyErrors];
  // the worst first (a stable sort keeps components in name order within a reason)
  const podsBySeverity = [...pods].sort((a, b) => PROBLEM_SEVERITY.indexOf(a.reason) - PROBLEM_SEVERITY.indexOf(b.reason));
  const worstPod = podsBySeverity[0];
  const degraded: ConditionInput = problems.length
    ? {
        type: T.Degraded,
        status: 'True',
        reason: conflicts.length ? R.ResourceConflict : R.ApplyFailed,
        message: someOf(problems, PROBLEMS_SHOWN, '; '),
      }
    : worstPod
      ? {
          type: T.Degraded,
          status: 'True',
          reason: worstPod.reason,
          message: someOf(
            podsBySeverity.map((p) => `${p.component}: ${p.message}`),
            PROBLEMS_SHOWN,
            '; ',
          ),
        }
      : stalled.length
        ? {
            type: T.Degraded,
            status: 'True',
            reason: R.ProgressDeadlineExceeded,
            message: `${someOf(stalled)}: Deployment progress deadline exceeded (its pods did not become available in time)`,
          }
        : { type: T.Degraded, status: 'False', reason: R.AsExpected, message: 'no problems found' };
  return { available, progressing, degraded };
}

/** Ready summarises the others: the first that is not as it should be says why. */
function readyCondition(planned: ConditionInput, c: ReturnType<typeof componentConditions>): ConditionInput {
  if (planned.status !== 'True') return { type: T.Ready, status: 'False', reason: R.NotPlanned, message: planned.message };
  if (c.degraded.status === 'True') return { type: T.Ready, status: 'False', reason: R.Degraded, message: c.degraded.message };
  if (c.available.status !== 'True') return { type: T.Ready, status: 'False', reason: R.NotAvailable, message: c.available.message };
  // a rollout in flight, or one that cannot go on (the model serves its older version meanwhile)
  const blocked = c.progressing.reason === R.RolloutStuck || c.progressing.reason === R.SurgeExceedsBudget;
  if (c.progressing.status === 'True' || blocked) return { type: T.Ready, status: 'False', reason: R.Progressing, message: c.progressing.message };
  return { type: T.Ready, status: 'True', reason: R.Ready, message: 'all components available on the current plan' };
}

export function computeStatus(input: StatusInput): RecModelStatus {
  const { plan, deployments } = input;
  const sorted = [...deployments].sort((a, b) => (a.metadata!.name! < b.metadata!.name! ? -1 : 1));
  const previous = new Map((input.previous?.components ?? []).map((p) => [p.name, p]));
  const components = sorted.map(componentStatus).map((c) => componentAutoscaling(input.autoscaling, c, previous.get(c.name)));
  const planned = plannedCondition(plan);
  const servingNames = input.rollout ? new Set(input.rollout.serving.map((s) => s.metadata!.name)) : undefined;
  const serving = servingNames ? sorted.filter((d) => servingNames.has(d.metadata!.name)) : sorted;
  const problems = podProblems(input.name, input.pods ?? [], input.now);
  const c = componentConditions(plan, sorted, serving, input.rollout?.progressing, input.conflicts, input.applyErrors, problems);
  const main = sorted.find((d) => d.metadata?.labels?.[LABEL_COMPONENT] === 'main');
  const summary = plan.ok ? planSummary(plan.plan) : input.previous?.plan;
  const scaling = autoscalingStatus(input.autoscaling, input.previous?.autoscaling, metaTime(input.now));
  const conditions = [
    readyCondition(planned, c),
    planned,
    c.available,
    c.progressing,
    c.degraded,
    ...autoscalingConditions(input.autoscaling, input.previous?.conditions),
  ];
  return {
    observedGeneration: input.generation,
    conditions: mergeConditions(input.previous?.conditions, conditions, input.generation, input.now),
    ...(summary ? { plan: summary } : {}),
    replicas: main?.status?.replicas ?? 0,
    selector: selectorString(selectorLabels(input.name, 'main')),
    ready: `${serving.filter(isAvailable).length}/${serving.length}`,
    components,
    ...(input.rollout ? { rollout: input.rollout.status } : input.previous?.rollout ? { rollout: input.previous.rollout } : {}),
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

/** Canonical text of statuses already seen (the cache's and the last written: the same objects reconcile after reconcile). */
const canonicalSeen = new WeakMap<object, string>();

/** Status equality ignoring nothing but key order, to skip writes that would change nothing. */
export function sameStatus(a: RecModelStatus | undefined, b: RecModelStatus): boolean {
  let ca = a ? canonicalSeen.get(a) : 'undefined';
  if (ca === undefined) canonicalSeen.set(a!, (ca = canonical(a)));
  const cb = canonical(b);
  canonicalSeen.set(b, cb);
  return ca === cb;
}

/** JSON with every object's keys sorted (undefined members left out, as JSON.stringify does). */
function canonical(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonical(x))).join(',')}]`;
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return canonical((v as { toJSON(): unknown }).toJSON()); // a Date
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
}
