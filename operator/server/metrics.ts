// The operator's own Prometheus metrics, in an explicit registry.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class OperatorMetrics {
  readonly reconcileDuration: Histogram<'result'>;
  readonly reconcileErrors: Counter<'reason'>;
  readonly queueDepth: Gauge;
  readonly leader: Gauge;
  readonly applies: Counter<'kind'>;
  readonly scalingDecisions: Counter<'direction' | 'reason'>;
  readonly metricQueryFailures: Counter<'source'>;
  readonly desiredReplicas: Gauge<'namespace' | 'recmodel' | 'component'>;

  constructor(readonly registry: Registry = new Registry()) {
    collectDefaultMetrics({ register: registry, prefix: 'recshard_operator_' });
    this.reconcileDuration = new Histogram({
      name: 'recshard_operator_reconcile_duration_seconds',
      help: 'Time to reconcile one RecModel, by result (success, error, requeue).',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.reconcileErrors = new Counter({
      name: 'recshard_operator_reconcile_errors_total',
      help: 'Reconciles that failed and were retried with backoff, by reason.',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.queueDepth = new Gauge({ name: 'recshard_operator_workqueue_depth', help: 'Keys waiting in the work queue.', registers: [registry] });
    this.leader = new Gauge({ name: 'recshard_operator_leader', help: '1 while this replica holds the leader lease.', registers: [registry] });
    this.applies = new Counter({
      name: 'recshard_operator_applies_total',
      help: 'Server-side applies of child objects, by kind.',
      labelNames: ['kind'],
      registers: [registry],
    });
    this.scalingDecisions = new Counter({
      name: 'recshard_operator_scaling_decisions_total',
      help: 'Replica changes the latency autoscaler made, by direction (up, down) and reason.',
      labelNames: ['direction', 'reason'],
      registers: [registry],
    });
    this.metricQueryFailures = new Counter({
      name: 'recshard_operator_metric_query_failures_total',
      help: 'Latency reads that failed, by source (prometheus, scrape).',
      labelNames: ['source'],
      registers: [registry],
    });
    this.desiredReplicas = new Gauge({
      name: 'recshard_operator_desired_replicas',
      help: 'Replicas the latency autoscaler wants for each component.',
      labelNames: ['namespace', 'recmodel', 'component'],
      registers: [registry],
    });
  }
}
