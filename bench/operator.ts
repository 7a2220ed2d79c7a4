// Benchmark 8: the operator at scale, on the local control plane with KWOK nodes (pods are fakes that become Ready;
// what is measured is the operator, the API server and etcd). The operator runs as `dist/operator/main.js`, as the
// chart runs it. Measured: a fleet of small RecModels applied at once (time until every one is Ready, reconcile p99,
// peak RSS), the same fleet idle (applies and CPU per 30 s), and one model of many tables on many shards (apply to
// Planned, apply to Ready); throughout, the operator's event-loop delay (its own nodejs_eventloop_lag_max_seconds,
// read every 200 ms) and how long /healthz takes to answer from outside.
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { stringify } from 'yaml';
import { findRepoFile } from '../lib/paths.js';
import { kubectl, startCluster } from '../local-cluster/harness.js';
import type { RecModel } from '../operator/api/v1alpha1/index.js';
import { OPERATOR_NODE_FLAGS } from '../operator/flags.js';
import { log, round } from './lib.js';

export interface OperatorScaleOptions {
  /** RecModels in the fleet (each a main and one shard, one pod each). */
  models: number;
  /** Tables and load-balanced shards of the large model (its pods at 0 replicas: the children are what counts). */
  bigTables: number;
  bigShards: number;
  /** Fairness: two models of this many tables and shards applied with an ordinary one. */
  fairTables: number;
  fairShards: number;
  /** Seconds the fleet is watched idle. */
  idleS: number;
}

/** What was seen while one phase ran: the worst event-loop delay and /healthz answer (and probes not answered 200), the peak RSS. */
export interface Watch {
  loopMaxMs: number;
  healthzMaxMs: number;
  healthzFailures: number;
  rssPeakMiB: number;
}

export interface OperatorScaleResult {
  startedAt: string;
  fleet: Watch & { models: number; readyS: number; reconciles: number; reconcileP99S: number; applies: number };
  idle: { seconds: number; applies: number; reconciles: number; statusWrites?: number; cpuCores: number; rssMiB: number };
  /** Apply to Planned (status), to every child written (the operator's part), to Ready (the Deployment controller's too). */
  big: Watch & { tables: number; shards: number; children: number; plannedS: number; appliedS: number; readyS: number; applies: number };
  /** An ordinary model applied right after two large ones: its time to Planned and to Ready, and theirs to Ready. */
  fairness?: Watch & { tables: number; shards: number; plannedS: number; readyS: number; largeReadyS: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function httpGet(port: number, path: string, timeoutMs = 10_000): Promise<{ status: number; body: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    // a fresh connection each time: a kept-alive one may meet the server closing it (a reset that is not the operator's)
    const req = get({ host: '127.0.0.1', port, path, timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '', ms: performance.now() - t0 }));
  });
}

/** Sum of a metric's samples (every label set) in a Prometheus text page. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).some(([k, v]) => !(m[2] ?? '').includes(`${k}="${v}"`))) continue;
    sum += Number(m[3]);
  }
  return sum;
}

/** A histogram's quantile from its cumulative buckets (summed over other labels), interpolated within the bucket. */
export function histogramQuantile(text: string, name: string, q: number): number {
  const buckets = new Map<number, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}_bucket\\{(.*)\\}\\s+(\\S+)`).exec(line);
    if (!m) continue;
    const le = /le="([^"]+)"/.exec(m[1]!)![1]!;
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(m[2]));
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (!total) return 0;
  const rank = q * total;
  let prev: [number, number] = [0, 0];
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (bound === Infinity) return prev[0];
      return prev[0] + ((bound - prev[0]) * (rank - prev[1])) / Math.max(1, count - prev[1]);
    }
    prev = [bound, count];
  }
  return prev[0];
}

/** Samples the operator every 200 ms until stopped: its loop delay, its /healthz answer time, its RSS. */
function watcher(port: number, pid: number) {
  const w: Watch = { loopMaxMs: 0, healthzMaxMs: 0, healthzFailures: 0, rssPeakMiB: 0 };
  let on = true;
  const rss = () => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : 0;
    } catch {
      return 0; // gone: the phase's own checks say why
    }
  };
  const loop = (async () => {
    while (on) {
      const h = await httpGet(port, '/healthz');
      w.healthzMaxMs = Math.max(w.healthzMaxMs, h.ms);
      if (h.status !== 200) w.healthzFailures++;
      const m = await httpGet(port, '/metrics');
      w.loopMaxMs = Math.max(w.loopMaxMs, metricSum(m.body, 'recshard_operator_nodejs_eventloop_lag_max_seconds') * 1000);
      w.rssPeakMiB = Math.max(w.rssPeakMiB, rss());
      await sleep(200);
    }
  })();
  return {
    rss,
    async stop(): Promise<Watch> {
      on = false;
      await loop;
      return { ...w, loopMaxMs: round(w.loopMaxMs, 1), healthzMaxMs: round(w.healthzMaxMs, 1), rssPeakMiB: round(w.rssPeakMiB, 0) };
    },
  };
}

/** A RecModel of 13 dense features and a small MLP over these table groups, sharded and placed as given. */
function recModel(name: string, architecture: string, tableGroups: object[], rest: Record<string, unknown>): RecModel {
  return {
    apiVersion: 'recshard.io/v1alpha1',
    kind: 'RecModel',
    metadata: { name },
    spec: { model: { architecture, denseFeatures: 13, bottomMLP: [64], topMLP: [64, 1], tableGroups }, ...rest } as RecModel['spec'],
  };
}

/** Eight small tables on one shard: a main and a shard pod. */
const smallModel = (name: string) =>
  recModel(name, 'dlrm-rmc1', [{ namePrefix: 'emb-', count: 8, rows: 10_000, dim: 32, poolingFactor: 20 }], {
    sharding: { strategy: 'singular', shardMemory: '1Gi' },
  });

/** `tables` tables of four sizes and seven pooling factors, load-balanced over `shards`; no pods (0 replicas). */
const bigModel = (name: string, tables: number, shards: number) =>
  recModel(
    name,
    'custom',
    Array.from({ length: Math.ceil(tables / 1024) }, (_, g) => ({
      namePrefix: `g${g}-`,
      count: Math.min(1024, tables - g * 1024),
      rows: 1000 + 37 * g,
      dim: 16 * (1 + (g % 4)),
      poolingFactor: 1 + (g % 7),
    })),
    { sharding: { strategy: 'load-balanced', shards, shardMemory: '16Gi' }, placement: { main: { replicas: 0 }, sparse: { replicas: 0 } } },
  );

export async function benchOperatorScale(o: OperatorScaleOptions): Promise<OperatorScaleResult> {
  const startedAt = new Date().toISOString();
  const cluster = await startCluster({ realNode: false, log });
  const k = (args: string[], input?: string) => kubectl(cluster.kubeconfig, args, input);
  // polls run kubectl without blocking this process: the watcher's probes are timed on this event loop
  const ka = (args: string[], input?: string) =>
    new Promise<string>((resolve, reject) => {
      const child = execFile('kubectl', [`--kubeconfig=${cluster.kubeconfig}`, ...args], { maxBuffer: 256 * 2 ** 20 }, (e, out, err) =>
        e ? reject(new Error(`kubectl ${args.join(' ')}: ${err || e.message}`)) : resolve(out),
      );
      child.stdin!.end(input ?? '');
    });
  const port = await freePort();
  const op = spawn(
    process.execPath,
    [
      ...OPERATOR_NODE_FLAGS,
      findRepoFile('dist', 'operator', 'main.js'),
      `--kubeconfig=${cluster.kubeconfig}`,
      `--listen=127.0.0.1:${port}`,
      '--no-leader-elect',
      '--serving-poll=0', // KWOK pods serve nothing to poll
      '--log-level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  op.stderr!.on('data', (c) => (stderr = (stderr + c).slice(-4000)));
  const metrics = async () => (await httpGet(port, '/metrics')).body;
  try {
    k(['apply', '--server-side', '-f', findRepoFile('crds')]);
    for (let i = 0; (await httpGet(port, '/readyz')).status !== 200; i++) {
      if (op.exitCode !== null || i > 300) throw new Error(`the operator did not become ready:\n${stderr}`);
      await sleep(100);
    }
    // the Ready condition of each model, one per line (a whole list of 200 in JSON is more than kubectl's buffer here)
    const readyCount = async (ns: string) =>
      (await ka(['get', 'recmodels', '-n', ns, '-o', 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}']))
        .split('\n')
        .filter((l) => l === 'True').length;
    const before = await metrics();

    // the fleet, applied at once
    k(['create', 'namespace', 'fleet']);
    // at once: eight kubectl applies side by side, each of an eighth of the fleet
    const docs = Array.from({ length: o.models }, (_, i) => stringify(smallModel(`m-${i}`)));
    const parts = Array.from({ length: 8 }, (_, p) => docs.filter((_d, i) => i % 8 === p).join('---\n')).filter(Boolean);
    let w = watcher(port, op.pid!);
    const t0 = Date.now();
    await Promise.all(parts.map((part) => ka(['apply', '-n', 'fleet', '-f', '-'], part)));
    const alive = () => {
      if (op.exitCode !== null || op.signalCode !== null) throw new Error(`the operator exited (${op.exitCode ?? op.signalCode}):\n${stderr}`);
    };
    for (let ready = 0; ready < o.models; await sleep(500)) {
      alive();
      ready = await readyCount('fleet');
      if (Date.now() - t0 > 600_000) throw new Error(`only ${ready} of ${o.models} RecModels Ready after 10 min`);
    }
    const readyS = round((Date.now() - t0) / 1000, 1);
    const fleetWatch = await w.stop();
    const afterFleet = await metrics();
    const reconciles = (t: string) => metricSum(t, 'recshard_operator_reconcile_duration_seconds_count');
    const applies = (t: string) => metricSum(t, 'recshard_operator_applies_total');
    const fleet = {
      models: o.models,
      readyS,
      reconciles: reconciles(afterFleet) - reconciles(before),
      reconcileP99S: round(histogramQuantile(afterFleet, 'recshard_operator_reconcile_duration_seconds', 0.99), 3),
      applies: applies(afterFleet) - applies(before),
      ...fleetWatch,
    };
    log(
      `  ${o.models} RecModels Ready in ${readyS} s; reconcile p99 ${fleet.reconcileP99S} s; peak RSS ${fleet.rssPeakMiB} MiB; loop max ${fleet.loopMaxMs} ms`,
    );

    // idle: nothing changes but the resync and the pods' own status
    await sleep(5_000);
    const idleFrom = await metrics();
    await sleep(o.idleS * 1000);
    const idleTo = await metrics();
    const cpu = (t: string) => metricSum(t, 'recshard_operator_process_cpu_seconds_total');
    const idle = {
      seconds: o.idleS,
      applies: applies(idleTo) - applies(idleFrom),
      reconciles: reconciles(idleTo) - reconciles(idleFrom),
      cpuCores: round((cpu(idleTo) - cpu(idleFrom)) / o.idleS, 3),
      rssMiB: round(w.rss(), 0),
    };
    log(`  idle ${o.idleS} s: ${idle.applies} applies, ${idle.reconciles} reconciles, ${idle.cpuCores} cores`);

    // one large model
    k(['create', 'namespace', 'big']);
    w = watcher(port, op.pid!);
    const b0 = Date.now();
    await ka(['apply', '--server-side', '-n', 'big', '-f', '-'], stringify(bigModel('big', o.bigTables, o.bigShards)));
    // its plan ConfigMap, the main's Deployment, Service and budget, a Deployment and Service per shard, the shard
    // set's budget, two NetworkPolicies
    const expected = 1 + 3 + 2 * o.bigShards + 1 + 2;
    const kinds = 'deployments,services,poddisruptionbudgets,configmaps,networkpolicies';
    const count = async () => (await ka(['get', kinds, '-n', 'big', '-l', 'app.kubernetes.io/instance=big', '-o', 'name'])).split('\n').filter(Boolean).length;
    let plannedS = 0;
    let appliedS = 0;
    for (;;) {
      const m = JSON.parse(await ka(['get', 'recmodel', 'big', '-n', 'big', '-o', 'json'])) as RecModel;
      const planned = m.status?.conditions?.find((c) => c.type === 'Planned');
      if (!plannedS && planned?.status === 'True') plannedS = round((Date.now() - b0) / 1000, 1);
      if (planned?.status === 'False') throw new Error(`the large model was not planned: ${planned.message}`);
      alive();
      if (plannedS && !appliedS && (await count()) >= expected) appliedS = round((Date.now() - b0) / 1000, 1);
      if (appliedS && m.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) break;
      if (Date.now() - b0 > 900_000) throw new Error('the large model was not Ready after 15 min');
      await sleep(250);
    }
    const bigReadyS = round((Date.now() - b0) / 1000, 1);
    const bigWatch = await w.stop();
    const afterBig = await metrics();
    const children = await count();
    const big = {
      tables: o.bigTables,
      shards: o.bigShards,
      children,
      plannedS,
      appliedS,
      readyS: bigReadyS,
      applies: applies(afterBig) - applies(idleTo),
      ...bigWatch,
    };
    log(
      `  ${o.bigTables} tables on ${o.bigShards} shards: Planned in ${plannedS} s, applied in ${appliedS} s, Ready in ${bigReadyS} s ` +
        `(${children} children); loop max ${big.loopMaxMs} ms`,
    );

    // fairness: two large models, then an ordinary one; the ordinary one must not wait for them
    k(['create', 'namespace', 'fair']);
    w = watcher(port, op.pid!);
    const large = ['large-a', 'large-b'];
    const f0 = Date.now();
    await Promise.all(large.map((n) => ka(['apply', '--server-side', '-n', 'fair', '-f', '-'], stringify(bigModel(n, o.fairTables, o.fairShards)))));
    const o0 = Date.now();
    await ka(['apply', '-n', 'fair', '-f', '-'], stringify(smallModel('ordinary')));
    const conditionOf = (m: RecModel, type: string) => m.status?.conditions?.find((c) => c.type === type)?.status;
    let ordinaryPlannedS = 0;
    let ordinaryReadyS = 0;
    let largeReadyS = 0;
    while (!ordinaryReadyS || !largeReadyS) {
      alive();
      const items = (JSON.parse(await ka(['get', 'recmodels', '-n', 'fair', '-o', 'json'])) as { items: RecModel[] }).items;
      const ordinary = items.find((m) => m.metadata.name === 'ordinary');
      if (ordinary && !ordinaryPlannedS && conditionOf(ordinary, 'Planned') === 'True') ordinaryPlannedS = round((Date.now() - o0) / 1000, 1);
      if (ordinary && !ordinaryReadyS && conditionOf(ordinary, 'Ready') === 'True') ordinaryReadyS = round((Date.now() - o0) / 1000, 1);
      if (!largeReadyS && large.every((n) => conditionOf(items.find((m) => m.metadata.name === n) ?? ({} as RecModel), 'Ready') === 'True'))
        largeReadyS = round((Date.now() - f0) / 1000, 1);
      if (Date.now() - f0 > 900_000) throw new Error('the fairness phase did not finish in 15 min');
      await sleep(250);
    }
    const fairness = { tables: o.fairTables, shards: o.fairShards, plannedS: ordinaryPlannedS, readyS: ordinaryReadyS, largeReadyS, ...(await w.stop()) };
    log(
      `  an ordinary model beside two of ${o.fairTables} tables on ${o.fairShards} shards: Planned in ${ordinaryPlannedS} s, Ready in ` +
        `${ordinaryReadyS} s (theirs ${largeReadyS} s); loop max ${fairness.loopMaxMs} ms`,
    );
    return { startedAt, fleet, idle, big, fairness };
  } finally {
    op.kill('SIGTERM');
    await new Promise((r) => (op.exitCode !== null ? r(undefined) : op.once('exit', r)));
    await cluster.stop();
  }
}
