// `make cluster-up` / `make cluster-down`: a local control plane for humans that outlives the command.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { startCluster, stopDetached, type ClusterInfo } from './harness.js';

const stateDir = join(process.env.RECSHARD_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'recshard'), 'cluster');
const stateFile = join(stateDir, 'current.json');

async function up(): Promise<void> {
  if (existsSync(stateFile)) {
    const info = JSON.parse(readFileSync(stateFile, 'utf8')) as ClusterInfo;
    console.log(`a cluster is already up; KUBECONFIG=${info.kubeconfig} (make cluster-down stops it)`);
    return;
  }
  const c = await startCluster({ detached: true });
  mkdirSync(stateDir, { recursive: true });
  const info: ClusterInfo = { dir: c.dir, kubeconfig: c.kubeconfig, server: c.server, token: c.token, binDir: c.binDir, pids: c.pids };
  writeFileSync(stateFile, JSON.stringify(info, null, 2));
  console.log(`control plane up at ${c.server} with 2 CPU and 2 GPU fake nodes`);
  console.log(`export KUBECONFIG=${c.kubeconfig}`);
  console.log(`helm and kwok are in ${c.binDir}`);
}

async function down(): Promise<void> {
  if (!existsSync(stateFile)) {
    console.log('no cluster is up');
    return;
  }
  await stopDetached(JSON.parse(readFileSync(stateFile, 'utf8')) as ClusterInfo);
  rmSync(stateFile);
  console.log('control plane stopped');
}

const cmd = process.argv[2];
if (cmd === 'up') await up();
else if (cmd === 'down') await down();
else if (cmd === 'kubeconfig' && existsSync(stateFile)) console.log((JSON.parse(readFileSync(stateFile, 'utf8')) as ClusterInfo).kubeconfig);
else {
  console.error('usage: local-cluster/cli.ts up|down|kubeconfig');
  process.exit(2);
}
