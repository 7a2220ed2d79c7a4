// `make cluster-up` / `make cluster-down`: a local cluster for humans that outlives the command. Its state file
// belongs to this checkout (RECSHARD_CLUSTER_STATE names another): two checkouts, or a cluster-up beside `make
// test` (whose cluster keeps no state file), never see or stop each other's cluster.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRunning } from '../lib/process.js';
import { startCluster, stopDetached, type ClusterInfo } from './harness.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const stateFile = process.env.RECSHARD_CLUSTER_STATE ?? join(repo, '.cluster', 'state.json');

function current(): ClusterInfo | undefined {
  if (!existsSync(stateFile)) return undefined;
  return JSON.parse(readFileSync(stateFile, 'utf8')) as ClusterInfo;
}

function describe(info: ClusterInfo): void {
  console.log(`export KUBECONFIG=${info.kubeconfig}`);
  console.log(`helm and kwok are in ${info.binDir}`);
  if (info.node) {
    console.log(`real node ${info.node.name} at ${info.node.network.nodeIp}: pods and ClusterIPs are reachable from its network namespace,`);
    console.log(`  e.g. nsenter --net=${info.node.network.netns} curl http://<cluster-ip>:<port>/ (or kubectl port-forward)`);
    console.log(`  containers: ctr -a ${info.node.containerdSocket} -n k8s.io containers ls; logs in ${info.dir}/*.log`);
  }
}

async function up(): Promise<void> {
  const info = current();
  if (info && isRunning(info.pids['kube-apiserver'])) {
    console.log(`this checkout's cluster is already up (${stateFile}); make cluster-down stops it`);
    describe(info);
    return;
  }
  if (info) {
    console.log('the last cluster of this checkout is gone; cleaning up what it left');
    await stopDetached(info);
    rmSync(stateFile, { force: true });
  }
  const { stop: _stop, restart: _restart, ...started } = await startCluster({ detached: true });
  mkdirSync(dirname(stateFile), { recursive: true });
  writeFileSync(stateFile, JSON.stringify(started, null, 2));
  console.log(`cluster up at ${started.server}: 2 CPU and 2 GPU KWOK nodes${started.node ? ' and one real node' : ''}`);
  describe(started);
}

async function down(): Promise<void> {
  const info = current();
  if (!info) {
    console.log(`no cluster of this checkout is up (${stateFile})`);
    return;
  }
  await stopDetached(info);
  rmSync(stateFile);
  console.log('cluster stopped; nothing of it is left running or mounted');
}

const cmd = process.argv[2];
if (cmd === 'up') await up();
else if (cmd === 'down') await down();
else if (cmd === 'kubeconfig' && current()) console.log(current()!.kubeconfig);
else {
  console.error('usage: local-cluster/cli.ts up|down|kubeconfig');
  process.exit(2);
}
