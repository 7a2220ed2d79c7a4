// `make demo`: plan every example; serve DLRM-RMC2 locally in every strategy under load (real shard-server
// processes on loopback) and report latency, throughput and memory; then run the operator against a real local
// control plane, apply the examples with kubectl and show what it made.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import { resolveSpec } from '../operator/api/v1alpha1/index.js';
import { readRecModels } from '../operator/cli/program.js';
import { formatPlan } from '../operator/planner/format.js';
import { planModel } from '../operator/planner/plan.js';
import { formatBytes } from '../operator/lib/quantity.js';
import { build } from 'hdr-histogram-js';
import { readFileSync } from 'node:fs';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { serveLocal } from '../shard-server/local.js';
import { modelSource, readManifest } from '../shard-server/model/load.js';
import { ZOO } from '../shard-server/model/zoo.js';
import type { RecModel } from '../operator/api/v1alpha1/index.js';
import { kubectl, startCluster } from '../test/cluster/harness.js';

const ROOT = join(import.meta.dirname, '..');
const examples = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.yaml')).sort();
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
    summary.push([rm.metadata.name, p.plan.strategy, p.plan.shards.length, formatBytes(p.plan.totalBytes), p.plan.shards.length ? `${fullest}%` : '-', p.plan.imbalance.toFixed(3)]);
    if (rm.metadata.name === 'rmc2-net') console.log(formatPlan(rm.metadata.name, p.plan, 'table'));
  }
}
console.log(summary.toString());

step('Serve DLRM-RMC2 (rows scaled to 0.2%) locally in each strategy: 4 clients x 3 s of batch-32 queries');
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const serving = new Table({ head: ['STRATEGY', 'SHARDS', 'QPS', 'P50 MS', 'P99 MS', 'ERRORS', 'MAIN RSS', 'SHARD RSS (each)', 'TABLES PER SHARD'], style: { head: [], compact: true } });
for (const sharding of [{ strategy: 'monolithic' }, { strategy: 'singular' }, { strategy: 'load-balanced', shards: 2 }, { strategy: 'load-balanced', shards: 4 }, { strategy: 'net-specific', shardMemory: '3Gi' }]) {
  const rm = { apiVersion: 'recshard.io/v1alpha1', kind: 'RecModel', metadata: { name: 'rmc2' }, spec: { model: structuredClone(ZOO['dlrm-rmc2']!), sharding: { shardMemory: '8Gi', ...sharding } } } as RecModel;
  const d = await serveLocal(rm, { scale: 0.002, seed: 1, log: (l) => console.log(l) });
  try {
    const m = await readManifest(modelSource(d.modelDir));
    const g = xoroshiro128plus(1);
    const u = () => (g.next() >>> 0) / 2 ** 32;
    const body = () => JSON.stringify({
      dense: Array.from({ length: 32 }, () => Array.from({ length: m.denseFeatures }, () => u())),
      sparse: Object.fromEntries(m.tables.map((t) => [t.name, Array.from({ length: 32 }, () => Array.from({ length: 8 }, () => Math.floor(u() * t.rows)))])),
    });
    const bodies = Array.from({ length: 64 }, body);
    const hist = build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    let n = 0;
    let errors = 0;
    const end = Date.now() + 3000;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (Date.now() < end) {
        const t = performance.now();
        const res = await fetch(d.predictUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[n++ % bodies.length] });
        await res.arrayBuffer();
        if (res.ok) hist.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
        else errors++;
      }
    }));
    const shardRss = d.processes.filter((p) => p.name !== 'main').map((p) => `${rssMiB(p.proc.pid!).toFixed(0)}`);
    const mainRss = rssMiB(d.processes.find((p) => p.name === 'main')!.proc.pid!);
    serving.push([d.plan.strategy, d.plan.shards.length, (hist.totalCount / 3).toFixed(0), (hist.getValueAtPercentile(50) / 1000).toFixed(2), (hist.getValueAtPercentile(99) / 1000).toFixed(2), errors, `${mainRss.toFixed(0)} MiB`, shardRss.length ? `${shardRss.join(', ')} MiB` : '-', d.plan.shards.map((s) => s.tables.length).join(', ') || `${m.tables.length} in main`]);
  } finally {
    await d.stop();
  }
}
console.log(serving.toString());
console.log('Every strategy gives the same scores as monolithic (test/dataplane/correctness.test.ts); try it yourself: bin/recshard serve --local examples/dlrm-rmc2.yaml');

step('Start a local control plane (etcd, kube-apiserver, controller-manager, scheduler, KWOK: 2 CPU + 2 GPU nodes)');
const cluster = await startCluster({ log: (l) => console.log(l) });
const k = (args: string[]) => kubectl(cluster.kubeconfig, args);
let operator: ReturnType<typeof spawn> | undefined;
try {
  console.log(k(['get', 'nodes', '-L', 'nvidia.com/gpu.present']));

  step('Install the RecModel CRD and start the operator');
  k(['apply', '-f', join(ROOT, 'crds')]);
  k(['wait', '--for=condition=Established', 'crd/recmodels.recshard.io']);
  k(['create', 'namespace', 'recsys']);
  operator = spawn(process.execPath, [join(ROOT, 'dist/operator/main.js'), `--kubeconfig=${cluster.kubeconfig}`, '--lease-namespace=recsys', '--listen=127.0.0.1:0'], { stdio: 'ignore' });

  step('kubectl apply -f examples/ (4 DeepRecInfra models x 4 strategies)');
  const applied = k(['apply', '-n', 'recsys', '-f', join(ROOT, 'examples')]).trim().split('\n').length;
  const tApply = Date.now();
  k(['wait', '-n', 'recsys', '--for=condition=Ready', 'recmodels', '--all', '--timeout=180s']);
  console.log(`${applied} RecModels applied; every one Ready (kubectl wait --for=condition=Ready) after ${((Date.now() - tApply) / 1000).toFixed(1)}s`);

  step('What the operator made');
  console.log(k(['get', 'recmodels', '-n', 'recsys']));
  console.log(k(['get', 'deployments', '-n', 'recsys', '-l', 'app.kubernetes.io/instance=wnd-lb']));
  console.log('Pods of wnd-lb and rmc3-lb and the nodes the scheduler chose (GPU components on kwok-gpu-*):');
  console.log(k(['get', 'pods', '-n', 'recsys', '-l', 'app.kubernetes.io/instance in (wnd-lb,rmc3-lb)', '-o', 'custom-columns=POD:.metadata.name,COMPONENT:.metadata.labels.app\\.kubernetes\\.io/component,NODE:.spec.nodeName,GPUS:.spec.containers[0].resources.limits.nvidia\\.com/gpu,MEMORY:.spec.containers[0].resources.requests.memory']));

  step('Re-plan: rmc1-lb from 4 to 2 shards (stale shards are deleted, pods roll)');
  k(['patch', 'recmodel', 'rmc1-lb', '-n', 'recsys', '--type=merge', '-p', '{"spec":{"sharding":{"shards":2}}}']);
  k(['wait', '-n', 'recsys', '--for=jsonpath={.status.plan.shards}=2', 'recmodel/rmc1-lb', '--timeout=60s']);
  k(['wait', '-n', 'recsys', '--for=condition=Ready', 'recmodel/rmc1-lb', '--timeout=60s']);
  console.log(k(['get', 'deployments', '-n', 'recsys', '-l', 'app.kubernetes.io/instance=rmc1-lb']));
  console.log(k(['get', 'events', '-n', 'recsys', '--field-selector', 'involvedObject.name=rmc1-lb', '-o', 'custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message']));
} finally {
  operator?.kill('SIGTERM');
  await cluster.stop();
}
console.log(`\nDone in ${((Date.now() - t0) / 1000).toFixed(1)}s. Keep a cluster running with \`make cluster-up\`, then follow the README.`);
