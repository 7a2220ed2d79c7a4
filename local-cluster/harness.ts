// A real local cluster for tests and the demo: etcd, kube-apiserver (RBAC on), kube-controller-manager,
// kube-scheduler and KWOK, built from Go modules by build-control-plane.sh, started on free ports in a temporary
// directory, with fake CPU and GPU nodes so the real scheduler places pods at scale, and one real node
// (node/node.ts: containerd, kubelet, kube-proxy, CoreDNS) where pods really run the project's images.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePorts } from '../lib/net.js';
import { isRunning } from '../lib/process.js';
import { createNodeNetwork, deleteNodeNetwork, SERVICE_SUBNET } from './node/network.js';
import { ensureImages, installPackages, REAL_NODE_LABEL, REAL_NODE_TAINT, startNode, stopNode, volumeManifests, type NodeInfo } from './node/node.js';

const HERE = dirname(fileURLToPath(import.meta.url));

export interface ClusterInfo {
  dir: string;
  kubeconfig: string;
  server: string;
  token: string;
  binDir: string;
  pids: Record<string, number>;
  /** The real node, unless the cluster was started without one. */
  node?: NodeInfo;
  /** The process that stops this cluster when it ends (absent for make cluster-up's, which outlive their command). */
  owner?: number;
}

/** Every cluster's ClusterInfo, kept current in its directory: what a later start needs to clean up after a killed run. */
const INFO_FILE = 'cluster.json';

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
  /** With a real node (root only; the default). Without one, every pod is a KWOK fake. */
  realNode?: boolean;
  binDir?: string;
  log?: (line: string) => void;
}

/** An admin token, a kubeconfig that uses it, and the service-account key pair, written into `dir`. */
function writeCredentials(dir: string, server: string) {
  const token = randomBytes(24).toString('hex');
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const files = { saKey: join(dir, 'sa.key'), saPub: join(dir, 'sa.pub'), tokens: join(dir, 'tokens.csv'), kubeconfig: join(dir, 'kubeconfig') };
  writeFileSync(files.saKey, privateKey.export({ type: 'pkcs1', format: 'pem' }));
  writeFileSync(files.saPub, publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(files.tokens, `${token},admin,admin,system:masters\n`);
  writeFileSync(
    files.kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'recshard', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'admin', user: { token } }],
      contexts: [{ name: 'recshard', context: { cluster: 'recshard', user: 'admin', namespace: 'default' } }],
      'current-context': 'recshard',
    }),
  );
  return { token, ...files };
}

type Credentials = ReturnType<typeof writeCredentials>;
interface Ports {
  etcd: number;
  etcdPeer: number;
  api: number;
  controllerManager: number;
  scheduler: number;
  kwok: number;
}

/** Each component's flags, on loopback ports, with its state in `dir`. */
function componentArgs(dir: string, port: Ports, c: Credentials, address: string): Record<string, string[]> {
  const etcd = `http://127.0.0.1:${port.etcd}`;
  const peer = `http://127.0.0.1:${port.etcdPeer}`;
  const common = [
    `--kubeconfig=${c.kubeconfig}`,
    `--authentication-kubeconfig=${c.kubeconfig}`,
    `--authorization-kubeconfig=${c.kubeconfig}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
  ];
  return {
    etcd: [
      '--name=default',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcd}`,
      `--advertise-client-urls=${etcd}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=default=${peer}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
      '--listen-metrics-urls=',
      `--quota-backend-bytes=${2 * 2 ** 30}`,
    ],
    'kube-apiserver': [
      `--etcd-servers=${etcd}`,
      `--bind-address=${address}`,
      `--advertise-address=${address}`,
      `--secure-port=${port.api}`,
      `--cert-dir=${join(dir, 'certs')}`,
      `--token-auth-file=${c.tokens}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${c.saPub}`,
      `--service-account-signing-key-file=${c.saKey}`,
      `--service-cluster-ip-range=${SERVICE_SUBNET}`,
      // the kubernetes Service points at the API server only where pods can reach it (not at loopback)
      `--endpoint-reconciler-type=${address === '127.0.0.1' ? 'none' : 'lease'}`,
      '--kubelet-preferred-address-types=InternalIP',
      // namespaces where pods run for real say so (realPodNamespace): a toleration for the real node, and its label
      '--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction',
      '--allow-privileged=true',
      '--enable-priority-and-fairness=false',
      '--v=0',
    ],
    'kube-controller-manager': [
      ...common,
      `--secure-port=${port.controllerManager}`,
      `--service-account-private-key-file=${c.saKey}`,
      `--root-ca-file=${join(dir, 'certs', 'apiserver.crt')}`,
      `--service-cluster-ip-range=${SERVICE_SUBNET}`,
      '--use-service-account-credentials=false',
      '--concurrent-deployment-syncs=10',
      `--flex-volume-plugin-dir=${join(dir, 'flexvolume')}`,
      '--concurrent-replicaset-syncs=10',
      // a production control plane's client budget (the default 20 requests per second makes every controller of a
      // large model or fleet wait on its own rate limiter)
      '--kube-api-qps=100',
      '--kube-api-burst=200',
    ],
    'kube-scheduler': [...common, `--secure-port=${port.scheduler}`, '--kube-api-qps=100', '--kube-api-burst=200'],
    kwok: [
      `--kubeconfig=${c.kubeconfig}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      `--server-address=127.0.0.1:${port.kwok}`,
      '--node-ip=127.0.0.1',
      '--cidr=10.244.0.0/16',
      '--node-lease-duration-seconds=40',
    ],
  };
}

/** The component processes, each logging to `<dir>/<name>.log`; stop() ends them in the reverse order of their start. */
class Processes {
  readonly procs = new Map<string, ChildProcess>();
  private readonly argsOf = new Map<string, string[]>();
  private readonly commandOf = new Map<string, string>();

  constructor(
    private readonly dir: string,
    private readonly binDir: string,
    private readonly detached: boolean,
    private readonly onStart: () => void = () => {},
  ) {}

  start(name: string, args: string[], command = join(this.binDir, name)): void {
    this.argsOf.set(name, args);
    this.commandOf.set(name, command);
    const out = openSync(join(this.dir, `${name}.log`), 'a');
    const p = spawn(command, args, { stdio: ['ignore', out, out], detached: this.detached });
    closeSync(out);
    if (this.detached) p.unref();
    this.procs.set(name, p);
    this.onStart();
  }

  async stopOne(name: string): Promise<void> {
    const p = this.procs.get(name);
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  async restart(name: string): Promise<void> {
    await this.stopOne(name);
    this.start(name, this.argsOf.get(name)!, this.commandOf.get(name));
  }

  async stopAll(): Promise<void> {
    for (const name of [...this.procs.keys()].reverse()) await this.stopOne(name);
  }

  /** Polls `check` until true, failing at once (with the log's tail) when a component exits. */
  async waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    await waitFor(what, check, timeoutMs, this.procs, this.dir);
  }
}

const serviceAccountExists = async (kubeconfig: string) => {
  try {
    kubectl(kubeconfig, ['get', 'serviceaccount', 'default', '-n', 'default']);
    return true;
  } catch {
    return false;
  }
};

export async function startCluster(opts: StartOptions = {}): Promise<Cluster> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const binDir = opts.binDir ?? ensureBinaries(log);
  const realNode = opts.realNode ?? true;
  if (realNode && process.getuid?.() !== 0) throw new Error('the real node needs root (network and mount namespaces, cgroups); start with realNode: false');
  const images = realNode ? (installPackages(), ensureImages(log)) : [];
  await reapAbandoned(log);
  const dir = mkdtempSync(join(tmpdir(), 'recshard-cluster-'));
  const t0 = Date.now();
  const network = realNode ? createNodeNetwork(dir) : undefined;
  const address = network?.hostIp ?? '127.0.0.1';
  const [etcd, etcdPeer, api, controllerManager, scheduler, kwok] = (await freePorts(6)) as [number, number, number, number, number, number];
  const server = `https://${address}:${api}`;
  const creds = writeCredentials(dir, server);
  const args = componentArgs(dir, { etcd, etcdPeer, api, controllerManager, scheduler, kwok }, creds, address);
  const node: NodeInfo | undefined = network && {
    name: 'recshard-node',
    network,
    dir: join(dir, 'node'),
    cgroupRoot: `/${basename(dir)}`,
    containerdSocket: join(dir, 'node', 'containerd', 'containerd.sock'),
  };
  const info = (): ClusterInfo => ({
    dir,
    kubeconfig: creds.kubeconfig,
    server,
    token: creds.token,
    binDir,
    pids: Object.fromEntries([...ps.procs].map(([n, p]) => [n, p.pid!])),
    ...(node ? { node } : {}),
    ...(opts.detached ? {} : { owner: process.pid }),
  });
  const ps: Processes = new Processes(dir, binDir, opts.detached ?? false, () => writeFileSync(join(dir, INFO_FILE), JSON.stringify(info())));
  writeFileSync(join(dir, INFO_FILE), JSON.stringify(info()));
  const stop = async () => {
    if (node) await stopNode(node, () => ps.stopOne('kubelet'));
    await ps.stopAll();
    if (network) deleteNodeNetwork(network);
    if (!process.env.RECSHARD_KEEP_CLUSTER) rmSync(dir, { recursive: true, force: true });
  };
  const apiReady = async () => (await httpsGet(`${server}/readyz`, creds.token)).status === 200;
  const restart = async (name: string) => {
    await ps.restart(name);
    if (name === 'kube-apiserver') await ps.waitFor('kube-apiserver /readyz after restart', apiReady, 90_000);
  };
  try {
    mkdirSync(join(dir, 'etcd'));
    ps.start('etcd', args.etcd!);
    ps.start('kube-apiserver', args['kube-apiserver']!);
    await ps.waitFor('kube-apiserver /readyz', apiReady, 90_000);
    for (const name of ['kube-controller-manager', 'kube-scheduler', 'kwok']) ps.start(name, args[name]!);
    createNodes(creds.kubeconfig);
    if (node) {
      startNode(node, creds.kubeconfig, binDir, images, ps, log);
      kubectl(
        creds.kubeconfig,
        ['apply', '-f', '-'],
        volumeManifests(node)
          .map((v) => stringify(v))
          .join('---\n'),
      );
    }
    await ps.waitFor('nodes Ready', async () => nodesReady(creds.kubeconfig, node?.name), 60_000);
    await ps.waitFor('default ServiceAccount', () => serviceAccountExists(creds.kubeconfig), 60_000);
  } catch (e) {
    await stop();
    throw e;
  }
  log(
    `[control-plane] up in ${((Date.now() - t0) / 1000).toFixed(1)}s${node ? ` with the real node ${node.name} (${node.network.nodeIp})` : ''}; ` +
      `KUBECONFIG=${creds.kubeconfig}`,
  );
  return { ...info(), stop, restart };
}

/**
 * Annotations that make a namespace's pods run on the real node: the PodTolerationRestriction admission plugin
 * gives them its toleration and PodNodeSelector its label (as a platform team pins a namespace to a node pool).
 */
export function realPodNamespace(): Record<string, string> {
  return {
    'scheduler.alpha.kubernetes.io/defaultTolerations': JSON.stringify([{ ...REAL_NODE_TAINT, operator: 'Equal' }]),
    'scheduler.alpha.kubernetes.io/node-selector': `${REAL_NODE_LABEL}=real`,
  };
}

export function kubectl(kubeconfig: string, args: string[], input?: string): string {
  return execFileSync('kubectl', [`--kubeconfig=${kubeconfig}`, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function nodesReady(kubeconfig: string, realNode?: string): boolean {
  const out = kubectl(kubeconfig, [
    'get',
    'nodes',
    '-o',
    'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
  ]);
  const ready = new Set(
    out
      .split('\n')
      .filter((l) => l.endsWith('=True'))
      .map((l) => l.slice(0, -'=True'.length)),
  );
  return [...FAKE_NODES.cpu, ...FAKE_NODES.gpu, ...(realNode ? [realNode] : [])].every((n) => ready.has(n));
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

async function terminate(pid: number | undefined): Promise<void> {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 50 && isRunning(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (!isRunning(pid)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/**
 * Clusters whose owner died without stopping them (a test run killed with SIGKILL): their processes, node, link and
 * directory go, as `make cluster-down` would remove them. Clusters of make cluster-up have no owner and stay.
 */
export async function reapAbandoned(log: (line: string) => void): Promise<string[]> {
  const reaped: string[] = [];
  for (const name of readdirSync(tmpdir()).filter((n) => n.startsWith('recshard-cluster-'))) {
    const file = join(tmpdir(), name, INFO_FILE);
    let info: ClusterInfo;
    try {
      info = JSON.parse(readFileSync(file, 'utf8')) as ClusterInfo;
    } catch {
      continue; // not one of ours, or being written
    }
    if (info.owner === undefined || isRunning(info.owner)) continue;
    log(`[control-plane] cleaning up ${info.dir}: its owner (pid ${info.owner}) is gone`);
    try {
      await stopDetached(info);
      reaped.push(info.dir);
    } catch (e) {
      log(`[control-plane] could not clean up ${info.dir}: ${(e as Error).message}`);
    }
  }
  return reaped;
}

/** Stops a cluster started with detached: true, from its info file. */
export async function stopDetached(info: ClusterInfo): Promise<void> {
  if (info.node) await stopNode(info.node, () => terminate(info.pids.kubelet));
  for (const name of ['coredns', 'kube-proxy', 'containerd', 'kwok', 'kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd'])
    await terminate(info.pids[name]);
  if (info.node) deleteNodeNetwork(info.node.network);
  rmSync(info.dir, { recursive: true, force: true });
}
