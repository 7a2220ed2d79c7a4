// Latency autoscaling end to end: the real control plane, the operator process, real shard-server pods on the
// cluster's real node, and the real Prometheus discovering and scraping them as the chart's PodMonitor does, so
// the replicas the operator asks for are pods that start, load the model and serve. Shard 1 is the slow one (an
// emulated 50 ms serial service time, 20 requests/s per pod, set in its Deployment's environment); open-loop
// load past its capacity must scale shard 1 and nothing else until the main's p95 is back under the target;
// without the load it scales down only after a stabilization window of low latency; with Prometheus gone,
// replicas hold and MetricsUnavailable says why. DEBUG_AUTOSCALING=1 prints the replicas and latency the test saw
// each second, the final status and the operator's scaling log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel, resolveLocal } from '../../cli/local.js';
import { durationMs } from '../../lib/duration.js';
import type { LatencyScalingPolicy, RecModel } from '../../operator/api/v1alpha1/index.js';
import { latencyQuery } from '../../operator/builders/autoscalers.js';
import { startPrometheus, type PrometheusServer } from './prometheus.js';
import { createRealNamespace, modelVolume, nodeHttp, podMetricsUrl, realNode, serviceUrl } from './real-pods.js';
import {
  applyYaml,
  client,
  deleteNamespace,
  installCrd,
  kubeconfig,
  kubectl,
  kubectlJson,
  ROOT,
  shardNameOf,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from './support.js';

const NAME = 'ncf-scale';
const TARGET_MS = 150;
const rm: RecModel = {
  apiVersion: 'recshard.io/v1alpha1',
  kind: 'RecModel',
  metadata: { name: NAME },
  spec: {
    model: {
      architecture: 'ncf',
      denseFeatures: 0,
      topMLP: [32, 1],
      tables: [
        { name: 'users', rows: 20_000, dim: 16, net: 'user' },
        { name: 'items', rows: 20_000, dim: 16, net: 'item' },
      ],
    },
    artifact: { uri: 'file:///models/ncf', volume: { persistentVolumeClaim: { claimName: 'models', readOnly: true } } },
    sharding: { strategy: 'net-specific' },
    serving: { scheduler: 'fixed', batchSize: 1024 },
    // small requests: up to 3 + 4 + 4 pods share the node's two cores
    placement: {
      main: { resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } } },
      sparse: { resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } } },
    },
  } as RecModel['spec'],
};
const BOUNDS = { main: { min: 1, max: 3 }, sparse: { min: 1, max: 4 } };
const STABILIZATION_S = 20;

let ns: string;
let policyName: string;
let op: OperatorProcess | undefined;
let prom: PrometheusServer | undefined;
let mainUrl: string;
let load: ChildProcess | undefined;
const api = client();
const history: { t: number; replicas: Record<string, number>; latencyMs?: number }[] = [];
let sampler: NodeJS.Timeout | undefined;
/** The two shards' Deployments (their names carry the serving version, which stays the same throughout). */
let shard0: string;
let shard1: string;
const MAIN = `${NAME}-main`;

const deployments = () => [MAIN, shard0, shard1];
async function replicas(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const d of deployments()) out[d] = (await api.apps.readNamespacedDeployment({ name: d, namespace: ns })).spec?.replicas ?? 1;
  return out;
}
/** Pods serving (Ready) per component (its Deployment). */
const readyPods = (deployment: string) =>
  kubectlJson<{ status: { readyReplicas?: number } }>(['get', 'deployment', deployment, '-n', ns]).status.readyReplicas ?? 0;
const recModel = async () =>
  (await api.custom.getNamespacedCustomObject({ group: 'recshard.io', version: 'v1alpha1', namespace: ns, plural: 'recmodels', name: NAME })) as RecModel;
const cond = (r: RecModel, type: string) => r.status?.conditions?.find((c) => c.type === type);

/** An instant query against this Prometheus; fails the test unless Prometheus accepts it. */
async function promQuery(query: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${prom!.url}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query }) });
  const body = (await res.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  expect(body.status, `${query}: ${body.error}`).toBe('success');
  return body.data.result;
}

/** The query a KEDA actuator's trigger runs for one component (builders/autoscalers.ts), against this Prometheus. */
async function kedaQuery(labels: string): Promise<number[]> {
  return (await promQuery(latencyQuery(95, 10_000, `namespace="${ns}",${labels}`))).map((r) => Number(r.value[1]));
}

/** The load generator inside the node's network namespace, through the main's Service. */
function startLoad(qps: number): ChildProcess {
  return spawn(
    'nsenter',
    [
      `--net=${realNode().network.netns}`,
      '--',
      process.execPath,
      join(ROOT, 'dist', 'cli', 'recshard.js'),
      'load',
      `--url=${mainUrl}`,
      `--model=${NAME}`,
      '--sizes=fixed:4',
      `--qps=${qps}`,
      '--duration=600',
      '--timeout-ms=5000',
    ],
    { stdio: 'ignore' },
  );
}
const stopLoad = async () => {
  const p = load;
  load = undefined;
  if (!p || p.exitCode !== null) return;
  await new Promise<void>((r) => {
    p.once('exit', () => r());
    p.kill('SIGKILL');
  });
};

beforeAll(async () => {
  installCrd();
  kubectl(['wait', '--for=condition=Established', 'crd/latencyscalingpolicies.recshard.io', '--timeout=60s']);
  ns = createRealNamespace('scale');
  policyName = `fast-${ns}`;
  const dir = mkdtempSync(join(tmpdir(), 'recshard-autoscaling-'));
  // the model, generated here, into a claim the pods mount (one of the node's hostpath volumes)
  const volume = await modelVolume(ns);
  const { spec } = resolveLocal(rm);
  cpSync(
    ensureModel(rm, spec, 1, 3, () => {}),
    join(volume, 'ncf'),
    {
      recursive: true,
    },
  );
  prom = await startPrometheus({ dir: join(dir, 'prometheus'), namespace: ns, kubeconfig: kubeconfig(), node: realNode() });
  const policy: LatencyScalingPolicy = {
    apiVersion: 'recshard.io/v1alpha1',
    kind: 'LatencyScalingPolicy',
    metadata: { name: policyName },
    spec: {
      target: { percentile: 95, latency: `${TARGET_MS}ms` },
      tolerance: 0.1,
      interval: '2s',
      window: '10s',
      warmup: '2s',
      main: { minReplicas: BOUNDS.main.min, maxReplicas: BOUNDS.main.max },
      sparse: { minReplicas: BOUNDS.sparse.min, maxReplicas: BOUNDS.sparse.max },
      scaleUp: { stabilizationWindow: '0s', maxPods: 1, maxPercent: 100, period: '4s' },
      scaleDown: { stabilizationWindow: `${STABILIZATION_S}s`, maxPods: 1, maxPercent: 50, period: '4s' },
      scaleOn: 'critical-path',
    },
  };
  kubectl(['apply', '-f', '-'], JSON.stringify(policy));
  op = await startOperator(ns, { extraArgs: [`--prometheus-url=${prom.url}`, '--serving-poll=0'] });
  applyYaml(ns, [{ ...rm, spec: { ...rm.spec, autoscaling: { enabled: true, policyRef: { name: policyName } } } }]);
  await waitUntil('the serving version', () => recModel().then((m) => m.status?.rollout?.toVersion), 60_000, 500);
  shard0 = shardNameOf(ns, NAME, 0);
  shard1 = shardNameOf(ns, NAME, 1);
  await waitUntil('the shard Deployments', () => kubectl(['get', 'deployment', shard1, '-n', ns, '--ignore-not-found']) !== '', 60_000, 500);
  // the slow shard: its pods hold a serial lane 50 ms per request (the operator leaves other fields' env alone;
  // a change of env is no new serving version, so the shard keeps its name)
  kubectl(['set', 'env', '-n', ns, `deployment/${shard1}`, 'RECSHARD_EMULATE_SERVICE_MS=50']);
  await waitUntil(
    'every component serving, shard 1 slow',
    () => {
      const d = kubectlJson<{ status: { updatedReplicas?: number; readyReplicas?: number; replicas?: number } }>(['get', 'deployment', shard1, '-n', ns]);
      return readyPods(MAIN) === 1 && readyPods(shard0) === 1 && d.status.updatedReplicas === 1 && d.status.readyReplicas === 1 && d.status.replicas === 1;
    },
    120_000,
    500,
  );
  mainUrl = serviceUrl(ns, MAIN);
  sampler = setInterval(() => {
    void Promise.all([replicas(), recModel()])
      .then(([r, m]) => {
        const l = m.status?.autoscaling?.mainLatency;
        history.push({ t: Date.now(), replicas: r, ...(l ? { latencyMs: durationMs(l) } : {}) });
      })
      .catch(() => {});
  }, 1000);
});

afterAll(async () => {
  clearInterval(sampler);
  if (process.env.DEBUG_AUTOSCALING) {
    console.log(history.map((h) => `${Math.round((h.t - history[0]!.t) / 1000)} ${Object.values(h.replicas).join('/')} ${h.latencyMs}`).join('\n'));
    console.log(JSON.stringify((await recModel()).status?.components, null, 1));
    console.log(
      op
        ?.logs()
        .split('\n')
        .filter((l) => /scaled|autoscaling decision.*shard-1|error|warn/i.test(l))
        .slice(-30)
        .join('\n'),
    );
  }
  await stopLoad();
  await op?.stop();
  await prom?.stop();
  if (ns) deleteNamespace(ns);
  if (policyName) kubectl(['delete', 'latencyscalingpolicy', policyName, '--ignore-not-found']);
});

describe('latency autoscaling on the critical path', () => {
  it('adds pods to the shard that dominates the tail, and only to it, until the p95 is back under the target', async () => {
    load = startLoad(16); // shard 1 alone serves 20/s: 80% busy, its queue pushes the main's p95 far over 150 ms
    await waitUntil('shard 1 scaled up', async () => ((await replicas())[shard1]! >= 2 ? true : undefined), 90_000, 1000);
    const now = await replicas();
    expect(now[MAIN]).toBe(1);
    expect(now[shard0]).toBe(1);
    const status = await waitUntil(
      'the scale in status',
      async () => {
        const st = (await recModel()).status;
        return st?.components?.find((c) => c.name === shard1)?.lastScaleReason ? st : undefined;
      },
      30_000,
      500,
    );
    expect(status.autoscaling).toMatchObject({ policy: policyName, percentile: 95, target: '150ms', criticalComponent: shard1 });
    expect(status.components!.find((c) => c.name === shard1)!.lastScaleReason).toMatch(/^LatencyAboveTarget/);
    expect(cond(await recModel(), 'ScalingActive')).toMatchObject({ status: 'True', reason: 'ScalingOnLatency' });

    // the loop closes: the added pods serve, and once a whole window has seen them the main's p95 is back
    // under the target
    await waitUntil('a second shard 1 pod serving', () => readyPods(shard1) >= 2, 60_000, 500);
    const serving = Date.now();
    // the main found the new pods behind shard 1's headless Service and spreads its calls over them itself
    const mainMetrics = podMetricsUrl(ns, `app.kubernetes.io/instance=${NAME},app.kubernetes.io/component=main`);
    const known = () => Number(/^recshard_shard_replicas\{[^}]*shard="1"[^}]*\} (\d+)$/m.exec(nodeHttp(mainMetrics).text)?.[1] ?? 0);
    await waitUntil('the main knows the pods of shard 1', () => known() >= 2, 15_000, 500);
    const closed = await waitUntil(
      'p95 back under the target',
      async () => {
        const m = await recModel();
        const a = m.status?.autoscaling;
        const fresh = a?.lastEvaluationTime && Date.parse(a.lastEvaluationTime) >= serving + 10_000;
        return fresh && a.mainLatency && durationMs(a.mainLatency)! < TARGET_MS ? m : undefined;
      },
      90_000,
      1000,
    );
    // the same evaluation read the latency, so its condition says the metrics were there
    expect(cond(closed, 'MetricsUnavailable')).toMatchObject({ status: 'False', reason: 'MetricsAvailable' });
    const final = await replicas();
    expect(final[MAIN]).toBe(1);
    expect(final[shard0]).toBe(1);

    // the query a KEDA actuator would run picks one shard by its shard label: shard 1 (50 ms per request) reads
    // slower than shard 0, and a model without series reads nothing (an error to KEDA, so its HPA holds)
    const [slow] = await kedaQuery(`model="${NAME}",role="sparse",stage="end_to_end",shard="1"`);
    const [fast] = await kedaQuery(`model="${NAME}",role="sparse",stage="end_to_end",shard="0"`);
    expect(slow).toBeGreaterThanOrEqual(0.045);
    expect(fast).toBeLessThan(slow!);
    expect(await kedaQuery(`model="no-such-model",role="sparse",stage="end_to_end",shard="1"`)).toEqual([]);

    // the chart's Grafana dashboard, its variables filled in as Grafana would, against the same Prometheus: every
    // query runs, and each panel fed by the pods' own series shows this model (the operator's series and the
    // error counters are not scraped here)
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'charts', 'recshard', 'dashboards', 'recshard.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    for (const panel of dashboard.panels) {
      for (const t of panel.targets) {
        const series = await promQuery(t.expr.replaceAll('$__rate_interval', '1m').replaceAll('$namespace', ns).replaceAll('$model', NAME));
        if (!/recshard_operator_|errors_total|fallbacks_total/.test(t.expr)) expect(series.length, `${panel.title}: ${t.expr}`).toBeGreaterThan(0);
      }
    }
    const perShard = await promQuery(
      dashboard.panels
        .find((p) => p.title.startsWith('Per-shard call latency'))!
        .targets[0]!.expr.replaceAll('$__rate_interval', '1m')
        .replaceAll('$namespace', ns)
        .replaceAll('$model', NAME),
    );
    expect(perShard.map((r) => r.metric.shard).sort()).toEqual(['0', '1']);

    const events = (await api.core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.involvedObject.name === NAME);
    expect(events.some((e) => e.reason === 'ScaledUp' && e.message!.startsWith(`${shard1}: 1 -> 2 replicas (LatencyAboveTarget`))).toBe(true);
    expect(events.some((e) => e.reason === 'ScaledUp' && !e.message!.startsWith(shard1))).toBe(false);
    expect(await op!.metrics()).toMatch(/recshard_operator_scaling_decisions_total\{direction="up",reason="LatencyAboveTarget"\} [1-9]/);
  });

  it('scales down only after the latency stayed under the band for the stabilization window', async () => {
    // the load goes away: an idle main has no tail (status shows 0ms), which is under the band
    await stopLoad();
    const t0 = Date.now();
    const peak = (await replicas())[shard1]!;
    await waitUntil('shard 1 back to one replica', async () => ((await replicas())[shard1] === 1 ? true : undefined), 120_000, 1000);
    // the sampler reads on its own schedule: wait until its history holds the scale-down this poll just saw
    await waitUntil('the history to record it', () => (history.at(-1)?.replicas[shard1] === 1 ? true : undefined), 10_000, 200);
    // every scale-down of shard 1 was preceded by a stabilization window in which the p95 stayed under the band
    // (80% of the target), as status showed it
    const downs = history.filter((h, i) => i > 0 && h.t >= t0 - 5000 && h.replicas[shard1]! < history[i - 1]!.replicas[shard1]!);
    expect(downs.length).toBeGreaterThanOrEqual(Math.min(1, peak - 1));
    for (const d of downs) {
      const before = history.filter((h) => h.t >= d.t - (STABILIZATION_S - 3) * 1000 && h.t <= d.t - 3000 && h.latencyMs !== undefined);
      expect(before.length).toBeGreaterThan(5);
      expect(before.every((h) => h.latencyMs! < 0.8 * TARGET_MS)).toBe(true);
    }
    const events = (await api.core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.involvedObject.name === NAME && e.reason === 'ScaledDown');
    expect(events.some((e) => e.message!.startsWith(`${shard1}:`))).toBe(true);
    // idle is not missing: with series but no requests over the window, the KEDA query reads 0, not nothing
    await waitUntil(
      'an idle window',
      async () => ((await kedaQuery(`model="${NAME}",role="sparse",stage="end_to_end",shard="1"`))[0] === 0 ? true : undefined),
      30_000,
      1000,
    );
  });

  it('holds the replicas and sets MetricsUnavailable when Prometheus goes away', async () => {
    const before = await replicas();
    await prom!.stop();
    const c = await waitUntil(
      'MetricsUnavailable',
      async () => {
        const m = cond(await recModel(), 'MetricsUnavailable');
        return m?.status === 'True' ? m : undefined;
      },
      30_000,
      500,
    );
    expect(c.reason).toBe('SourceFailed');
    expect(c.message).toMatch(/prometheus/);
    // several evaluations later, nothing moved (never to the floor, never anywhere)
    await new Promise((r) => setTimeout(r, 8000));
    expect(await replicas()).toEqual(before);
    expect(await op!.metrics()).toMatch(/recshard_operator_metric_query_failures_total\{source="prometheus"\} [1-9]/);
    const events = (await api.core.listNamespacedEvent({ namespace: ns })).items.filter(
      (e) => e.involvedObject.name === NAME && e.reason === 'MetricsUnavailable',
    );
    expect(events.length).toBeGreaterThan(0);
  });

  it('kept every component within the policy bounds throughout', () => {
    expect(history.length).toBeGreaterThan(30);
    for (const h of history) {
      expect(h.replicas[MAIN]).toBeGreaterThanOrEqual(BOUNDS.main.min);
      expect(h.replicas[MAIN]).toBeLessThanOrEqual(BOUNDS.main.max);
      for (const s of [shard0, shard1]) {
        expect(h.replicas[s]).toBeGreaterThanOrEqual(BOUNDS.sparse.min);
        expect(h.replicas[s]).toBeLessThanOrEqual(BOUNDS.sparse.max);
      }
    }
  });
});
