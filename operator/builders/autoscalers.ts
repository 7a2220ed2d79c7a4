// Desired HPA v2 or KEDA ScaledObject children for a policy whose actuator is HPA or KEDA: one per component
// Deployment, scaling it on its own latency percentile. Pure, like the other builders; the PromQL they rely on
// (the KEDA trigger's query, the prometheus-adapter rule HPA's external metric needs) is written here too.
import type { KubernetesObject, V2HorizontalPodAutoscaler, V2HPAScalingRules } from '@kubernetes/client-node';
import { Label, Metric } from '../../contracts/metrics.js';
import { seconds, type EffectivePolicy, type RateLimit } from '../autoscaling/policy.js';
import { componentLabels, type Role } from './labels.js';
import { childMeta, type Owner } from './meta.js';
import { componentName } from './names.js';

export const KEDA_API_VERSION = 'keda.sh/v1alpha1';
export const SCALED_OBJECT = 'ScaledObject';
/** The kinds of the autoscaler objects the policy's actuator may call for. */
export const AUTOSCALER_KINDS = new Set(['HorizontalPodAutoscaler', SCALED_OBJECT]);

export interface ScaledComponent {
  role: Role;
  shard?: number;
  /** A shard's serving version (its Deployment's name carries it). */
  version?: string;
}

const METRIC = Metric.requestDuration;

const promDuration = (ms: number) => `${Math.max(1, Math.round(ms / 1000))}s`;
/** 150 -> "150m", 0.5 -> "500u": a Kubernetes quantity of seconds, canonical as the API server stores it. */
const quantitySeconds = (ms: number) => (Number.isInteger(ms) ? `${ms}m` : `${Math.round(ms * 1000)}u`);
/** 150 -> "0.15" (seconds, as PromQL and KEDA thresholds write them). */
const secondsText = (ms: number) => String(Math.round(ms * 1000) / 1e6);

/** The external metric name HPA reads: the percentile and window are in the name (one adapter rule each). */
export function hpaMetricName(p: Pick<EffectivePolicy, 'percentile' | 'windowMs'>): string {
  return `recshard_latency_p${String(p.percentile).replace('.', '_')}_${promDuration(p.windowMs)}_seconds`;
}

/** The series labels that pick one component's end-to-end latency (namespace comes from the scrape). */
export function componentSeriesLabels(model: string, c: ScaledComponent): Record<string, string> {
  return { [Label.model]: model, [Label.role]: c.role, [Label.stage]: 'end_to_end', ...(c.shard !== undefined ? { [Label.shard]: String(c.shard) } : {}) };
}

/**
 * The percentile over the window, in seconds; 0 when the component has series but served nothing (an idle
 * component is fast, not unknown), and no result at all when it has no series (scrape broken, Prometheus
 * empty), which KEDA with ignoreNullValues=false and the adapter both report as an error: the HPA then holds
 * instead of scaling to its floor.
 */
export function latencyQuery(percentile: number, windowMs: number, selector: string): string {
  const w = promDuration(windowMs);
  const quantile = `histogram_quantile(${percentile / 100}, sum by (le) (rate(${METRIC}_bucket{${selector}}[${w}])))`;
  return `(${quantile} >= 0) or (sum(rate(${METRIC}_count{${selector}}[${w}])) == 0)`;
}

function behaviorRules(r: RateLimit): V2HPAScalingRules {
  return {
    stabilizationWindowSeconds: seconds(r.stabilizationMs),
    selectPolicy: 'Max',
    policies: [
      { type: 'Pods', value: r.maxPods, periodSeconds: seconds(r.periodMs) },
      { type: 'Percent', value: r.maxPercent, periodSeconds: seconds(r.periodMs) },
    ],
  };
}

const bounds = (p: EffectivePolicy, c: ScaledComponent) => (c.role === 'main' ? p.main : p.sparse);

export function buildHpa(owner: Owner, p: EffectivePolicy, c: ScaledComponent): V2HorizontalPodAutoscaler {
  const name = componentName(owner.name, c.role, c.shard, c.version);
  const b = bounds(p, c);
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: childMeta(owner, name, componentLabels(owner.name, c.role, c.shard, c.version)),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicas: b.min,
      maxReplicas: b.max,
      metrics: [
        {
          type: 'External',
          external: {
            metric: { name: hpaMetricName(p), selector: { matchLabels: componentSeriesLabels(owner.name, c) } },
            target: { type: 'Value', value: quantitySeconds(p.targetMs) },
          },
        },
      ],
      behavior: { scaleUp: behaviorRules(p.scaleUp), scaleDown: behaviorRules(p.scaleDown) },
    },
  };
}

export function buildScaledObject(
  owner: Owner,
  p: EffectivePolicy,
  c: ScaledComponent,
  prometheusUrl: string,
): KubernetesObject & { spec: Record<string, unknown> } {
  const name = componentName(owner.name, c.role, c.shard, c.version);
  const b = bounds(p, c);
  const selector = Object.entries({ [Label.namespace]: owner.namespace, ...componentSeriesLabels(owner.name, c) })
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  const threshold = secondsText(p.targetMs);
  // KEDA's fallback needs a scaling modifier to accept a Value metric; it is how missingMetrics ScaleUp is said.
  const scaleUp = p.missingMetrics === 'ScaleUp';
  return {
    apiVersion: KEDA_API_VERSION,
    kind: SCALED_OBJECT,
    metadata: childMeta(owner, name, componentLabels(owner.name, c.role, c.shard, c.version)),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      pollingInterval: Math.max(1, seconds(p.intervalMs)),
      minReplicaCount: b.min,
      maxReplicaCount: b.max,
      advanced: {
        horizontalPodAutoscalerConfig: { behavior: { scaleUp: behaviorRules(p.scaleUp), scaleDown: behaviorRules(p.scaleDown) } },
        ...(scaleUp ? { scalingModifiers: { formula: 'latency', target: threshold, metricType: 'Value' } } : {}),
      },
      triggers: [
        {
          type: 'prometheus',
          name: 'latency',
          metricType: 'Value',
          metadata: { serverAddress: prometheusUrl, query: latencyQuery(p.percentile, p.windowMs, selector), threshold, ignoreNullValues: 'false' },
        },
      ],
      ...(scaleUp ? { fallback: { failureThreshold: 3, replicas: b.max, behavior: 'currentReplicasIfHigher' } } : {}),
    },
  };
}

/** The policy's autoscaler objects for these components: HPAs, ScaledObjects, or none under the operator's own law. */
export function buildAutoscalers(owner: Owner, p: EffectivePolicy, components: ScaledComponent[], prometheusUrl: string | undefined): KubernetesObject[] {
  if (p.actuator === 'HPA') return components.map((c) => buildHpa(owner, p, c));
  if (p.actuator === 'KEDA') return components.map((c) => buildScaledObject(owner, p, c, prometheusUrl!));
  return [];
}

/**
 * prometheus-adapter's externalRules entry that serves hpaMetricName(p): the same query as KEDA's, with the
 * HPA's selector (and its namespace) as label matchers.
 */
export function adapterRule(p: Pick<EffectivePolicy, 'percentile' | 'windowMs'>) {
  return {
    seriesQuery: `${METRIC}_bucket{${Label.namespace}!="",${Label.model}!="",${Label.stage}="end_to_end"}`,
    resources: { overrides: { [Label.namespace]: { resource: 'namespace' } } },
    name: { matches: `^${METRIC}_bucket$`, as: hpaMetricName(p) },
    metricsQuery: latencyQuery(p.percentile, p.windowMs, '<<.LabelMatchers>>').replaceAll(`${METRIC}_bucket{`, '<<.Series>>{'),
  };
}
