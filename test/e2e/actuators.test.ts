// HPA and KEDA actuators against the real control plane: a policy with actuator HPA makes the operator emit one
// autoscaling/v2 HPA per component, which the real kube-controller-manager's HPA controller then evaluates. No
// external metrics API is registered here, so its metric read fails: the HPA holds the replicas and the
// RecModel says MetricsUnavailable with the HPA's own reason (the safe failure the policy promises). Moving the
// policy to KEDA replaces the HPAs by ScaledObjects that KEDA's real CRD (from its Go module) accepts; moving it
// back to the operator's own law deletes them. KEDA's operator itself does not run here.
import { join } from 'node:path';
import type { V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { ensureBinaries } from '../../local-cluster/harness.js';
import type { LatencyScalingPolicy, RecModel } from '../../operator/api/v1alpha1/index.js';
import { customModel } from '../fixtures.js';
import {
  applyYaml,
  childNames,
  condition,
  createNamespace,
  deleteNamespace,
  getRecModel,
  installCrd,
  kubectl,
  kubectlJson,
  servingVersion,
  shardNameOf,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from './support.js';

const KEDA_VERSION = 'v2.18.1'; // as local-cluster/build-control-plane.sh fetches it
const NAME = 'act';
const rm: RecModel = {
  apiVersion: 'recshard.io/v1alpha1',
  kind: 'RecModel',
  metadata: { name: NAME },
  spec: {
    model: customModel(),
    sharding: { strategy: 'load-balanced', shards: 2 },
  } as RecModel['spec'],
};

let ns: string;
let policyName: string;
let op: OperatorProcess | undefined;

const policy = (actuator: string, missingMetrics = 'Hold'): LatencyScalingPolicy => ({
  apiVersion: 'recshard.io/v1alpha1',
  kind: 'LatencyScalingPolicy',
  metadata: { name: policyName },
  spec: {
    target: { latency: '150ms' },
    interval: '5s',
    window: '30s',
    scaleOn: 'all',
    actuator,
    missingMetrics,
    main: { minReplicas: 1, maxReplicas: 3 },
    sparse: { minReplicas: 1, maxReplicas: 5 },
    scaleDown: { stabilizationWindow: '2m', maxPods: 1, maxPercent: 10, period: '30s' },
  } as LatencyScalingPolicy['spec'],
});
/** The main's and the two shards' names (the Deployment's, its HPA's or ScaledObject's): the shards' carry the serving version. */
const components = () => [`${NAME}-main`, shardNameOf(ns, NAME, 0), shardNameOf(ns, NAME, 1)];
const replicas = () => components().map((d) => kubectlJson<{ spec: { replicas: number } }>(['get', 'deployment', d, '-n', ns, '-o', 'json']).spec.replicas);

beforeAll(async () => {
  installCrd();
  const crd = join(inject('clusterBinDir') || ensureBinaries(), `keda-${KEDA_VERSION}-scaledobjects.yaml`);
  kubectl(['apply', '--server-side', '--force-conflicts', '-f', crd]);
  kubectl(['wait', '--for=condition=Established', 'crd/scaledobjects.keda.sh', '--timeout=60s']);
  ns = createNamespace('actuators');
  policyName = `hpa-${ns}`;
  kubectl(['apply', '-f', '-'], JSON.stringify(policy('HPA')));
  // KEDA's trigger needs a Prometheus address; nothing reads it here
  op = await startOperator(ns, { extraArgs: ['--prometheus-url=http://prometheus.monitoring.svc:9090', '--serving-poll=0'] });
  applyYaml(ns, [{ ...rm, spec: { ...rm.spec, autoscaling: { enabled: true, policyRef: { name: policyName } } } }]);
});

afterAll(async () => {
  await op?.stop();
  if (ns) deleteNamespace(ns);
  if (policyName) kubectl(['delete', 'latencyscalingpolicy', policyName, '--ignore-not-found']);
});

describe('actuator HPA', () => {
  it("emits one HPA v2 per component, on its latency percentile, within the policy's bounds and rate limits", async () => {
    await waitUntil('three HPAs and the serving version', () => childNames(ns, 'hpa', NAME).length === 3 && servingVersion(ns, NAME), 60_000);
    expect(childNames(ns, 'hpa', NAME)).toEqual(components());
    const shard1 = shardNameOf(ns, NAME, 1);
    const shard = kubectlJson<V2HorizontalPodAutoscaler>(['get', 'hpa', shard1, '-n', ns, '-o', 'json']);
    expect(shard.metadata!.ownerReferences).toEqual([expect.objectContaining({ kind: 'RecModel', name: NAME, controller: true })]);
    expect(shard.metadata!.labels).toMatchObject({ 'recshard.io/shard': '1', 'recshard.io/version': servingVersion(ns, NAME) });
    expect(shard.spec).toMatchObject({ scaleTargetRef: { kind: 'Deployment', name: shard1 }, minReplicas: 1, maxReplicas: 5 });
    expect(shard.spec!.metrics).toEqual([
      {
        type: 'External',
        external: {
          metric: { name: 'recshard_latency_p95_30s_seconds', selector: { matchLabels: { model: NAME, role: 'sparse', stage: 'end_to_end', shard: '1' } } },
          target: { type: 'Value', value: '150m' },
        },
      },
    ]);
    expect(shard.spec!.behavior!.scaleDown).toMatchObject({
      stabilizationWindowSeconds: 120,
      policies: [
        { type: 'Pods', value: 1, periodSeconds: 30 },
        { type: 'Percent', value: 10, periodSeconds: 30 },
      ],
    });
    const main = kubectlJson<V2HorizontalPodAutoscaler>(['get', 'hpa', `${NAME}-main`, '-n', ns, '-o', 'json']);
    expect(main.spec).toMatchObject({ minReplicas: 1, maxReplicas: 3 });
  });

  it('holds the replicas when the HPA controller cannot read the metric, and the RecModel says why', async () => {
    // the real HPA controller reports its failed external-metric read on the HPA
    const failing = await waitUntil(
      'the HPA controller evaluated',
      () => {
        const h = kubectlJson<V2HorizontalPodAutoscaler>(['get', 'hpa', shardNameOf(ns, NAME, 0), '-n', ns, '-o', 'json']);
        return h.status?.conditions?.find((c) => c.type === 'ScalingActive' && c.status === 'False');
      },
      90_000,
      1000,
    );
    expect(failing.reason).toBe('FailedGetExternalMetric');
    const status = await waitUntil(
      'MetricsUnavailable from the HPAs',
      () => {
        const r = getRecModel(ns, NAME);
        return condition(r, 'MetricsUnavailable')?.status === 'True' ? r : undefined;
      },
      60_000,
      1000,
    );
    expect(condition(status, 'MetricsUnavailable')).toMatchObject({
      reason: 'SourceFailed',
      message: expect.stringMatching(/FailedGetExternalMetric.*the HPA holds replicas/),
    });
    expect(condition(status, 'ScalingActive')).toMatchObject({ status: 'True', reason: 'ScalingByHPA' });
    expect(status.status!.autoscaling).toMatchObject({ policy: policyName, actuator: 'HPA', target: '150ms' });
    expect(replicas()).toEqual([1, 1, 1]);
    // apply leaves replicas to the HPA: scaling a shard by hand (as the HPA would) survives the next reconcile
    kubectl(['scale', 'deployment', shardNameOf(ns, NAME, 0), '-n', ns, '--replicas=2']);
    kubectl(['annotate', 'recmodel', NAME, '-n', ns, `touch=${Date.now()}`, '--overwrite']);
    await new Promise((r) => setTimeout(r, 3000));
    expect(replicas()).toEqual([1, 2, 1]);
  });
});

describe('actuator KEDA, then back to the operator', () => {
  it("replaces the HPAs by ScaledObjects that KEDA's CRD accepts, and says it waits for KEDA", async () => {
    kubectl(['apply', '-f', '-'], JSON.stringify(policy('KEDA', 'ScaleUp')));
    await waitUntil(
      'ScaledObjects instead of HPAs',
      () => childNames(ns, 'scaledobjects.keda.sh', NAME).length === 3 && childNames(ns, 'hpa', NAME).length === 0,
      60_000,
      500,
    );
    expect(childNames(ns, 'scaledobjects.keda.sh', NAME)).toEqual(components());
    const so = kubectlJson<{ spec: Record<string, any> }>(['get', 'scaledobjects.keda.sh', shardNameOf(ns, NAME, 1), '-n', ns, '-o', 'json']);
    expect(so.spec).toMatchObject({
      scaleTargetRef: { name: shardNameOf(ns, NAME, 1) },
      minReplicaCount: 1,
      maxReplicaCount: 5,
      pollingInterval: 5,
      fallback: { failureThreshold: 3, replicas: 5, behavior: 'currentReplicasIfHigher' },
    });
    expect(so.spec.triggers[0]).toMatchObject({
      type: 'prometheus',
      metricType: 'Value',
      metadata: { serverAddress: 'http://prometheus.monitoring.svc:9090', threshold: '0.15', ignoreNullValues: 'false' },
    });
    expect(so.spec.triggers[0].metadata.query).toContain(`namespace="${ns}",model="${NAME}",role="sparse",stage="end_to_end",shard="1"`);
    const r = await waitUntil(
      'waiting for KEDA',
      () => {
        const m = getRecModel(ns, NAME);
        return condition(m, 'ScalingActive')?.reason === 'AutoscalerPending' ? m : undefined;
      },
      30_000,
      500,
    );
    expect(condition(r, 'ScalingActive')!.message).toMatch(new RegExp(`keda-hpa-${NAME}-main.*is KEDA running`));
    const events = kubectl(['get', 'events', '-n', ns, '--field-selector', 'reason=DeletedAutoscaler', '-o', 'jsonpath={.items[*].message}']);
    expect(events).toMatch(new RegExp(`deleted HorizontalPodAutoscaler ${NAME}-main: policy ${policyName} uses actuator KEDA`));
    expect(replicas()).toEqual([1, 2, 1]);
  });

  it("deletes the ScaledObjects when the policy goes back to the operator's own law", async () => {
    kubectl(['apply', '-f', '-'], JSON.stringify(policy('Operator')));
    await waitUntil('no ScaledObjects', () => childNames(ns, 'scaledobjects.keda.sh', NAME).length === 0, 60_000, 500);
    const r = await waitUntil(
      'the operator scaling',
      () => {
        const m = getRecModel(ns, NAME);
        return m.status?.autoscaling?.actuator === 'Operator' ? m : undefined;
      },
      30_000,
      500,
    );
    expect(condition(r, 'ScalingActive')).toMatchObject({ status: 'True', reason: 'ScalingOnLatency' });
  });
});
