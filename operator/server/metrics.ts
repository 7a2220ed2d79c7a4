// The operator's own Prometheus metrics, in an explicit registry. Per-RecModel series (conditions, latency
// against the policy's target, desired replicas) are what the chart's alerts and dashboard read.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Label } from '../../contracts/metrics.js';
import type { Condition } from '../api/v1alpha1/index.js';
import type { AutoscalingInput } from '../autoscaling/state.js';

type ModelLabels = typeof Label.namespace | typeof Label.model;

export class OperatorMetrics {
  readonly reconcileDuration: Histogram<'result'>;
  readonly reconcileErrors: Counter<'reason'>;
  readonly queueDepth: Gauge;
  readonly leader: Gauge;
  readonly applies: Counter<'kind'>;
  readonly scalingDecisions: Counter<'direction' | 'reason'>;
  readonly metricQueryFailures: Counter<'source'>;
  readonly desiredReplicas: Gauge<ModelLabels | 'component'>;
  readonly condition: Gauge<ModelLabels | 'type' | 'status' | 'reason'>;
  readonly latency: Gauge<ModelLabels | 'component' | 'role'>;
  readonly latencyTarget: Gauge<ModelLabels | 'percentile'>;
  /** The series set for each model ("ns/name"), so a model's series can be replaced or removed whole. */
  private readonly series = new Map<string, { gauge: Gauge<string>; labels: Record<string, string> }[]>();

  constructor(readonly registry: Registry = new Registry()) {
    collectDefaultMetrics({ register: registry, prefix: 'recshard_operator_' });
    const registers = [registry];
    const perModel = [Label.namespace, Label.model] as const;
    this.reconcileDuration = new Histogram({
      name: 'recshard_operator_reconcile_duration_seconds',
      help: 'Time to reconcile one RecModel, by result (success, error, requeue).',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: 'recshard_operator_reconcile_errors_total',
      help: 'Reconciles that failed and were retried with backoff, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.queueDepth = new Gauge({ name: 'recshard_operator_workqueue_depth', help: 'Keys waiting in the work queue.', registers });
    this.leader = new Gauge({ name: 'recshard_operator_leader', help: '1 while this replica holds the leader lease.', registers });
    this.applies = new Counter({
      name: 'recshard_operator_applies_total',
      help: 'Server-side applies of child objects, by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.scalingDecisions = new Counter({
      name: 'recshard_operator_scaling_decisions_total',
      help: 'Replica changes the latency autoscaler made, by direction (up, down) and reason.',
      labelNames: ['direction', 'reason'],
      registers,
    });
    this.metricQueryFailures = new Counter({
      name: 'recshard_operator_metric_query_failures_total',
      help: 'Latency reads that failed, by source (prometheus, scrape).',
      labelNames: ['source'],
      registers,
    });
    this.desiredReplicas = new Gauge({
      name: 'recshard_operator_desired_replicas',
      help: 'Replicas the latency autoscaler wants for each component.',
      labelNames: [...perModel, 'component'],
      registers,
    });
    this.condition = new Gauge({
      name: 'recshard_operator_recmodel_condition',
      help: 'Each RecModel condition, 1 for its current type, status and reason.',
      labelNames: [...perModel, 'type', 'status', 'reason'],
      registers,
    });
    this.latency = new Gauge({
      name: 'recshard_operator_latency_seconds',
      help: "Latency of each component at its LatencyScalingPolicy's percentile, as last evaluated (the main: end to end).",
      labelNames: [...perModel, 'component', Label.role],
      registers,
    });
    this.latencyTarget = new Gauge({
      name: 'recshard_operator_latency_target_seconds',
      help: 'The latency target of the LatencyScalingPolicy in force for each RecModel, at its percentile.',
      labelNames: [...perModel, 'percentile'],
      registers,
    });
  }

  /**
   * Replaces one RecModel's series with what its latest status says: its conditions and, under a policy, the
   * target and each component's latency. Desired replicas are set by the autoscaler as it decides and are kept.
   */
  recordModel(namespace: string, model: string, conditions: Condition[], scaling: AutoscalingInput | undefined): void {
    const key = `${namespace}/${model}`;
    this.forgetModel(namespace, model, (s) => s.gauge !== this.desiredReplicas);
    const set = this.series.get(key) ?? []; // what is left: the desired replicas
    const put = (gauge: Gauge<string>, labels: Record<string, string>, value: number) => {
      gauge.set({ namespace, model, ...labels }, value);
      set.push({ gauge, labels: { namespace, model, ...labels } });
    };
    for (const c of conditions) put(this.condition, { type: c.type, status: c.status, reason: c.reason }, 1);
    if (scaling && scaling.state !== 'refused') {
      put(this.latencyTarget, { percentile: String(scaling.policy.percentile) }, scaling.policy.targetMs / 1000);
      const components =
        scaling.state === 'external'
          ? scaling.views.map((v) => ({ component: v.deployment, role: v.role, ms: v.latencyMs }))
          : (scaling.evaluation?.components ?? []).map((c) => ({ component: c.name, role: c.role, ms: c.latencyMs }));
      for (const c of components) if (c.ms !== undefined) put(this.latency, { component: c.component, role: c.role }, c.ms / 1000);
    }
    this.series.set(key, set);
  }

  /** Sets a component's desired replicas (the autoscaler's decision). */
  recordDesired(namespace: string, model: string, component: string, replicas: number): void {
    const labels = { namespace, model, component };
    this.desiredReplicas.set(labels, replicas);
    const key = `${namespace}/${model}`;
    const list = (this.series.get(key) ?? []).filter((s) => !(s.gauge === this.desiredReplicas && s.labels.component === component));
    this.series.set(key, [...list, { gauge: this.desiredReplicas, labels }]);
  }

  /** Removes a model's series (all of them, or those `which` selects): a deleted model leaves none behind. */
  forgetModel(namespace: string, model: string, which: (s: { gauge: Gauge<string> }) => boolean = () => true): void {
    const key = `${namespace}/${model}`;
    const list = this.series.get(key) ?? [];
    for (const s of list.filter(which)) s.gauge.remove(s.labels);
    const rest = list.filter((s) => !which(s));
    if (rest.length) this.series.set(key, rest);
    else this.series.delete(key);
  }
}
