// The rollout of a serving version (docs/rollouts.md), as a pure function: what is observed (the main Deployment's
// version, the shard sets by version, the main pods by version, the last rollout status) in; what to apply, what to
// keep, the rollout status, the Progressing condition and the events out.
//
// A version's shards (Deployments, Services, budgets, autoscalers, named and labelled by the version) start beside
// the running set; only when every one is available does the main Deployment roll to the version, so new main pods
// find new shards and old main pods keep their old ones. An old set goes once no main pod of its version remains
// and the drain period has passed. At most one extra version's shards exist at a time; a set no main pod ever used
// (a superseded rollout) goes at once.
import type { KubernetesObject, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { metaTime } from '../../lib/clock.js';
import { formatBytes, parseQuantity } from '../../lib/quantity.js';
import { plural } from '../../lib/text.js';
import { ConditionType, EventReason, Reason } from '../api/reasons.js';
import type { RecModelStatus } from '../api/v1alpha1/index.js';
import { AUTOSCALER_KINDS } from '../builders/autoscalers.js';
import type { VersionChildren } from '../builders/children.js';
import { LABEL_COMPONENT, LABEL_VERSION } from '../builders/labels.js';
import type { ConditionInput } from '../status/conditions.js';
import { isAvailable, isRollingOut } from '../status/deployments.js';

export type RolloutStatus = NonNullable<RecModelStatus['rollout']>;
export type RolloutPhase = NonNullable<RolloutStatus['phase']>;

/** The version of objects made before versions existed (an operator upgrade rolls them out like any other). */
export const UNVERSIONED = 'unversioned';

export interface RolloutInput {
  /** The children of the version the spec asks for. */
  target: VersionChildren;
  planHash: string;
  /** The model's live children (from the cache). */
  owned: KubernetesObject[];
  pods: V1Pod[];
  previous?: RolloutStatus;
  now: Date;
  progressDeadlineMs: number;
  drainMs: number;
  /** spec.rollout.maxSurgeMemory in bytes. */
  maxSurgeBytes?: number;
}

export interface RolloutEvent {
  type: 'Normal' | 'Warning';
  reason: EventReason;
  message: string;
}

export interface RolloutDecision {
  /** Children to apply now (the target's, as far as the rollout has come; the main's Service and budget always). */
  apply: KubernetesObject[];
  /** Live children that stay as they are (an older version still in use or draining, the main while it waits). */
  retain: KubernetesObject[];
  /** Shard sets (by version) deleted by this decision. */
  deleted: string[];
  /** Whether the target's shard Deployments are in `apply` (their autoscalers go with them). */
  shardsApplied: boolean;
  /** Names of the Deployments serving now (the main and the shard sets its pods use): Available is judged on them. */
  serving: string[];
  /** The main and the shard set of the main Deployment's version: what the autoscaler scales (not a set starting or draining). */
  scaled: string[];
  status: RolloutStatus;
  /** Progressing while a version changes; undefined leaves it to the Deployments. */
  progressing?: ConditionInput;
  events: RolloutEvent[];
  requeueAfterMs?: number;
}

const labelsOf = (o: { metadata?: { labels?: Record<string, string> } } | undefined) => o?.metadata?.labels ?? {};
export const versionOf = (o: { metadata?: { labels?: Record<string, string> } } | undefined) => labelsOf(o)[LABEL_VERSION] ?? UNVERSIONED;
const isMain = (o: KubernetesObject) => labelsOf(o)[LABEL_COMPONENT] === 'main';
const isSparse = (o: KubernetesObject) => labelsOf(o)[LABEL_COMPONENT] === 'sparse';
const gone = (p: V1Pod) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';

/** Memory the shard set requests (replicas x the container's memory request, or its limit). */
export function shardSetBytes(deployments: V1Deployment[]): number {
  let n = 0;
  for (const d of deployments) {
    const r = d.spec?.template.spec?.containers[0]?.resources;
    const mem = r?.requests?.memory ?? r?.limits?.memory;
    n += (d.spec?.replicas ?? 1) * (mem === undefined ? 0 : parseQuantity(mem));
  }
  return n;
}

/** The ConfigMaps a Deployment's pods (or a pod) mount. */
const mounted = (spec: { volumes?: { configMap?: { name?: string } }[] } | undefined) =>
  (spec?.volumes ?? []).map((v) => v.configMap?.name).filter((n): n is string => !!n);

export function decideRollout(i: RolloutInput): RolloutDecision {
  const T = i.target.version;
  const mainDep = i.owned.find((o) => o.kind === 'Deployment' && isMain(o)) as V1Deployment | undefined;
  const M = mainDep ? versionOf(mainDep.spec?.template) : undefined;
  // live shard sets by version, every kind (Deployments, Services, budgets, autoscalers)
  const sets = new Map<string, KubernetesObject[]>();
  for (const o of i.owned) {
    if (!isSparse(o)) continue;
    const v = versionOf(o);
    const set = sets.get(v);
    if (set) set.push(o);
    else sets.set(v, [o]);
  }
  const mainPods = new Map<string, number>();
  for (const p of i.pods) if (labelsOf(p)[LABEL_COMPONENT] === 'main' && !gone(p)) mainPods.set(versionOf(p), (mainPods.get(versionOf(p)) ?? 0) + 1);
  const deploymentsOf = (v: string) => (sets.get(v) ?? []).filter((o) => o.kind === 'Deployment') as V1Deployment[];

  const prev = i.previous?.toVersion === T ? i.previous : undefined;
  const events: RolloutEvent[] = [];
  const keepVersions = new Set<string>();
  let requeueAfterMs: number | undefined;
  const requeue = (ms: number) => (requeueAfterMs = Math.max(1, Math.min(requeueAfterMs ?? Infinity, Math.ceil(ms))));
  const now = i.now.getTime();
  const base: RolloutStatus = {
    toVersion: T,
    toPlan: i.planHash,
    ...(M !== undefined && M !== T ? { fromVersion: M } : prev?.fromVersion ? { fromVersion: prev.fromVersion } : {}),
    ...(prev?.fromPlan ? { fromPlan: prev.fromPlan } : {}),
    mode: prev?.mode ?? (M === undefined ? 'Initial' : M === T ? 'InPlace' : 'Overlap'),
    reason: prev?.reason ?? (M === undefined ? 'first version of the model' : M === T ? 'same serving version: Deployments roll in place' : ''),
    startedTime: prev?.startedTime ?? metaTime(i.now),
  };
  // the spec went back to the version the main is on before a rollout to another reached it
  if (!prev && M === T && i.previous?.toVersion && i.previous.toVersion !== T)
    base.reason = `rolled back to version ${T}: version ${i.previous.toVersion} never reached the main`;
  if (!prev && M !== undefined && M !== T) {
    const fromPlan = i.previous?.toVersion === M ? i.previous.toPlan : undefined;
    if (fromPlan) base.fromPlan = fromPlan;
    base.reason =
      fromPlan === i.planHash
        ? `same plan ${i.planHash}, another artifact or image: version ${M} -> ${T}`
        : `plan ${fromPlan ?? 'of ' + M} -> ${i.planHash}: version ${M} -> ${T}`;
    events.push({
      type: 'Normal',
      reason: EventReason.RolloutStarted,
      message: `rolling out version ${T} (plan ${i.planHash}) beside ${M}: ${plural(i.target.shards.deployments.length, 'shard')} start first`,
    });
  }
  const targetShards = i.target.shards.deployments;
  const liveTarget = new Map(deploymentsOf(T).map((l) => [l.metadata?.name, l]));
  const targetReady = targetShards.filter((d) => {
    const live = liveTarget.get(d.metadata?.name);
    return live !== undefined && isAvailable(live) && !isRollingOut(live);
  }).length;
  const withMain = (v: string) => mainPods.has(v) || v === M;
  const mainTotal = [...mainPods.values()].reduce((a, b) => a + b, 0);
  const onTarget = mainPods.get(T) ?? 0;
  const counts = {
    shardsReady: `${targetReady}/${targetShards.length}`,
    mainUpdated: `${onTarget}/${mainDep?.spec?.replicas ?? mainTotal}`,
    oldMainPods: mainTotal - onTarget,
  };
  const mainCommon = [i.target.main.service, i.target.main.pdb];
  const shardObjects = [...i.target.shards.services, ...targetShards, ...i.target.shards.pdbs];
  let apply: KubernetesObject[];
  let phase: RolloutPhase;
  let progressing: ConditionInput | undefined;
  let shardsApplied = true;

  if (M === undefined || M === T) {
    // the main is on the target (or is being created with it): everything of the target applies
    apply = [i.target.configMap, ...mainCommon, ...shardObjects, i.target.main.deployment];
    keepVersions.add(T);
    let draining = false;
    let switching = false;
    for (const v of sets.keys()) {
      if (v === T) continue;
      if (mainPods.has(v)) {
        keepVersions.add(v);
        switching = true;
        continue;
      }
      const since = prev?.drainingSince ? Date.parse(prev.drainingSince) : now;
      if (v === base.fromVersion && now - since < i.drainMs) {
        keepVersions.add(v);
        draining = true;
        base.drainingSince = prev?.drainingSince ?? metaTime(i.now);
        requeue(i.drainMs - (now - since));
      }
    }
    phase = switching ? 'SwitchingMain' : draining ? 'Draining' : M === undefined && targetReady < targetShards.length ? 'StartingShards' : 'Complete';
    if (switching)
      progressing = cond(
        'True',
        Reason.SwitchingMain,
        `main rolling to version ${T}: ${counts.mainUpdated} pods on it, ${counts.oldMainPods} on older versions`,
      );
    else if (draining) progressing = cond('True', Reason.Draining, `main on version ${T}; old shards of ${base.fromVersion} deleted after the drain period`);
  } else {
    // the main runs another version: the target's shards first, the main only once every one is available
    const inUse = new Set([...mainPods.keys(), M]);
    const surge = shardSetBytes(targetShards);
    const started = Date.parse(base.startedTime!);
    if (targetReady === targetShards.length && liveTarget.size >= targetShards.length) {
      apply = [i.target.configMap, ...mainCommon, ...shardObjects, i.target.main.deployment];
      phase = 'SwitchingMain';
      if (prev?.phase !== 'SwitchingMain')
        events.push({
          type: 'Normal',
          reason: EventReason.MainSwitched,
          message: `every shard of version ${T} is available: the main rolls from ${M} to ${T}`,
        });
      progressing = cond('True', Reason.SwitchingMain, `main rolling from ${M} to version ${T}`);
      for (const v of inUse) keepVersions.add(v);
      keepVersions.add(T);
    } else if (new Set([...inUse, T]).size > 2) {
      apply = mainCommon;
      shardsApplied = false;
      phase = 'Waiting';
      progressing = cond('True', Reason.WaitingForSwitch, `waiting for the main's switch to ${M} to finish before starting version ${T}`);
      for (const v of inUse) keepVersions.add(v);
      if (sets.has(T)) keepVersions.add(T);
    } else if (i.maxSurgeBytes !== undefined && surge > i.maxSurgeBytes) {
      apply = mainCommon;
      shardsApplied = false;
      phase = 'Waiting';
      const message =
        `version ${T}'s shards request ${formatBytes(surge)} beside the running ones; ` +
        `spec.rollout.maxSurgeMemory allows ${formatBytes(i.maxSurgeBytes)}: still serving ${M}`;
      progressing = cond('False', Reason.SurgeExceedsBudget, message);
      events.push({ type: 'Warning', reason: EventReason.SurgeExceedsBudget, message });
      for (const v of inUse) keepVersions.add(v);
    } else {
      apply = [i.target.configMap, ...mainCommon, ...shardObjects];
      for (const v of inUse) keepVersions.add(v);
      keepVersions.add(T);
      const waiting = targetShards
        .filter((d) => {
          const live = liveTarget.get(d.metadata?.name);
          return !live || !isAvailable(live) || isRollingOut(live);
        })
        .map((d) => {
          const live = liveTarget.get(d.metadata?.name);
          return `${d.metadata!.name} (${live?.status?.availableReplicas ?? 0}/${live?.spec?.replicas ?? d.spec?.replicas ?? 1} available)`;
        });
      if (now - started >= i.progressDeadlineMs) {
        phase = 'Stuck';
        const message = `version ${T} not available after ${Math.round(i.progressDeadlineMs / 1000)} s: ${waiting.join(', ')}; still serving ${M}`;
        progressing = cond('False', Reason.RolloutStuck, message);
        events.push({ type: 'Warning', reason: EventReason.RolloutStuck, message });
      } else {
        phase = 'StartingShards';
        progressing = cond('True', Reason.StartingShards, `starting version ${T} beside ${M}: waiting for ${waiting.join(', ')}`);
        requeue(i.progressDeadlineMs - (now - started));
      }
    }
    if (i.maxSurgeBytes === undefined || surge <= i.maxSurgeBytes) base.surgeBytes = surge;
  }

  // sets no main pod uses that are not kept go now: a superseded target at once, a drained one after its period
  const deleted: string[] = [];
  const retain: KubernetesObject[] = [];
  for (const [v, objs] of sets) {
    if (keepVersions.has(v)) {
      // the target's autoscalers are the policy's to decide (decide.ts) whenever its shards are applied
      retain.push(...objs.filter((o) => !(v === T && shardsApplied && AUTOSCALER_KINDS.has(o.kind!))));
      continue;
    }
    deleted.push(v);
    if (!withMain(v) && v === i.previous?.toVersion && v !== base.fromVersion)
      events.push({
        type: 'Normal',
        reason: EventReason.RolloutSuperseded,
        message: `version ${v} was superseded by ${T} before the main switched; its shards are deleted`,
      });
  }
  if (mainDep && !apply.includes(i.target.main.deployment)) retain.push(mainDep);
  // ConfigMaps: the target's, and every one a kept Deployment or a live pod mounts
  const mountedNames = new Set<string>([i.target.configMap.metadata!.name!]);
  for (const o of retain) if (o.kind === 'Deployment') for (const n of mounted((o as V1Deployment).spec?.template.spec)) mountedNames.add(n);
  for (const p of i.pods) if (!gone(p)) for (const n of mounted(p.spec)) mountedNames.add(n);
  for (const o of i.owned)
    if (o.kind === 'ConfigMap' && mountedNames.has(o.metadata!.name!) && o.metadata!.name !== i.target.configMap.metadata!.name) retain.push(o);

  const wasComplete = i.previous?.phase === 'Complete' && i.previous.toVersion === T;
  const status: RolloutStatus = { ...base, phase, ...counts };
  if (phase === 'Complete') {
    status.finishedTime = wasComplete ? (i.previous!.finishedTime ?? metaTime(i.now)) : metaTime(i.now);
    delete status.drainingSince;
    if (!wasComplete && status.mode === 'Overlap')
      events.push({
        type: 'Normal',
        reason: EventReason.RolloutComplete,
        message: `version ${T} serves alone; ${base.fromVersion ?? 'the old version'}'s shards are gone`,
      });
  }
  const serving = [
    i.target.main.deployment.metadata!.name!,
    ...(M === undefined ? targetShards.map((d) => d.metadata!.name!) : []),
    ...[...keepVersions].filter(withMain).flatMap((v) => deploymentsOf(v).map((d) => d.metadata!.name!)),
  ];
  const mainOn = M ?? T;
  const scaled = [
    i.target.main.deployment.metadata!.name!,
    ...(mainOn === T ? targetShards.map((d) => d.metadata!.name!) : deploymentsOf(mainOn).map((d) => d.metadata!.name!)),
  ];
  return { apply, retain, deleted, shardsApplied, serving, scaled, status, progressing, events, ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}) };
}

const cond = (status: 'True' | 'False', reason: ConditionInput['reason'], message: string): ConditionInput => ({
  type: ConditionType.Progressing,
  status,
  reason,
  message,
});
