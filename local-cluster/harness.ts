// A real local control plane for tests and the demo: etcd, kube-apiserver (RBAC on), kube-controller-manager,
// kube-scheduler and KWOK, built from Go modules by build-control-plane.sh, started on free loopback ports in a
// temporary directory, with fake CPU and GPU nodes so the real scheduler places pods.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort } from '../lib/net.js';

const HERE = dirname(fileURLToPath(import.meta.url));

export interface ClusterInfo {
  dir: string;
  kubeconfig: string;
  server: string;
  token: string;
  binDir: string;
  pids: Record<string, number>;
}

export interface Cluster extends ClusterInfo {
  stop(): Promise<void>;
  /** Stops one component and starts it again with the same flags (the API server: until /readyz is ok). */
  restart(name: string): Promise<void>;
}

export const FAKE_NODES = {
  cpu: ['kwok-cpu-0', 'kwok-cpu-1'],
  gpu: ['kwok-gpu-0', 'kwok-gpu-1'],
} as const;

/** Builds (or finds cached) control-plane binaries; returns their directory. */
export function ensureBinaries(log: (line: string) => void = (l) => process.stderr.write(l + '\n')): string {
  const t0 = Date.now();
  const out = execFileSync('bash', [join(HERE, 'build-control-plane.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const bin = out.trim().split('\n').pop()!;
  log(`[control-plane] binaries ready in ${bin} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  return bin;
}

function httpsGet(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { Authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, procs: Map<string, ChildProcess>, dir: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const [name, p] of procs) {
      if (p.exitCode !== null)
        throw new Error(`${name} exited with ${p.exitCode} while waiting for ${what}; see ${join(dir, `${name}.log`)}:\n${tail(join(dir, `${name}.log`))}`);
    }
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (logs in ${dir})`);
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export interface StartOptions {
  /** Processes outlive this Node process (make cluster-up); stop them with stopDetached(). */
  detached?: boolean;
  binDir?: string;
  log?: (line: string) => void;
}

export async function startCluster(opts: StartOptions = {}): Promise<Cluster> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const binDir = opts.binDir ?? ensureBinaries(log);
  const dir = mkdtempSync(join(tmpdir(), 'recshard-cluster-'));
  const procs = new Map<string, ChildProcess>();
  const t0 = Date.now();
  const [etcdPort, etcdPeer, apiPort, kcmPort, schedPort, kwokPort] = await Promise.all(Array.from({ length: 6 }, freePort));
  const token = randomBytes(24).toString('hex');
  const server = `https://127.0.0.1:${apiPort}`;

  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const saKey = join(dir, 'sa.key');
  const saPub = join(dir, 'sa.pub');
  writeFileSync(saKey, privateKey.export({ type: 'pkcs1', format: 'pem' }));
  writeFileSync(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
  const tokens = join(dir, 'tokens.csv');
  writeFileSync(tokens, `${token},admin,admin,system:masters\n`);
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'recshard', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'admin', user: { token } }],
      contexts: [{ name: 'recshard', context: { cluster: 'recshard', user: 'admin', namespace: 'default' } }],
      'current-context': 'recshard',
    }),
  );

  const argsOf = new Map<string, string[]>();
  const start = (name: string, args: string[]) => {
    argsOf.set(name, args);
    const out = openSync(join(dir, `${name}.log`), 'a');
    const p = spawn(join(binDir, name), args, { stdio: ['ignore', out, out], detached: opts.detached ?? false });
    closeSync(out);
    if (opts.detached) p.unref();
    procs.set(name, p);
  };

  const stopOne = async (p: ChildProcess) => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const stop = async () => {
    for (const p of [...procs.values()].reverse()) await stopOne(p);
    if (!process.env.RECSHARD_KEEP_CLUSTER) rmSync(dir, { recursive: true, force: true });
  };
  const apiReady = async () => (await httpsGet(`${server}/readyz`, token)).status === 200;
  const restart = async (name: string) => {
    await stopOne(procs.get(name)!);
    start(name, argsOf.get(name)!);
    if (name === 'kube-apiserver') await waitFor('kube-apiserver /readyz after restart', apiReady, 90_000, procs, dir);
  };

  try {
    mkdirSync(join(dir, 'etcd'));
    start('etcd', [
      '--name=default',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
      '--listen-metrics-urls=',
      `--quota-backend-bytes=${2 * 2 ** 30}`,
    ]);
    start('kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'certs')}`,
      `--token-auth-file=${tokens}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--endpoint-reconciler-type=none',
      '--allow-privileged=true',
      '--enable-priority-and-fairness=false',
      '--v=0',
    ]);
    await waitFor('kube-apiserver /readyz', apiReady, 90_000, procs, dir);
    const common = [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
    ];
    start('kube-controller-manager', [
      ...common,
      `--secure-port=${kcmPort}`,
      `--service-account-private-key-file=${saKey}`,
      `--root-ca-file=${join(dir, 'certs', 'apiserver.crt')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--use-service-account-credentials=false',
      '--concurrent-deployment-syncs=10',
      '--concurrent-replicaset-syncs=10',
    ]);
    start('kube-scheduler', [...common, `--secure-port=${schedPort}`]);
    start('kwok', [
      `--kubeconfig=${kubeconfig}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      `--server-address=127.0.0.1:${kwokPort}`,
      '--node-ip=127.0.0.1',
      '--cidr=10.244.0.0/16',
      '--node-lease-duration-seconds=40',
    ]);
    createNodes(kubeconfig);
    await waitFor('fake nodes Ready', async () => nodesReady(kubeconfig), 60_000, procs, dir);
    await waitFor(
      'default ServiceAccount',
      async () => {
        try {
          kubectl(kubeconfig, ['get', 'serviceaccount', 'default', '-n', 'default']);
          return true;
        } catch {
          return false;
        }
      },
      60_000,
      procs,
      dir,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  log(`[control-plane] up in ${((Date.now() - t0) / 1000).toFixed(1)}s; KUBECONFIG=${kubeconfig}`);
  const pids = Object.fromEntries([...procs].map(([n, p]) => [n, p.pid!]));
  return { dir, kubeconfig, server, token, binDir, pids, stop, restart };
}

export function kubectl(kubeconfig: string, args: string[], input?: string): string {
  return execFileSync('kubectl', [`--kubeconfig=${kubeconfig}`, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function nodesReady(kubeconfig: string): boolean {
  const out = kubectl(kubeconfig, [
    'get',
    'nodes',
    '-o',
    'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
  ]);
  const ready = out.split('\n').filter((l) => l.endsWith('=True')).length;
  return ready === FAKE_NODES.cpu.length + FAKE_NODES.gpu.length;
}

/** Fake nodes: CPU nodes plain; GPU nodes labelled, tainted and offering nvidia.com/gpu. */
export function fakeNodeManifests(): object[] {
  const node = (name: string, gpu: boolean) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        type: 'kwok',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node-role.kubernetes.io/worker': '',
        ...(gpu ? { 'nvidia.com/gpu.present': 'true', 'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3' } : {}),
      },
    },
    spec: gpu ? { taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }] } : {},
    status: {
      allocatable: { cpu: '96', memory: '512Gi', pods: '250', ...(gpu ? { 'nvidia.com/gpu': '8' } : {}) },
      capacity: { cpu: '96', memory: '512Gi', pods: '250', ...(gpu ? { 'nvidia.com/gpu': '8' } : {}) },
      nodeInfo: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        kubeletVersion: 'fake',
        kernelVersion: '',
        osImage: '',
        containerRuntimeVersion: '',
        kubeProxyVersion: '',
        machineID: '',
        systemUUID: '',
        bootID: '',
      },
    },
  });
  return [...FAKE_NODES.cpu.map((n) => node(n, false)), ...FAKE_NODES.gpu.map((n) => node(n, true))];
}

function createNodes(kubeconfig: string): void {
  kubectl(
    kubeconfig,
    ['apply', '-f', '-'],
    fakeNodeManifests()
      .map((n) => stringify(n))
      .join('---\n'),
  );
}

/** Stops a cluster started with detached: true, from its info file. */
export async function stopDetached(info: ClusterInfo): Promise<void> {
  for (const name of ['kwok', 'kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd']) {
    const pid = info.pids[name];
    if (!pid) continue;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      continue;
    }
    for (let i = 0; i < 50; i++) {
      try {
        process.kill(pid, 0);
        await new Promise((r) => setTimeout(r, 100));
      } catch {
        break;
      }
    }
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  rmSync(info.dir, { recursive: true, force: true });
}
