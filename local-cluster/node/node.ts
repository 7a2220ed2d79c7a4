// The real node: containerd (with runc and the CNI bridge), a kubelet, kube-proxy and CoreDNS, all inside the
// node's network namespace and with every piece of state in the cluster's directory, registered with the local
// control plane beside the KWOK nodes. The kubelet runs in a mount namespace of its own where stand-in files cover
// the four kernel tunables it would set and tmpfs covers /var/lib and /var/log; containerd runs in one where tmpfs
// covers /run and /var/lib (its shim sockets and pod namespaces). The node is tainted: only pods that tolerate it
// run here (namespaces opt in with the PodTolerationRestriction and PodNodeSelector annotations, realPodNamespace()).
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { isRunning } from '../../lib/process.js';
import { POD_BRIDGE, POD_GATEWAY, POD_SUBNET, processesIn, run, type NodeNetwork } from './network.js';

const HERE = dirname(fileURLToPath(import.meta.url));

export const REAL_NODE_LABEL = 'recshard.io/node';
export const REAL_NODE_TAINT = { key: 'recshard.io/real-node', value: 'true', effect: 'NoSchedule' } as const;
/** The four host tunables the kubelet sets; it sees (and may write) stand-in files instead. */
export const KUBELET_SYSCTLS = { 'vm/overcommit_memory': '1', 'vm/panic_on_oom': '0', 'kernel/panic': '10', 'kernel/panic_on_oops': '1' } as const;
const CGROUP_FS = '/sys/fs/cgroup';
/** Hostpath volumes the control plane offers to claims without a storage class (the kind walkthrough's PVC binds one). */
const VOLUMES = 8;

export interface NodeInfo {
  name: string;
  network: NodeNetwork;
  dir: string;
  /** The cgroup under which the kubelet puts every pod (in each hierarchy). */
  cgroupRoot: string;
  containerdSocket: string;
}

/** The kubelet's root directory: a shared mount, so the volumes it mounts reach containerd. */
const kubeletRoot = (node: NodeInfo) => join(node.dir, 'kubelet', 'root');
/** The directory of hostpath volume `i`. */
const volumeDir = (node: NodeInfo, i: number) => join(node.dir, 'volumes', `pv-${i}`);

/** Builds (or finds cached) the images the node runs; returns docker archives to import. */
export function ensureImages(log: (line: string) => void): string[] {
  const t0 = Date.now();
  const out = execFileSync('bash', [join(HERE, 'images.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  log(`[node] images ready (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  return out.trim().split('\n').filter(Boolean);
}

export function installPackages(): void {
  execFileSync('bash', [join(HERE, 'install-packages.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
}

export interface ProcessStarter {
  start(name: string, args: string[], command: string): void;
}

/** Everything the node's processes read, written into `dir`. */
function writeConfig(node: NodeInfo, kubeconfig: string, binDir: string): Record<string, string> {
  const d = node.dir;
  const f = {
    containerd: join(d, 'containerd', 'config.toml'),
    cni: join(d, 'cni', 'net.d', '10-recshard.conflist'),
    kubelet: join(d, 'kubelet', 'config.yaml'),
    kubeletRun: join(d, 'kubelet', 'run.sh'),
    kubeProxy: join(d, 'kube-proxy.yaml'),
    corefile: join(d, 'Corefile'),
    containerdRun: join(d, 'containerd', 'run.sh'),
  };
  for (const p of Object.values(f)) mkdirSync(dirname(p), { recursive: true });
  const c = join(d, 'containerd');
  writeFileSync(
    f.containerd,
    `version = 2
root = "${c}/root"
state = "${c}/state"
[grpc]
  address = "${node.containerdSocket}"
[ttrpc]
  address = "${node.containerdSocket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${c}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  disable_apparmor = true
  # no CAP_SYS_RESOURCE here: runc cannot lower oom_score_adj, so containerd clamps what the kubelet asks for
  restrict_oom_score_adj = true
  sandbox_image = "registry.k8s.io/pause:3.10"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${join(d, 'cni', 'net.d')}"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = false
    Root = "${c}/runc"
`,
  );
  writeFileSync(
    f.containerdRun,
    [
      'set -e',
      'mount -t tmpfs -o size=64m,mode=755 recshard-run /run',
      'mount -t tmpfs -o size=64m recshard-varlib /var/lib',
      `exec containerd --config ${f.containerd}`,
    ].join('\n'),
  );
  writeFileSync(
    f.cni,
    JSON.stringify({
      cniVersion: '0.4.0',
      name: 'recshard',
      plugins: [
        {
          type: 'bridge',
          bridge: POD_BRIDGE,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', subnet: POD_SUBNET, gateway: POD_GATEWAY, routes: [{ dst: '0.0.0.0/0' }], dataDir: join(d, 'cni', 'ipam') },
        },
        { type: 'portmap', capabilities: { portMappings: true }, snat: false },
      ],
    }),
  );
  const k = join(d, 'kubelet');
  const fake = join(k, 'sysctl');
  mkdirSync(fake, { recursive: true });
  for (const [name, value] of Object.entries(KUBELET_SYSCTLS)) writeFileSync(join(fake, name.replace('/', '_')), `${value}\n`);
  writeFileSync(join(k, 'resolv.conf'), 'options ndots:5\n');
  writeFileSync(
    f.kubelet,
    stringify({
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      address: node.network.nodeIp,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      containerRuntimeEndpoint: `unix://${node.containerdSocket}`,
      cgroupDriver: 'cgroupfs',
      cgroupRoot: node.cgroupRoot,
      failSwapOn: false,
      makeIPTablesUtilChains: false,
      authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
      authorization: { mode: 'AlwaysAllow' },
      podLogsDir: join(k, 'logs'),
      resolvConf: join(k, 'resolv.conf'),
      clusterDNS: [POD_GATEWAY],
      clusterDomain: 'cluster.local',
      serializeImagePulls: false,
      evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      registerWithTaints: [REAL_NODE_TAINT],
      // the API server's probes and status updates, a little faster than the defaults, for tests that watch them
      nodeStatusUpdateFrequency: '5s',
      syncFrequency: '10s',
    }),
  );
  const mounts = Object.keys(KUBELET_SYSCTLS).map((s) => `mount --bind ${join(fake, s.replace('/', '_'))} /proc/sys/${s}`);
  writeFileSync(
    f.kubeletRun,
    [
      'set -e',
      ...mounts,
      'mount -t tmpfs -o size=16m recshard-varlog /var/log',
      'mount -t tmpfs -o size=64m recshard-varlib /var/lib',
      `exec ${join(binDir, 'kubelet')} --config=${f.kubelet} --kubeconfig=${kubeconfig} --root-dir=${kubeletRoot(node)} --cert-dir=${join(k, 'certs')} ` +
        `--volume-plugin-dir=${join(k, 'volume-plugins')} --hostname-override=${node.name} --node-ip=${node.network.nodeIp} ` +
        `--node-labels=${REAL_NODE_LABEL}=real --v=1`,
    ].join('\n'),
  );
  writeFileSync(
    f.kubeProxy,
    stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      clientConnection: { kubeconfig },
      mode: 'iptables',
      hostnameOverride: node.name,
      clusterCIDR: POD_SUBNET,
      healthzBindAddress: '127.0.0.1:10256',
      metricsBindAddress: '127.0.0.1:10249',
      // a pod reaching a Service backed by a pod on the same bridge gets its answer back through the node (no
      // br_netfilter module is loaded on the host for it)
      iptables: { masqueradeAll: true, localhostNodePorts: false },
      // leave the conntrack tunables alone (some are not per namespace)
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    }),
  );
  writeFileSync(
    f.corefile,
    `.:53 {
  bind ${POD_GATEWAY}
  errors
  ready 127.0.0.1:8181
  kubernetes cluster.local in-addr.arpa ip6.arpa {
    kubeconfig ${kubeconfig} recshard
    pods insecure
    ttl 5
  }
  cache 5
}
`,
  );
  return f;
}

/** The cgroup directories of `root` in every hierarchy (cgroup v1 controllers and the v2 one of hybrid mode). */
function cgroupDirs(root: string): string[] {
  const dirs: string[] = [];
  for (const h of readdirSync(CGROUP_FS)) {
    const p = join(CGROUP_FS, h);
    if (existsSync(join(p, 'cgroup.procs'))) dirs.push(join(p, root));
  }
  return dirs;
}

/** Prepares the node (files, cgroups, the kubelet's shared root, images) and starts its processes. */
export function startNode(node: NodeInfo, kubeconfig: string, binDir: string, images: string[], ps: ProcessStarter, log: (l: string) => void): void {
  const files = writeConfig(node, kubeconfig, binDir);
  for (const c of cgroupDirs(node.cgroupRoot)) mkdirSync(c, { recursive: true });
  // The kubelet's root is a shared mount: the volumes it mounts in its own mount namespace reach containerd's.
  const root = kubeletRoot(node);
  mkdirSync(root, { recursive: true });
  run('mount', ['--bind', root, root]);
  run('mount', ['--make-shared', root]);
  for (let i = 0; i < VOLUMES; i++) {
    const v = volumeDir(node, i);
    mkdirSync(v, { recursive: true });
    chownSync(v, 65532, 65532);
  }
  const ns = ['--net=' + node.network.netns, '--'];
  ps.start('containerd', [...ns, 'unshare', '-m', '--propagation', 'unchanged', '--', 'bash', files.containerdRun!], 'nsenter');
  const t0 = Date.now();
  waitSync(() => existsSync(node.containerdSocket), 20_000, 'containerd socket');
  for (const a of images) run('ctr', ['-a', node.containerdSocket, '-n', 'k8s.io', 'images', 'import', a]);
  log(`[node] containerd up, ${images.length} images imported (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  ps.start('kubelet', [...ns, 'unshare', '-m', '--propagation', 'unchanged', '--', 'bash', files.kubeletRun!], 'nsenter');
  ps.start('kube-proxy', [...ns, join(binDir, 'kube-proxy'), `--config=${files.kubeProxy}`, '--v=1'], 'nsenter');
  const coredns = readdirSync(binDir).find((n) => n.startsWith('coredns-'))!;
  ps.start('coredns', [...ns, join(binDir, coredns), '-conf', files.corefile!], 'nsenter');
}

/** The PersistentVolumes of the node's hostpath pool, for claims that name no storage class. */
export function volumeManifests(node: NodeInfo): object[] {
  return Array.from({ length: VOLUMES }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `recshard-local-${i}`, labels: { 'recshard.io/local-volume': 'true' } },
    spec: {
      capacity: { storage: '10Gi' },
      accessModes: ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany'],
      persistentVolumeReclaimPolicy: 'Retain',
      hostPath: { path: volumeDir(node, i), type: 'Directory' },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: REAL_NODE_LABEL, operator: 'In', values: ['real'] }] }] } },
    },
  }));
}

function waitSync(check: () => boolean, timeoutMs: number, what: string): void {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    execFileSync('sleep', ['0.1']);
  }
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** What of the node is still on the host (empty once stopNode and deleteNodeNetwork are done). */
export function nodeLeftovers(node: NodeInfo): string[] {
  const left: string[] = [];
  const procs = processesIn(node.network.netns);
  if (procs.length) left.push(`processes in the node's network namespace: ${procs.join(' ')}`);
  for (const d of cgroupDirs(node.cgroupRoot)) if (existsSync(d)) left.push(`cgroup ${d}`);
  for (const l of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const target = l.split(' ')[4];
    if (target?.startsWith(node.dir) || target === node.network.netns) left.push(`mount ${target}`);
  }
  if (existsSync(`/sys/class/net/${node.network.hostInterface}`)) left.push(`link ${node.network.hostInterface}`);
  return left;
}

/** PIDs of every process in the pods' cgroups. */
function podProcesses(cgroupRoot: string): number[] {
  const pids = new Set<number>();
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const l of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (l) pids.add(Number(l));
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
  };
  for (const d of cgroupDirs(cgroupRoot)) walk(d);
  return [...pids];
}

function removeCgroups(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroups(join(dir, e.name));
  rmdirSync(dir);
}

/**
 * Stops the node and removes all it made outside its directory: its containers, processes, cgroups, mounts and
 * link. `stopKubelet` ends the kubelet first (so it restarts nothing); containers, their shims and containerd
 * then go with SIGKILL.
 */
export async function stopNode(node: NodeInfo, stopKubelet: () => Promise<void>): Promise<void> {
  await stopKubelet();
  for (let i = 0; i < 50; i++) {
    const pids = [...podProcesses(node.cgroupRoot), ...processesIn(node.network.netns)];
    if (pids.length === 0) break;
    killAll(pids);
    await new Promise((r) => setTimeout(r, 100));
    if (pids.every((p) => !isRunning(p)) && i > 2) break;
  }
  for (const d of cgroupDirs(node.cgroupRoot)) {
    for (let i = 0; ; i++) {
      try {
        removeCgroups(d);
        break;
      } catch (e) {
        if (i > 30) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  const root = kubeletRoot(node);
  const mounted = () =>
    readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.split(' ')[4]?.startsWith(root));
  for (let i = 0; i < 20 && mounted().length > 0; i++) {
    try {
      run('umount', ['-R', root]);
    } catch {
      for (const l of mounted().reverse()) {
        try {
          run('umount', ['-l', l.split(' ')[4]!]);
        } catch {
          /* next round */
        }
      }
    }
  }
}
