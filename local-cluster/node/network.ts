// The real node's network: a network namespace of its own (bound to a file in the cluster's directory, so no
// /run/netns is made), joined to the host by one veth pair on a /30 of 10.213.0.0/16 that no other cluster on this
// machine uses. Inside it: the pod bridge, forwarding, and later kube-proxy's rules; on the host: only the veth's
// address. The host's iptables and sysctls are never touched.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Pods get addresses of this subnet on the bridge inside the node's namespace (the same in every cluster: it never leaves it). */
export const POD_SUBNET = '10.85.0.0/24';
export const POD_GATEWAY = '10.85.0.1';
export const POD_BRIDGE = 'cni0';
export const SERVICE_SUBNET = '10.96.0.0/16';

export interface NodeNetwork {
  /** The file the namespace is bound to (`nsenter --net=<netns>`). */
  netns: string;
  /** The veth end on the host. */
  hostInterface: string;
  /** The host's address on the link: the API server listens here. */
  hostIp: string;
  /** The node's address on the link: the kubelet's address and the node's name. */
  nodeIp: string;
}

export const run = (cmd: string, args: string[], input?: string): string =>
  execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });

/** Runs `args` inside the node's network namespace (and nothing else of it: the mounts stay the host's). */
export const inNetns = (netns: string, args: string[], input?: string): string => run('nsenter', [`--net=${netns}`, '--', ...args], input);

const usedLinks = (): Set<number> => {
  const used = new Set<number>();
  for (const m of run('ip', ['-4', '-o', 'addr', 'show']).matchAll(/inet 10\.213\.(\d+)\.(\d+)\//g)) used.add((Number(m[1]) * 256 + Number(m[2])) >> 2);
  return used;
};

const linkAddresses = (k: number) => {
  const base = k * 4;
  const ip = (n: number) => `10.213.${(base + n) >> 8}.${(base + n) & 255}`;
  return { hostIp: ip(1), nodeIp: ip(2) };
};

/** Creates the namespace, the link and the bridge. Undone by deleteNodeNetwork. */
export function createNodeNetwork(dir: string): NodeNetwork {
  const netns = join(dir, 'netns');
  writeFileSync(netns, '');
  run('unshare', [`--net=${netns}`, 'true']);
  for (let attempt = 0; ; attempt++) {
    const used = usedLinks();
    let k = Math.floor(Math.random() * 16384);
    while (used.has(k)) k = (k + 1) % 16384;
    const hostInterface = `rs-${k.toString(36)}`;
    const { hostIp, nodeIp } = linkAddresses(k);
    try {
      inNetns(netns, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', hostInterface, 'netns', String(process.pid)]);
    } catch (e) {
      if (attempt < 5) continue; // another cluster took that name a moment ago
      throw e;
    }
    run('ip', ['addr', 'add', `${hostIp}/30`, 'dev', hostInterface]);
    run('ip', ['link', 'set', hostInterface, 'up']);
    const script = [
      'set -e',
      'ip link set lo up',
      `ip addr add ${nodeIp}/30 dev eth0`,
      'ip link set eth0 up',
      `ip link add ${POD_BRIDGE} type bridge`,
      `ip addr add ${POD_GATEWAY}/24 dev ${POD_BRIDGE}`,
      `ip link set ${POD_BRIDGE} up`,
      // ClusterIPs are routed toward the pods' bridge (kube-proxy's rules rewrite them on the way): processes of
      // the node itself reach Services too; there is no default route, so nothing leaves the machine
      `ip route add ${SERVICE_SUBNET} dev ${POD_BRIDGE} src ${POD_GATEWAY}`,
      // forwarding between the pods and the link, in this namespace only (net.* sysctls are per namespace)
      'echo 1 > /proc/sys/net/ipv4/ip_forward',
    ].join('\n');
    inNetns(netns, ['sh', '-c', script]);
    return { netns, hostInterface, hostIp, nodeIp };
  }
}

/** The inode that names the namespace in /proc/PID/ns/net ("net:[N]"). */
export function netnsId(netns: string): string | undefined {
  try {
    return run('stat', ['-L', '-c', '%i', netns]).trim();
  } catch {
    return undefined;
  }
}

/** PIDs of the processes in the node's network namespace (containerd, its shims, the kubelet, kube-proxy, CoreDNS). */
export function processesIn(netns: string): number[] {
  const id = netnsId(netns);
  if (!id) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) === `net:[${id}]`) pids.push(Number(entry));
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return pids;
}

export function deleteNodeNetwork(n: Pick<NodeNetwork, 'netns' | 'hostInterface'>): void {
  try {
    run('ip', ['link', 'del', n.hostInterface]);
  } catch {
    /* went with the namespace */
  }
  try {
    if (readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${n.netns} `)) run('umount', [n.netns]);
  } catch {
    /* not mounted */
  }
}
