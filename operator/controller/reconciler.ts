// Reconcile one RecModel, as a sequence of named steps (reconcile/): observe (cache -> one plain object), decide
// (pure: plan, desired children, stale children), apply, prune, autoscale, read the serving main, write status.
// Level-based and idempotent; an invalid or infeasible spec is terminal (a False condition, no retry), a failed
// write throws so the queue retries with backoff.
import type { V1Deployment, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/log.js';
import { ConditionType } from '../api/reasons.js';
import type { ActuatorEnv } from '../autoscaling/policy.js';
import type { BuilderConfig } from '../builders/config.js';
import type { KubeClient } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { OperatorMetrics } from '../server/metrics.js';
import type { ServingProbe } from '../signals/serving.js';
import { isPodProblemReason } from '../status/pods.js';
import type { Autoscaler, AutoscalerResult } from './autoscaler.js';
import type { Caches } from './informers.js';
import { announcePlan, applyDesired, type Applied } from './reconcile/apply.js';
import { decide, type Decision } from './reconcile/decide.js';
import { observe, type Observed } from './reconcile/observe.js';
import { pruneStale } from './reconcile/prune.js';
import { readServing } from './reconcile/serving.js';
import { writeStatus } from './reconcile/status.js';

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export const CONFLICT_RECHECK_MS = 5_000;

export interface ReconcilerDeps {
  /** Reads the main's scheduler into status; absent, status.scheduler is left alone. */
  serving?: { probe: ServingProbe; pollMs: number };
  /** Scales components on latency where spec.autoscaling is enabled; absent, replicas are left alone. */
  autoscaler?: Autoscaler;
  caches: Pick<Caches, 'recModel' | 'children' | 'policy' | 'modelPods'>;
  client: Pick<KubeClient, 'apply' | 'get' | 'delete' | 'patchRecModelStatus'>;
  events: Pick<EventRecorder, 'emit'>;
  cfg: BuilderConfig;
  /** What HPA and KEDA actuators have here. */
  actuators?: ActuatorEnv;
  clock: Clock;
  log: Logger;
  metrics: Pick<OperatorMetrics, 'applies' | 'recordModel' | 'forgetModel'>;
}

const deploymentsOf = (o: Observed) => o.owned.filter((x) => x.kind === 'Deployment') as V1Deployment[];

export class Reconciler {
  constructor(private readonly d: ReconcilerDeps) {}

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const observed = observe(this.d.caches, namespace, name);
    if (!observed) {
      this.d.autoscaler?.forget(namespace, name);
      this.d.metrics.forgetModel(namespace, name);
      return {};
    }
    const decision = decide(observed, this.d.cfg, this.d.actuators);
    const autoscaler = decision.spec?.autoscaling.enabled ? this.d.autoscaler : undefined;
    const acted = await this.act(observed, decision, autoscaler);
    const scaling = autoscaler && decision.outcome.ok ? await this.autoscale(autoscaler, observed, decision, acted.deployments) : undefined;
    const serving = await readServing(this.d.serving?.probe, namespace, name, decision.spec?.serving.port ?? 8080, acted.deployments);
    const { status, written } = await writeStatus(this.d, observed.rm, {
      plan: decision.outcome,
      deployments: acted.deployments,
      pods: observed.pods,
      conflicts: acted.conflicts,
      applyErrors: acted.errors,
      scheduler: serving.scheduler,
      ...(scaling ? { autoscaling: scaling.input } : {}),
      now: this.d.clock.now(),
    });
    if (written) this.d.log.debug('status updated', { recmodel: `${namespace}/${name}`, ready: status.ready });
    // what the kubelet or the scheduler says of the model's pods, also as a Warning Event (deduplicated by message)
    const degraded = status.conditions?.find((c) => c.type === ConditionType.Degraded);
    if (degraded?.status === 'True' && isPodProblemReason(degraded.reason)) await this.d.events.emit(observed.rm, 'Warning', degraded.reason, degraded.message);
    if (acted.errors.length) throw new Error(acted.errors.join('; '));
    // A conflicting object is not ours to watch: look again later in case its owner removed it.
    if (acted.conflicts.length) return { requeueAfterMs: CONFLICT_RECHECK_MS };
    // A serving main is read again on a schedule (its scheduler changes without any Kubernetes event), and an
    // autoscaled model at its policy's interval.
    const next = [serving.polled ? this.d.serving!.pollMs : undefined, scaling?.requeueAfterMs].filter((v): v is number => v !== undefined);
    return next.length ? { requeueAfterMs: Math.min(...next) } : {};
  }

  /** Apply and prune under a plan; without one, nothing is lost: the children of the last good plan keep serving. */
  private async act(observed: Observed, decision: Decision, autoscaler: Autoscaler | undefined): Promise<Applied> {
    const { rm } = observed;
    if (!decision.outcome.ok) {
      await this.d.events.emit(rm, 'Warning', decision.outcome.reason, decision.outcome.message);
      return { deployments: deploymentsOf(observed), conflicts: [], errors: [] };
    }
    const plan = decision.outcome.plan;
    // replicas go from apply to the autoscaler before an apply without them would reset them
    if (autoscaler) await autoscaler.handOver(deploymentsOf(observed));
    await announcePlan(this.d.events, rm, plan);
    const applied = await applyDesired(this.d, observed, decision.desired);
    applied.errors.push(...(await pruneStale(this.d, rm, decision.stale, plan.hash, decision.scaling)));
    return applied;
  }

  private async autoscale(autoscaler: Autoscaler, observed: Observed, decision: Decision, deployments: V1Deployment[]): Promise<AutoscalerResult> {
    const hpas = [...observed.owned, ...observed.foreign].filter((o) => o.kind === 'HorizontalPodAutoscaler') as V2HorizontalPodAutoscaler[];
    return autoscaler.run(observed.rm, decision.spec!, deployments, decision.scaling!, hpas);
  }
}
