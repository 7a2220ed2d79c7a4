// The latency autoscaler's part of a reconcile: observe (the policy, the components' pods, the latency
// signals), decide (evaluate: pure), act (the scale subresource, Events, metrics). The reconciler calls it after
// applying the children and folds what it returns into status; evaluations happen once per policy interval.
import type { V1Deployment, V1Pod, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { Role } from '../../contracts/shard-server-args.js';
import { metaTime, type Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/log.js';
import { EventReason } from '../api/reasons.js';
import type { RecModel, ResolvedRecModelSpec } from '../api/v1alpha1/index.js';
import { evaluate, Memories, type ComponentView, type Evaluation } from '../autoscaling/evaluate.js';
import type { EffectivePolicy, ScalingResolution } from '../autoscaling/policy.js';
import type { AutoscalingInput, LastScale } from '../autoscaling/state.js';
import { ANNOTATION_PLAN_HASH, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_SHARD, LABEL_VERSION } from '../builders/labels.js';
import { dnsLabel } from '../builders/names.js';
import { apiErrorMessage, FIELD_MANAGER, type KubeClient } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { OperatorMetrics } from '../server/metrics.js';
import type { LatencyReading, LatencySource } from '../signals/latency.js';
import { externalViews } from './hpa-views.js';

export interface AutoscalerDeps {
  /** Pods in a namespace carrying the model's instance label. */
  pods(namespace: string, instance: string): V1Pod[];
  client: Pick<KubeClient, 'scaleDeployment'>;
  events: EventRecorder;
  source: LatencySource;
  metrics: OperatorMetrics;
  clock: Clock;
  log: Logger;
}

export interface AutoscalerResult {
  input: AutoscalingInput;
  /** When to look again (the next evaluation). */
  requeueAfterMs?: number;
}

/** Does our apply own spec.replicas of this Deployment? Then the autoscaler must co-own it before apply drops it. */
export function applyOwnsReplicas(d: V1Deployment): boolean {
  return (d.metadata?.managedFields ?? []).some(
    (f) =>
      f.manager === FIELD_MANAGER &&
      f.operation === 'Apply' &&
      (f.fieldsV1 as { 'f:spec'?: Record<string, unknown> } | undefined)?.['f:spec']?.['f:replicas'] !== undefined,
  );
}

const roleOf = (d: V1Deployment): Role => (d.metadata?.labels?.[LABEL_COMPONENT] === 'sparse' ? 'sparse' : 'main');

export function podView(p: V1Pod) {
  const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
  const isReady = ready?.status === 'True' && !p.metadata?.deletionTimestamp;
  // when it became ready; without a transition time, when it started (or was created)
  const stamp = ready?.lastTransitionTime ?? p.status?.startTime ?? p.metadata?.creationTimestamp;
  const since = stamp ? new Date(stamp as unknown as string).getTime() : undefined;
  return {
    name: p.metadata!.name!,
    ...(p.status?.podIP ? { ip: p.status.podIP } : {}),
    ready: isReady,
    ...(isReady && since !== undefined ? { readySinceMs: since } : {}),
  };
}

export class Autoscaler {
  private readonly memories = new Memories();
  /** Per model: the latest evaluation, when it ran (ms and as status writes it), and why it could not read. */
  private readonly latest = new Map<string, { atMs: number; at: string; evaluation: Evaluation; sourceError?: string }>();
  /** Per model, per component: the last scaling. */
  private readonly lastScales = new Map<string, Map<string, LastScale>>();

  constructor(private readonly d: AutoscalerDeps) {}

  /** Forgets a deleted model. */
  forget(namespace: string, name: string): void {
    this.latest.delete(`${namespace}/${name}`);
    this.lastScales.delete(`${namespace}/${name}`);
    this.memories.retain(`${namespace}/${name}/`, new Set());
  }

  /** Hands spec.replicas over from apply to the autoscaler, keeping the value (else apply would reset it to 1). */
  async handOver(deployments: V1Deployment[]): Promise<void> {
    for (const dep of deployments) {
      if (!applyOwnsReplicas(dep)) continue;
      await this.d.client.scaleDeployment(dep.metadata!.namespace!, dep.metadata!.name!, dep.spec?.replicas ?? 1);
    }
  }

  /**
   * One reconcile's scaling: nothing while the policy is refused; under an HPA or KEDA actuator, only what the
   * HPAs report (they scale); under the operator's own law, an evaluation once per interval.
   */
  async run(
    rm: RecModel,
    spec: ResolvedRecModelSpec,
    deployments: V1Deployment[],
    scaling: ScalingResolution,
    hpas: V2HorizontalPodAutoscaler[],
  ): Promise<AutoscalerResult> {
    if (!scaling.ok) return { input: { state: 'refused', policyName: spec.autoscaling.policyRef!.name, reason: scaling.reason, message: scaling.message } };
    const policy = scaling.policy;
    if (policy.actuator !== 'Operator') {
      const components = deployments.map((d) => ({ name: d.metadata!.name!, role: roleOf(d) }));
      return { input: { state: 'external', policy, views: externalViews(policy, components, hpas) }, requeueAfterMs: policy.intervalMs };
    }
    const key = `${rm.metadata.namespace}/${rm.metadata.name}`;
    const now = this.d.clock.now().getTime();
    const scales = this.lastScales.get(key) ?? new Map<string, LastScale>();
    this.lastScales.set(key, scales);
    const last = this.latest.get(key);
    // not due yet: what the last evaluation said
    const latest = last !== undefined && now - last.atMs < policy.intervalMs * 0.9 ? last : await this.evaluateNow(rm, spec, policy, deployments, scales, now);
    const { evaluation, at, sourceError } = latest;
    return {
      input: { state: 'active', policy, evaluation, evaluatedAt: at, lastScales: scales, ...(sourceError ? { sourceError } : {}) },
      requeueAfterMs: policy.intervalMs - (now - latest.atMs),
    };
  }

  /** The components as the law sees them: replicas, and their pods (ready since when), by plan. */
  private componentViews(rm: RecModel, deployments: V1Deployment[]): ComponentView[] {
    const pods = this.d.pods(rm.metadata.namespace!, dnsLabel(rm.metadata.name));
    return deployments.map((dep) => {
      const labels = dep.metadata?.labels ?? {};
      const role = roleOf(dep);
      const shard = labels[LABEL_SHARD] !== undefined ? Number(labels[LABEL_SHARD]) : undefined;
      const mine = pods.filter(
        (p) =>
          p.metadata?.labels?.[LABEL_COMPONENT] === role &&
          [LABEL_SHARD, LABEL_INSTANCE, ...(role === 'sparse' ? [LABEL_VERSION] : [])].every((l) => p.metadata?.labels?.[l] === labels[l]),
      );
      const planHash = dep.spec?.template?.metadata?.annotations?.[ANNOTATION_PLAN_HASH];
      return {
        name: dep.metadata!.name!,
        role,
        ...(shard !== undefined ? { shard } : {}),
        replicas: dep.spec?.replicas ?? 1,
        pods: mine.map(podView),
        ...(planHash ? { planHash } : {}),
      };
    });
  }

  /** Reads the signals, evaluates, scales, and remembers it all for the model. */
  private async evaluateNow(
    rm: RecModel,
    spec: ResolvedRecModelSpec,
    policy: EffectivePolicy,
    deployments: V1Deployment[],
    scales: Map<string, LastScale>,
    now: number,
  ) {
    const key = `${rm.metadata.namespace}/${rm.metadata.name}`;
    const components = this.componentViews(rm, deployments);
    const { readings, error } = await this.read(rm, spec, policy.windowMs, components);
    const evaluation = evaluate(policy, components, readings, this.memories, `${key}/`, now);
    const latest = { atMs: now, at: metaTime(new Date(now)), evaluation, ...(error ? { sourceError: error } : {}) };
    this.latest.set(key, latest);
    for (const [component, reason] of await this.act(rm, evaluation)) scales.set(component, { time: latest.at, reason });
    if (evaluation.metricsMissing) {
      const why = `no latency for the main (${error ?? 'no samples from its warm pods'}); holding replicas`;
      await this.d.events.emit(rm, 'Warning', EventReason.MetricsUnavailable, why);
    }
    return latest;
  }

  private async read(rm: RecModel, spec: ResolvedRecModelSpec, windowMs: number, components: ComponentView[]) {
    const base = { namespace: rm.metadata.namespace!, model: rm.metadata.name, windowMs, port: spec.serving.metricsPort };
    let error: string | undefined;
    const get = async (q: Parameters<LatencySource['read']>[0]): Promise<LatencyReading | undefined> => {
      try {
        return await this.d.source.read(q);
      } catch (e) {
        error = `${this.d.source.name}: ${apiErrorMessage(e)}`;
        this.d.metrics.metricQueryFailures.inc({ source: this.d.source.name });
        return undefined;
      }
    };
    const main = components.find((c) => c.role === 'main');
    const mainPods = main?.pods ?? [];
    const readings = {
      main: main ? await get({ ...base, role: 'main', stage: 'end_to_end', pods: mainPods }) : undefined,
      shardCalls: components.some((c) => c.role === 'sparse') ? await get({ ...base, role: 'main', stage: 'shard_call', pods: mainPods }) : undefined,
      shards: new Map<number, LatencyReading | undefined>(),
    };
    for (const c of components)
      if (c.role === 'sparse') readings.shards.set(c.shard!, await get({ ...base, role: 'sparse', stage: 'end_to_end', pods: c.pods }));
    return { readings, error };
  }

  /** Scales what the evaluation changed; returns the reason of each change by Deployment. */
  private async act(rm: RecModel, e: Evaluation): Promise<Map<string, string>> {
    const scaled = new Map<string, string>();
    const recmodel = `${rm.metadata.namespace}/${rm.metadata.name}`;
    for (const c of e.components) {
      this.d.metrics.recordDesired(rm.metadata.namespace!, rm.metadata.name, c.name, c.desired);
      this.d.log.debug('autoscaling decision', {
        recmodel,
        component: c.name,
        current: c.current,
        desired: c.desired,
        reason: c.reason,
        message: c.message,
        ...(c.limited ? { limited: c.limited } : {}),
      });
      if (c.desired === c.current) continue;
      const direction = c.desired > c.current ? 'up' : 'down';
      const why = `${c.reason}: ${c.message}`;
      try {
        await this.d.client.scaleDeployment(rm.metadata.namespace!, c.name, c.desired);
      } catch (err) {
        await this.d.events.emit(rm, 'Warning', EventReason.ScaleFailed, `${c.name}: ${c.current} -> ${c.desired} replicas failed: ${apiErrorMessage(err)}`);
        throw err;
      }
      this.d.metrics.scalingDecisions.inc({ direction, reason: c.reason });
      scaled.set(c.name, why);
      this.d.log.info('scaled', { recmodel, component: c.name, from: c.current, to: c.desired, reason: c.reason });
      await this.d.events.emit(
        rm,
        'Normal',
        direction === 'up' ? EventReason.ScaledUp : EventReason.ScaledDown,
        `${c.name}: ${c.current} -> ${c.desired} replicas (${why}${c.limited ? `; ${c.limited}` : ''})`,
      );
    }
    return scaled;
  }
}
