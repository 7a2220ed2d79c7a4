// `make demo`: plan every example; serve DLRM-RMC2 locally in every strategy under a DeepRecInfra workload (real
// shard-server processes on loopback, open-loop Poisson arrivals, production query sizes) and report latency,
// CPU, the scheduler's batch size and memory, with a chart; then start the local cluster, install the chart (the
// operator as pods on the real node), serve the kind walkthrough's model on real pods under load through its
// Service, apply every example to see the real scheduler place them on the KWOK nodes, and re-shard the real-pod
// model under load (a new version's shards beside the old, then the main; no request lost).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Table from 'cli-table3';
import { strategiesChart, svg } from '../bench/charts.js';
import { serveLocal } from '../cli/local.js';
import type { ModelInfo } from '../contracts/model-info.js';
import { formatBytes } from '../lib/quantity.js';
import { parseSizeSpec } from '../loadgen/distributions.js';
import { runLoad } from '../loadgen/run.js';
import { buildQueries } from '../loadgen/workload.js';
import { kubectl, realPodNamespace, startCluster } from '../local-cluster/harness.js';
import { ZOO } from '../models/zoo.js';
import { readRecModels } from '../operator/api/v1alpha1/documents.js';
import { resolveSpec, type RecModel } from '../operator/api/v1alpha1/index.js';
import { formatPlan } from '../operator/planner/format.js';
import { planModel } from '../operator/planner/plan.js';

const ROOT = join(import.meta.dirname, '..');
const examples = readdirSync(join(ROOT, 'examples'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const t0 = Date.now();
let stepNo = 0;
const STEPS = 7;
const step = (what: string) => console.log(`\n\x1b[1m[${++stepNo}/${STEPS}] ${what}\x1b[0m  (${((Date.now() - t0) / 1000).toFixed(1)}s)`);

step('Plan every example (recshard plan)');
const summary = new Table({ head: ['MODEL', 'STRATEGY', 'SHARDS', 'TABLE BYTES', 'FULLEST SHARD', 'IMBALANCE'], style: { head: [], compact: true } });
for (const file of examples) {
  for (const rm of readRecModels(join(ROOT, 'examples', file))) {
    const r = resolveSpec(rm.spec);
    if (!r.ok) throw new Error(`${file}: ${JSON.stringify(r.errors)}`);
    const p = planModel(r.spec);
    if (!p.ok) throw p.error;
    const fullest = Math.max(0, ...p.plan.shards.map((s) => s.percentOfCapacity));
    summary.push([
      rm.metadata.name,
      p.plan.strategy,
      p.plan.shards.length,
      formatBytes(p.plan.totalBytes),
      p.plan.shards.length ? `${fullest}%` : '-',
      p.plan.imbalance.toFixed(3),
    ]);
    if (rm.metadata.name === 'rmc2-net') console.log(formatPlan(rm.metadata.name, p.plan, 'table'));
  }
}
console.log(summary.toString());

const QPS = 12;
const SECONDS = 6;
step(
  `Serve DLRM-RMC2 (rows scaled to 0.1%) locally in each strategy under a DeepRecInfra workload: ${QPS} QPS open loop for ${SECONDS} s, production query sizes`,
);
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const serving = new Table({
  head: ['STRATEGY', 'SHARDS', 'QPS', 'P50 MS', 'P99 MS', 'ERRORS', 'CPU S / 1000 Q', 'BATCH B', 'MAIN RSS', 'SHARD RSS (each)'],
  style: { head: [], compact: true },
});
const chartRows: { strategy: string; p50Ms: number; p99Ms: number }[] = [];
for (const sharding of [
  { strategy: 'monolithic' },
  { strategy: 'singular' },
  { strategy: 'load-balanced', shards: 2 },
  { strategy: 'load-balanced', shards: 4 },
  { strategy: 'net-specific', shardMemory: '3Gi' },
]) {
  const rm = {
    apiVersion: 'recshard.io/v1alpha1',
    kind: 'RecModel',
    metadata: { name: 'rmc2' },
    spec: { model: structuredClone(ZOO['dlrm-rmc2']!), sharding: { shardMemory: '8Gi', ...sharding } },
  } as RecModel;
  const d = await serveLocal(rm, { scale: 0.001, seed: 1, log: (l) => console.log(l) });
  try {
    const info = (await (await fetch(`${d.mainUrl}/v1/models/rmc2`)).json()) as ModelInfo;
    const queries = buildQueries(info, { sizes: parseSizeSpec('production', () => ''), zipf: 0, seed: 1, pool: 256 });
    await runLoad({ predictUrl: d.predictUrl, qps: QPS / 2, durationMs: 1500, timeoutMs: 5000, queries, seed: 2 }); // warm-up
    const cpu0 = d.cpuSeconds();
    const r = await runLoad({ predictUrl: d.predictUrl, qps: QPS, durationMs: SECONDS * 1000, timeoutMs: 5000, queries, seed: 1 });
    const cpu = d.cpuSeconds() - cpu0;
    const sched = ((await (await fetch(`${d.mainUrl}/v1/models/rmc2`)).json()) as { scheduler: { batchSize: number } }).scheduler;
    const label = `${d.plan.strategy}${sharding.shards ? `/${sharding.shards}` : ''}`;
    const shardRss = d.processes.filter((p) => p.name !== 'main').map((p) => `${rssMiB(p.proc.pid!).toFixed(0)}`);
    const mainRss = rssMiB(d.processes.find((p) => p.name === 'main')!.proc.pid!);
    serving.push([
      label,
      d.plan.shards.length,
      r.achievedQps.toFixed(1),
      r.latencyMs.p50.toFixed(1),
      r.latencyMs.p99.toFixed(1),
      r.errors + r.timeouts,
      ((cpu / Math.max(r.ok, 1)) * 1000).toFixed(1),
      sched.batchSize,
      `${mainRss.toFixed(0)} MiB`,
      shardRss.length ? `${shardRss.join(', ')} MiB` : '-',
    ]);
    chartRows.push({ strategy: label, p50Ms: r.latencyMs.p50, p99Ms: r.latencyMs.p99 });
  } finally {
    await d.stop();
  }
}
console.log(serving.toString());
const chartFile = join(tmpdir(), 'recshard-demo', 'strategies.svg');
mkdirSync(dirname(chartFile), { recursive: true });
writeFileSync(chartFile, await svg(strategiesChart(chartRows, `DLRM-RMC2, ${QPS} QPS open loop, production query sizes, ${cpus().length} cores`)));
console.log(`Chart: ${chartFile}`);
console.log(
  'Every strategy gives the same scores as monolithic (test/dataplane/correctness.test.ts). CPU counts every process ' +
    "of the deployment; all share this machine's cores.",
);
console.log('Measure it yourself: bin/recshard load --local examples/dlrm-rmc2.yaml --qps 12; the full benchmarks: make bench (docs/benchmarks.md).');

step('Start a local cluster: etcd, kube-apiserver, controller-manager, scheduler, 2 CPU + 2 GPU KWOK nodes, and a real node');
const cluster = await startCluster({ log: (l) => console.log(l) });
const k = (args: string[]) => kubectl(cluster.kubeconfig, args);
const helm = (args: string[]) =>
  execFileSync(join(cluster.binDir, 'helm'), [`--kubeconfig=${cluster.kubeconfig}`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const node = cluster.node!;
/** A namespace whose pods run on the real node (the KWOK nodes take the others). */
const realNamespace = (name: string) => {
  k(['create', 'namespace', name]);
  k(['annotate', 'namespace', name, ...Object.entries(realPodNamespace()).map(([a, v]) => `${a}=${v}`)]);
};
let load: ChildProcess | undefined;
/** nsenter's arguments for recshard load at 20 QPS through rmc1-kind's Service, from the node's network namespace. */
const loadArgs = (ip: string, seconds: number) => [
  `--net=${node.network.netns}`,
  '--',
  process.execPath,
  join(ROOT, 'dist/cli/recshard.js'),
  'load',
  '--url',
  `http://${ip}:8080`,
  '--model',
  'rmc1-kind',
  '--qps',
  '20',
  '--duration',
  String(seconds),
];
try {
  console.log(k(['get', 'nodes', '-L', 'nvidia.com/gpu.present', '-o', 'wide']));

  step('helm install charts/recshard: the operator runs as two pods on the real node, one holding the Lease');
  k(['apply', '--server-side', '-f', join(ROOT, 'crds')]);
  realNamespace('recshard-system');
  helm([
    'install',
    'recshard',
    join(ROOT, 'charts', 'recshard'),
    '-n',
    'recshard-system',
    '--set',
    'networkPolicies.enabled=false',
    '--wait',
    '--timeout',
    '120s',
  ]);
  console.log(k(['get', 'pods', '-n', 'recshard-system', '-o', 'wide']));

  step('kubectl apply -f examples/kind/: a Job writes DLRM-RMC1 into a volume, the RecModel serves it on real pods');
  realNamespace('serving');
  k(['apply', '-n', 'serving', '-f', join(ROOT, 'examples', 'kind', 'model.yaml')]);
  k(['wait', '-n', 'serving', '--for=condition=complete', 'job/rmc1-model', '--timeout=120s']);
  const tServe = Date.now();
  k(['apply', '-n', 'serving', '-f', join(ROOT, 'examples', 'kind', 'rmc1.yaml')]);
  k(['wait', '-n', 'serving', '--for=condition=Ready', 'recmodel/rmc1-kind', '--timeout=180s']);
  console.log(`rmc1-kind Ready (real readiness probes) ${((Date.now() - tServe) / 1000).toFixed(1)}s after kubectl apply`);
  console.log(k(['get', 'recmodels,pods,services', '-n', 'serving', '-o', 'wide']));
  const ip = k(['get', 'service', 'rmc1-kind-main', '-n', 'serving', '-o', 'jsonpath={.spec.clusterIP}']);
  console.log(`Load through the main's Service (http://${ip}:8080), from the node's network namespace, with recshard load:`);
  console.log(execFileSync('nsenter', loadArgs(ip, 5), { encoding: 'utf8' }));

  step('kubectl apply -f examples/ (4 DeepRecInfra models x 4 strategies), placed by the real scheduler on the KWOK nodes');
  k(['create', 'namespace', 'recsys']);
  const applied = k(['apply', '-n', 'recsys', '-f', join(ROOT, 'examples')])
    .trim()
    .split('\n').length;
  const tApply = Date.now();
  k(['wait', '-n', 'recsys', '--for=condition=Ready', 'recmodels', '--all', '--timeout=180s']);
  console.log(`${applied} RecModels applied; every one Ready (kubectl wait --for=condition=Ready) after ${((Date.now() - tApply) / 1000).toFixed(1)}s`);
  console.log(k(['get', 'recmodels', '-n', 'recsys']));
  console.log(k(['get', 'deployments', '-n', 'recsys', '-l', 'app.kubernetes.io/instance=wnd-lb']));
  console.log('Pods of wnd-lb and rmc3-lb and the nodes the scheduler chose (GPU components on kwok-gpu-*):');
  console.log(
    k([
      'get',
      'pods',
      '-n',
      'recsys',
      '-l',
      'app.kubernetes.io/instance in (wnd-lb,rmc3-lb)',
      '-o',
      `custom-columns=${[
        'POD:.metadata.name',
        'COMPONENT:.metadata.labels.app\\.kubernetes\\.io/component',
        'NODE:.spec.nodeName',
        'GPUS:.spec.containers[0].resources.limits.nvidia\\.com/gpu',
        'MEMORY:.spec.containers[0].resources.requests.memory',
      ].join(',')}`,
    ]),
  );

  step('Re-shard rmc1-kind under load on real pods: load-balanced/2 -> net-specific (new shards beside the old, then the main)');
  // open-loop load through the main's Service for as long as the rollout takes (SIGTERM ends it with its summary)
  load = spawn('nsenter', loadArgs(ip, 600), { stdio: ['ignore', 'pipe', 'ignore'] });
  let loadSummary = '';
  load.stdout!.on('data', (c) => (loadSummary += c));
  const loadDone = new Promise((r) => load!.once('exit', r));
  await new Promise((r) => setTimeout(r, 3000));
  const tRoll = Date.now();
  const before = k(['get', 'recmodel', 'rmc1-kind', '-n', 'serving', '-o', 'jsonpath={.status.rollout.toVersion}']);
  const generation = k([
    'patch',
    'recmodel',
    'rmc1-kind',
    '-n',
    'serving',
    '--type=merge',
    '-p',
    '{"spec":{"sharding":{"strategy":"net-specific","shards":null},"rollout":{"drainPeriod":"5s"}}}',
    '-o',
    'jsonpath={.metadata.generation}',
  ]);
  let last = '';
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const phase = k([
      'get',
      'recmodel',
      'rmc1-kind',
      '-n',
      'serving',
      '-o',
      'jsonpath={.status.observedGeneration} {.status.rollout.toVersion} {.status.rollout.phase} {.status.rollout.shardsReady} {.status.rollout.mainUpdated}',
    ]);
    const [observed, version, ...rest] = phase.split(' ');
    if (observed !== generation || version === before) continue;
    const shown = `version ${version}: ${rest.join(' ')}`;
    if (shown !== last) console.log(`  ${((Date.now() - tRoll) / 1000).toFixed(1).padStart(5)}s  ${shown}`);
    last = shown;
    const versions = new Set(
      k([
        'get',
        'pods',
        '-n',
        'serving',
        '-l',
        'app.kubernetes.io/instance=rmc1-kind',
        '-o',
        'jsonpath={.items[*].metadata.labels.recshard\\.io/version}',
      ]).split(' '),
    );
    if (rest[0] === 'Complete' && versions.size === 1 && versions.has(version!)) break;
    if (Date.now() - tRoll > 240_000) throw new Error(`the rollout did not finish: ${phase}`);
  }
  console.log(`Rollout complete, the last old pod gone ${((Date.now() - tRoll) / 1000).toFixed(1)}s after the patch.`);
  load.kill('SIGTERM');
  await loadDone;
  console.log(`The load through the Service meanwhile (started 3 s before the patch):\n${loadSummary}`);
  console.log(k(['get', 'recmodels,deployments', '-n', 'serving', '-o', 'wide']));
  console.log(
    k([
      'get',
      'events',
      '-n',
      'serving',
      '--field-selector',
      'involvedObject.name=rmc1-kind',
      '-o',
      'custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message',
    ]),
  );
} finally {
  load?.kill('SIGKILL');
  await cluster.stop();
}
console.log(
  `\nDone in ${((Date.now() - t0) / 1000).toFixed(1)}s. Keep a cluster running with \`make cluster-up\`, then follow the README and docs/local-cluster.md.`,
);
