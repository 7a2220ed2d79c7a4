// Reconcile one RecModel, as a sequence of named steps (reconcile/): observe (cache -> one plain object), decide
// (pure: plan, desired children, stale children), apply, prune, autoscale, read the serving main, write status.
// Level-based and idempotent; an invalid or infeasible spec is terminal (a False condition, no retry), a failed
// write throws so the queue retries with backoff.
import type { V1Deployment, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { nextTurn, type Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/log.js';
import { ConditionType } from '../api/reasons.js';
import type { RecModelStatus } from '../api/v1alpha1/index.js';
import type { ActuatorEnv } from '../autoscaling/policy.js';
import type { BuilderConfig } from '../builders/config.js';
import type { KubeClient } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { OperatorMetrics } from '../server/metrics.js';
import type { SchedulerReading, ServingProbe } from '../signals/serving.js';
import { isPodProblemReason } from '../status/pods.js';
import { sameStatus } from '../status/status.js';
import type { Autoscaler, AutoscalerResult } from './autoscaler.js';
import type { Caches } from './informers.js';
import { announcePlan, applyDesired, AppliedRecord, type Applied } from './reconcile/apply.js';
import { decide, type Decision } from './reconcile/decide.js';
import { observe, type Observed } from './reconcile/observe.js';
import { prepareNow, type Preparer } from './reconcile/prepare.js';
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
  client: Pick<KubeClient, 'apply' | 'get' | 'delete' | 'patchRecModelStatus'> & Partial<Pick<KubeClient, 'listByName'>>;
  events: Pick<EventRecorder, 'emit'>;
  cfg: BuilderConfig;
  /** Plans each spec generation once (large ones off the event loop); absent, every reconcile plans inline. */
  preparer?: Pick<Preparer, 'prepare' | 'forget'>;
  /** What HPA and KEDA actuators have here. */
  actuators?: ActuatorEnv;
  clock: Clock;
  log: Logger;
  metrics: Pick<OperatorMetrics, 'applies' | 'recordModel' | 'forgetModel'>;
}

/** The serving Deployments as this reconcile left them. */
function servingNow(names: string[], live: V1Deployment[]): V1Deployment[] {
  const wanted = new Set(names);
  return live.filter((d) => wanted.has(d.metadata!.name!));
}

const deploymentsOf = (o: Observed) => o.owned.filter((x) => x.kind === 'Deployment') as V1Deployment[];

/** How long this replica reads a model's status through what it last wrote, while the cache catches up. */
export const OWN_WRITE_MS = 10_000;

export class Reconciler {
  /** The status this replica last wrote per model: the rollout's state lives there, and the cache lags behind it. */
  private readonly written = new Map<string, { uid: string; status: RecModelStatus; atMs: number }>();
  /** What was last applied to each child, so unchanged children are not written again. */
  private readonly applied = new AppliedRecord();

  constructor(private readonly d: ReconcilerDeps) {}

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const key = `${namespace}/${name}`;
    let observed = this.readOwnWrites(key, observe(this.d.caches, namespace, name));
    if (!observed) {
      this.written.delete(key);
      this.applied.forget(key);
      this.d.preparer?.forget(namespace, name);
      this.d.autoscaler?.forget(namespace, name);
      this.d.metrics.forgetModel(namespace, name);
      return {};
    }
    const prepared = this.d.preparer ? await this.d.preparer.prepare(observed.rm) : prepareNow(observed.rm, this.d.cfg);
    // the plan may have taken a while (a thread): decide on what the cache holds now
    if (this.d.preparer) observed = this.readOwnWrites(key, observe(this.d.caches, namespace, name)) ?? observed;
    // each step of a model of a thousand shards takes tens of milliseconds: probes and renewals run between them
    await nextTurn();
    const decision = decide(observed, this.d.cfg, this.d.clock.now(), this.d.actuators, prepared);
    await nextTurn();
    // a new plan is announced, and in status (Planned) before its children are written: a large model says at once
    // what it will be
    if (decision.outcome.ok) await announcePlan(this.d.events, observed.rm, decision.outcome.plan);
    if (decision.outcome.ok && observed.rm.status?.plan?.hash !== decision.outcome.plan.hash) {
      const early = await this.status(key, observed, decision, { deployments: deploymentsOf(observed), conflicts: [], errors: [] });
      observed = { ...observed, rm: { ...observed.rm, status: early } };
    }
    const autoscaler = decision.spec?.autoscaling.enabled ? this.d.autoscaler : undefined;
    const acted = await this.act(observed, decision, autoscaler);
    // the autoscaler scales the main and the shard set the main is on, never a set that is starting or draining
    const scaled = decision.rollout ? servingNow(decision.rollout.scaled, acted.deployments) : acted.deployments;
    const scaling = autoscaler && decision.outcome.ok ? await this.autoscale(autoscaler, observed, decision, scaled) : undefined;
    const serving = await readServing(this.d.serving?.probe, namespace, name, decision.spec?.serving.port ?? 8080, acted.deployments);
    const rollout = decision.rollout;
    await nextTurn();
    const status = await this.status(key, observed, decision, acted, serving.scheduler, scaling);
    // what the kubelet or the scheduler says of the model's pods, also as a Warning Event (deduplicated by message)
    const degraded = status.conditions?.find((c) => c.type === ConditionType.Degraded);
    if (degraded?.status === 'True' && isPodProblemReason(degraded.reason)) await this.d.events.emit(observed.rm, 'Warning', degraded.reason, degraded.message);
    if (acted.errors.length) throw new Error(acted.errors.join('; '));
    // A conflicting object is not ours to watch: look again later in case its owner removed it.
    if (acted.conflicts.length) return { requeueAfterMs: CONFLICT_RECHECK_MS };
    // A serving main is read again on a schedule (its scheduler changes without any Kubernetes event), and an
    // autoscaled model at its policy's interval.
    // a rollout looks again when its drain period or its progress deadline ends
    const next = [serving.polled ? this.d.serving!.pollMs : undefined, scaling?.requeueAfterMs, rollout?.requeueAfterMs].filter(
      (v): v is number => v !== undefined,
    );
    return next.length ? { requeueAfterMs: Math.min(...next) } : {};
  }

  /**
   * A reconcile that follows this replica's own status write closely may see the cache from before it: a second
   * rollout decision on a stale status would restart the rollout's bookkeeping. Until the cache shows what was
   * written (or OWN_WRITE_MS passes), the model is read with the status last written.
   */
  private readOwnWrites(key: string, observed: Observed | undefined): Observed | undefined {
    const mine = this.written.get(key);
    if (!observed || !mine || mine.uid !== observed.rm.metadata.uid) return observed;
    if (sameStatus(observed.rm.status, mine.status) || this.d.clock.now().getTime() - mine.atMs >= OWN_WRITE_MS) {
      this.written.delete(key);
      return observed;
    }
    return { ...observed, rm: { ...observed.rm, status: mine.status } };
  }

  /** Computes status from this reconcile and writes it when it changed (remembered: the cache lags behind it). */
  private async status(
    key: string,
    observed: Observed,
    decision: Decision,
    acted: Applied,
    scheduler?: SchedulerReading,
    scaling?: AutoscalerResult,
  ): Promise<RecModelStatus> {
    const rollout = decision.rollout;
    const { status, written } = await writeStatus(this.d, observed.rm, {
      plan: decision.outcome,
      deployments: acted.deployments,
      ...(rollout ? { rollout: { status: rollout.status, progressing: rollout.progressing, serving: servingNow(rollout.serving, acted.deployments) } } : {}),
      pods: observed.pods,
      conflicts: acted.conflicts,
      applyErrors: acted.errors,
      scheduler,
      ...(scaling ? { autoscaling: scaling.input } : {}),
      now: this.d.clock.now(),
    });
    if (written) {
      this.written.set(key, { uid: observed.rm.metadata.uid!, status, atMs: this.d.clock.now().getTime() });
      this.d.log.debug('status updated', { recmodel: key, ready: status.ready });
    }
    return status;
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
    for (const e of decision.rollout?.events ?? []) await this.d.events.emit(rm, e.type, e.reason, e.message);
    const applied = await applyDesired(this.d, observed, decision.desired, this.applied);
    applied.errors.push(...(await pruneStale(this.d, rm, decision.stale, plan.hash, decision.scaling)));
    // the Deployments the rollout keeps as they are (an old version's, the main while new shards start) are live too
    const appliedNames = new Set(applied.deployments.map((d) => d.metadata!.name));
    applied.deployments.push(
      ...(decision.rollout?.retain ?? []).filter((o) => o.kind === 'Deployment' && !appliedNames.has(o.metadata!.name)).map((o) => o as V1Deployment),
    );
    return applied;
  }

  private async autoscale(autoscaler: Autoscaler, observed: Observed, decision: Decision, deployments: V1Deployment[]): Promise<AutoscalerResult> {
    const hpas = [...observed.owned, ...observed.foreign].filter((o) => o.kind === 'HorizontalPodAutoscaler') as V2HorizontalPodAutoscaler[];
    return autoscaler.run(observed.rm, decision.spec!, deployments, decision.scaling!, hpas);
  }
}
