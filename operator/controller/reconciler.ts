// Reconcile one RecModel: observe (cache -> one plain object), decide (pure: plan, desired children, stale
// children), act (apply, delete, events, status). Level-based and idempotent; an invalid or infeasible spec is
// terminal (a False condition, no retry), a failed write throws so the queue retries with backoff.
import type { KubernetesObject, V1Deployment, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { formatFieldErrors, resolveSpec, type LatencyScalingPolicy, type RecModel, type ResolvedRecModelSpec } from '../api/v1alpha1/index.js';
import type { Autoscaler, AutoscalerResult } from '../autoscaling/autoscaler.js';
import { resolveScaling, type ActuatorEnv, type ScalingResolution } from '../autoscaling/policy.js';
import { buildAutoscalers, KEDA_API_VERSION, SCALED_OBJECT } from '../builders/autoscalers.js';
import { buildChildren, type Owner } from '../builders/children.js';
import type { BuilderConfig } from '../builders/config.js';
import { dnsLabel } from '../builders/names.js';
import type { Clock } from '../lib/clock.js';
import { plural } from '../lib/text.js';
import type { Logger } from '../lib/log.js';
import { planModel } from '../planner/plan.js';
import { apiErrorMessage, type KubeClient } from '../kube/client.js';
import { EventReason, type EventRecorder } from '../kube/events.js';
import type { OperatorMetrics } from '../server/metrics.js';
import { Reason } from '../status/conditions.js';
import { computeStatus, sameStatus, type PlanOutcome } from '../status/status.js';
import { controllerOf, type Caches } from './informers.js';
import { mainServing, type ServingProbe } from '../signals/serving.js';
import { mainName } from '../builders/names.js';
import { LABEL_COMPONENT } from '../builders/labels.js';

export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** What one reconcile sees: the RecModel and the children it controls, from the cache. */
export interface Observed {
  rm: RecModel;
  owned: KubernetesObject[];
  /** Cached managed objects with our instance label but another controller (e.g. a same-named model's, or KEDA's HPAs). */
  foreign: KubernetesObject[];
  /** The LatencyScalingPolicy spec.autoscaling references, when enabled and found. */
  policy?: LatencyScalingPolicy;
}

export interface Decision {
  outcome: PlanOutcome;
  /** The defaulted spec, when valid. */
  spec?: ResolvedRecModelSpec;
  desired: KubernetesObject[];
  stale: KubernetesObject[];
  /** When spec.autoscaling is enabled: the policy in force, or why there is none. */
  scaling?: ScalingResolution;
}

export const CONFLICT_RECHECK_MS = 5_000;

// NetworkPolicies first, so no shard pod ever runs open; budgets and autoscalers once their Deployments exist
const kindOrder: Record<string, number> = { NetworkPolicy: 0, ConfigMap: 1, Service: 2, Deployment: 3, PodDisruptionBudget: 4, HorizontalPodAutoscaler: 4, [SCALED_OBJECT]: 4 };
const AUTOSCALER_KINDS = new Set(['HorizontalPodAutoscaler', SCALED_OBJECT]);
const refKey = (o: KubernetesObject) => `${o.kind}/${o.metadata!.name}`;

/** Pure: from the observed state to the plan, the desired children and the children to delete. */
export function decide(observed: Observed, cfg: BuilderConfig, actuators: ActuatorEnv = { kedaServed: false }): Decision {
  const { rm, owned } = observed;
  const resolved = resolveSpec(rm.spec);
  if (!resolved.ok) {
    return { outcome: { ok: false, reason: Reason.InvalidSpec, message: formatFieldErrors(resolved.errors) }, desired: [], stale: [] };
  }
  const planned = planModel(resolved.spec);
  if (!planned.ok) {
    return { outcome: { ok: false, reason: planned.error.reason, message: planned.error.message }, spec: resolved.spec, desired: [], stale: [] };
  }
  const owner: Owner = { name: rm.metadata.name, namespace: rm.metadata.namespace!, uid: rm.metadata.uid! };
  const spec = resolved.spec;
  const children = buildChildren(owner, spec, planned.plan, cfg);
  const scaling = spec.autoscaling.enabled ? resolveScaling(spec.autoscaling.policyRef!.name, observed.policy, spec.autoscaling, actuators) : undefined;
  const components = [{ role: 'main' as const }, ...planned.plan.shards.map((s) => ({ role: 'sparse' as const, shard: s.index }))];
  const autoscalers = scaling?.ok ? buildAutoscalers(owner, scaling.policy, components, actuators.prometheusUrl) : [];
  const desired = [...children.networkPolicies, children.configMap, ...children.services, ...children.deployments, ...children.pdbs, ...autoscalers] as KubernetesObject[];
  desired.sort((a, b) => kindOrder[a.kind!]! - kindOrder[b.kind!]!);
  const wanted = new Set(desired.map(refKey));
  // While the policy is refused (missing, invalid), HPAs and ScaledObjects already made keep scaling: nothing is lost.
  const keepAutoscalers = scaling !== undefined && !scaling.ok;
  const stale = owned.filter((o) => !wanted.has(refKey(o)) && !(keepAutoscalers && AUTOSCALER_KINDS.has(o.kind!)));
  return { outcome: { ok: true, plan: planned.plan }, spec, desired, stale, ...(scaling ? { scaling } : {}) };
}

export interface ReconcilerDeps {
  /** Reads the main's scheduler into status; absent, status.scheduler is left alone. */
  serving?: { probe: ServingProbe; pollMs: number };
  /** Scales components on latency where spec.autoscaling is enabled; absent, replicas are left alone. */
  autoscaler?: Autoscaler;
  caches: Caches;
  client: KubeClient;
  events: EventRecorder;
  cfg: BuilderConfig;
  /** What HPA and KEDA actuators have here. */
  actuators?: ActuatorEnv;
  clock: Clock;
  log: Logger;
  metrics: OperatorMetrics;
}

export class Reconciler {
  constructor(private readonly d: ReconcilerDeps) {}

  observe(namespace: string, name: string): Observed | undefined {
    const rm = this.d.caches.recModel(namespace, name);
    if (!rm || rm.metadata.deletionTimestamp) return undefined;
    const c = this.d.caches.children(namespace, dnsLabel(name));
    const all = [
      ...c.configMaps.map((o) => ({ ...o, kind: 'ConfigMap', apiVersion: 'v1' })),
      ...c.services.map((o) => ({ ...o, kind: 'Service', apiVersion: 'v1' })),
      ...c.deployments.map((o) => ({ ...o, kind: 'Deployment', apiVersion: 'apps/v1' })),
      ...c.pdbs.map((o) => ({ ...o, kind: 'PodDisruptionBudget', apiVersion: 'policy/v1' })),
      ...c.networkPolicies.map((o) => ({ ...o, kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1' })),
      ...c.hpas.map((o) => ({ ...o, kind: 'HorizontalPodAutoscaler', apiVersion: 'autoscaling/v2' })),
      ...c.scaledObjects.map((o) => ({ ...o, kind: SCALED_OBJECT, apiVersion: KEDA_API_VERSION })),
    ] as KubernetesObject[];
    const mine = (o: KubernetesObject) => controllerOf(o)?.uid === rm.metadata.uid;
    const policyName = rm.spec?.autoscaling?.enabled ? rm.spec.autoscaling.policyRef?.name : undefined;
    const policy = policyName ? this.d.caches.policy(policyName) : undefined;
    return { rm, owned: all.filter(mine), foreign: all.filter((o) => !mine(o)), ...(policy ? { policy } : {}) };
  }

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const observed = this.observe(namespace, name);
    if (!observed) {
      this.d.autoscaler?.forget(namespace, name);
      this.d.metrics.forgetModel(namespace, name);
      return {};
    }
    const { rm } = observed;
    const log = this.d.log.with({ recmodel: `${namespace}/${name}` });
    const decision = decide(observed, this.d.cfg, this.d.actuators);
    const conflicts: string[] = [];
    const applyErrors: string[] = [];
    let deployments: V1Deployment[];

    const autoscaler = decision.spec?.autoscaling.enabled ? this.d.autoscaler : undefined;
    if (decision.outcome.ok) {
      const plan = decision.outcome.plan;
      // replicas go from apply to the autoscaler before an apply without them would reset them
      if (autoscaler) await autoscaler.handOver(observed.owned.filter((o) => o.kind === 'Deployment') as V1Deployment[]);
      const previousHash = rm.status?.plan?.hash;
      if (previousHash !== plan.hash) {
        const was = rm.status?.plan ? ` (was ${rm.status.plan.strategy}, ${plural(rm.status.plan.shards ?? 0, 'shard')}, plan ${previousHash})` : '';
        await this.d.events.emit(rm, 'Normal', EventReason.PlanChanged, `${plan.strategy}: ${plural(plan.shards.length, 'shard')}, imbalance ${plan.imbalance.toFixed(3)}, plan ${plan.hash}${was}`);
      }
      deployments = [];
      for (const obj of decision.desired) {
        const foreign = await this.foreignOwner(observed, obj);
        if (foreign) {
          conflicts.push(`${obj.kind} ${obj.metadata!.name}`);
          await this.d.events.emit(rm, 'Warning', EventReason.ResourceConflict, `${obj.kind} ${obj.metadata!.name} exists and is not controlled by this RecModel (${foreign}); left unchanged`);
          continue;
        }
        try {
          const live = await this.d.client.apply(obj);
          this.d.metrics.applies.inc({ kind: obj.kind });
          if (obj.kind === 'Deployment') deployments.push(live as V1Deployment);
        } catch (e) {
          const msg = `apply ${obj.kind} ${obj.metadata!.name}: ${apiErrorMessage(e)}`;
          applyErrors.push(msg);
          await this.d.events.emit(rm, 'Warning', EventReason.ApplyFailed, msg);
        }
      }
      for (const obj of decision.stale) {
        try {
          await this.d.client.delete({ apiVersion: obj.apiVersion!, kind: obj.kind!, namespace, name: obj.metadata!.name! });
          if (obj.kind === 'Deployment') await this.d.events.emit(rm, 'Normal', EventReason.DeletedStaleShard, `deleted ${obj.kind} ${obj.metadata!.name}: not in plan ${plan.hash}`);
          if (AUTOSCALER_KINDS.has(obj.kind!)) await this.d.events.emit(rm, 'Normal', EventReason.DeletedAutoscaler, `deleted ${obj.kind} ${obj.metadata!.name}: ${decision.scaling?.ok ? `policy ${decision.scaling.policy.name} uses actuator ${decision.scaling.policy.actuator}` : 'autoscaling is disabled'}`);
        } catch (e) {
          applyErrors.push(`delete ${obj.kind} ${obj.metadata!.name}: ${apiErrorMessage(e)}`);
        }
      }
    } else {
      const { reason, message } = decision.outcome;
      await this.d.events.emit(rm, 'Warning', reason, message);
      // Nothing is lost: the children of the last good plan keep serving.
      deployments = observed.owned.filter((o) => o.kind === 'Deployment') as V1Deployment[];
    }

    const hpas = [...observed.owned, ...observed.foreign].filter((o) => o.kind === 'HorizontalPodAutoscaler') as V2HorizontalPodAutoscaler[];
    const scaling: AutoscalerResult | undefined = autoscaler && decision.outcome.ok ? await autoscaler.run(rm, decision.spec!, deployments, decision.scaling!, hpas) : undefined;
    const main = deployments.find((d) => d.metadata?.labels?.[LABEL_COMPONENT] === 'main');
    const polling = this.d.serving !== undefined && mainServing(main);
    const scheduler = polling ? await this.d.serving!.probe.scheduler({ name, namespace, service: mainName(name), port: decision.spec?.serving.port ?? 8080 }) : undefined;
    const status = computeStatus({
      name,
      generation: rm.metadata.generation ?? 0,
      previous: rm.status,
      plan: decision.outcome,
      deployments,
      conflicts,
      applyErrors,
      scheduler,
      ...(scaling ? { autoscaling: scaling.input } : {}),
      now: this.d.clock.now(),
    });
    this.d.metrics.recordModel(namespace, name, status.conditions ?? [], scaling?.input);
    if (!sameStatus(rm.status, status)) {
      await this.d.client.patchRecModelStatus(namespace, name, status);
      log.debug('status updated', { ready: status.ready });
    }
    if (applyErrors.length) throw new Error(applyErrors.join('; '));
    // A conflicting object is not ours to watch: look again later in case its owner removed it.
    if (conflicts.length) return { requeueAfterMs: CONFLICT_RECHECK_MS };
    // A serving main is read again on a schedule (its scheduler changes without any Kubernetes event), and an
    // autoscaled model at its policy's interval.
    const next = [polling ? this.d.serving!.pollMs : undefined, scaling?.requeueAfterMs].filter((v): v is number => v !== undefined);
    return next.length ? { requeueAfterMs: Math.min(...next) } : {};
  }

  /** Describes the controller of an existing same-named object when it is not this RecModel; else undefined. */
  private async foreignOwner(observed: Observed, obj: KubernetesObject): Promise<string | undefined> {
    const describe = (o: KubernetesObject) => {
      const c = controllerOf(o);
      return c ? `controlled by ${c.kind} ${c.name}` : 'no controller';
    };
    if (observed.owned.some((o) => refKey(o) === refKey(obj))) return undefined;
    const cached = observed.foreign.find((o) => refKey(o) === refKey(obj));
    if (cached) return describe(cached);
    // Objects without our labels are not in the cache: ask the API server before creating.
    const live = await this.d.client.get({ apiVersion: obj.apiVersion!, kind: obj.kind!, namespace: obj.metadata!.namespace!, name: obj.metadata!.name! });
    if (!live || controllerOf(live)?.uid === observed.rm.metadata.uid) return undefined;
    return describe(live);
  }
}
