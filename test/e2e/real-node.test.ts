// The cluster's real node: pods reach each other and the API server by Service name and ClusterIP (kube-proxy's
// rules, CoreDNS), and a second cluster (`make cluster-up`) started beside the suite's shares nothing with it and
// leaves the host as it was: iptables, the kernel tunables the kubelet would set, mounts, links, cgroups, /var/lib/kubelet and
// /run/containerd.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { kubectl as kubectlWith, reapAbandoned, realPodNamespace, type ClusterInfo } from '../../local-cluster/harness.js';
import { KUBELET_SYSCTLS, nodeLeftovers } from '../../local-cluster/node/node.js';
import { createRealNamespace, nodeHttp, realNode, serviceUrl } from './real-pods.js';
import { ROOT, deleteNamespace, kubeconfig, kubectl, waitUntil } from './support.js';

const IMAGE = 'ghcr.io/recshard/shard-server:0.1.0';
const node = (name: string, script: string, extra: object = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { app: name } },
  spec: {
    terminationGracePeriodSeconds: 1,
    restartPolicy: 'Never',
    securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [
      {
        name,
        image: IMAGE,
        imagePullPolicy: 'Never',
        command: ['/nodejs/bin/node', '-e', script],
        securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
        ...extra,
      },
    ],
  },
});

describe('networking on the real node', () => {
  let ns: string;
  beforeAll(() => {
    ns = createRealNamespace('net');
  });
  afterAll(() => deleteNamespace(ns));

  it('pods reach a Service by name and ClusterIP, and the API server through the kubernetes Service', async () => {
    const web = node('web', 'require("http").createServer((q,s)=>s.end("hello from "+require("os").hostname())).listen(8080)', {
      readinessProbe: { httpGet: { port: 8080, path: '/' }, periodSeconds: 1 },
    });
    (web.spec as { restartPolicy: string }).restartPolicy = 'Always';
    const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } };
    kubectl(['apply', '-n', ns, '-f', '-'], [web, svc].map((d) => stringify(d)).join('---\n'));
    kubectl(['wait', '-n', ns, '--for=condition=Ready', 'pod/web', '--timeout=60s']);
    const ip = serviceUrl(ns, 'web');
    const client = node(
      'client',
      `const fs=require("fs"),https=require("https"),sa="/var/run/secrets/kubernetes.io/serviceaccount/";
      (async()=>{
        const addr=await require("dns").promises.lookup("web.${ns}.svc.cluster.local");
        console.log("dns", addr.address);
        console.log("name", await (await fetch("http://web/")).text());
        console.log("ip", await (await fetch("${ip}/")).text());
        https.get("https://kubernetes.default.svc/version",{ca:fs.readFileSync(sa+"ca.crt"),headers:{authorization:"Bearer "+fs.readFileSync(sa+"token")}},r=>{
          let b="";r.on("data",c=>b+=c).on("end",()=>console.log("api", r.statusCode, JSON.parse(b).gitVersion))})
          .on("error",e=>console.log("api error",e.code));
      })().catch(e=>console.log("error", e.cause??e))`,
    );
    kubectl(['apply', '-n', ns, '-f', '-'], stringify(client));
    await waitUntil('client done', () => /Succeeded|Failed/.test(kubectl(['get', 'pod', 'client', '-n', ns, '-o', 'jsonpath={.status.phase}'])), 60_000, 500);
    const logs = kubectl(['logs', 'client', '-n', ns]);
    expect(logs).toContain(`dns ${ip.replace(/^http:\/\/|:\d+$/g, '')}`);
    expect(logs).toContain('name hello from web');
    expect(logs).toContain('ip hello from web');
    expect(logs).toContain('api 200 v1.33.13');
    // and the node's own processes (the tests' requests) reach the Service's ClusterIP
    expect(nodeHttp(`${ip}/`)).toEqual({ status: 200, text: 'hello from web' });
  });
});

/** What a cluster must not change or leave behind on the host. */
function hostState(except: string) {
  const sysctls = Object.fromEntries(Object.keys(KUBELET_SYSCTLS).map((k) => [k, readFileSync(`/proc/sys/${k}`, 'utf8').trim()]));
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && !m.startsWith(except))
    .sort();
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0])
    .filter(Boolean)
    .sort();
  const cgroups = readdirSync('/sys/fs/cgroup')
    .filter((h) => existsSync(`/sys/fs/cgroup/${h}/cgroup.procs`))
    .flatMap((h) =>
      readdirSync(`/sys/fs/cgroup/${h}`, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => `${h}/${e.name}`),
    )
    .sort();
  const iptables = execFileSync('iptables-save', { encoding: 'utf8' })
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
  const forward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  return { sysctls, mounts, links, cgroups, iptables, forward, varLibKubelet: existsSync('/var/lib/kubelet'), runContainerd: existsSync('/run/containerd') };
}

describe('make cluster-up beside the suite’s cluster', () => {
  it('starts a cluster of its own with its own state file and real node; cluster-down leaves the host exactly as it was', async () => {
    const suite = dirname(realNode().dir); // the suite's own cluster mounts pods' volumes meanwhile
    const before = hostState(suite);
    const state = join(mkdtempSync(join(tmpdir(), 'recshard-state-')), 'state.json');
    const cli = (cmd: string) =>
      execFileSync('npx', ['tsx', join(ROOT, 'local-cluster', 'cli.ts'), cmd], {
        encoding: 'utf8',
        env: { ...process.env, RECSHARD_CLUSTER_STATE: state },
        cwd: ROOT,
      });
    expect(cli('up')).toMatch(/cluster up at https:\/\/10\.213\.\d+\.\d+:\d+: 2 CPU and 2 GPU KWOK nodes and one real node/);
    const second = JSON.parse(readFileSync(state, 'utf8')) as ClusterInfo;
    try {
      // a second `up` of the same checkout finds it; the suite's cluster is another one
      expect(cli('up')).toContain('already up');
      const mine = realNode();
      expect(second.kubeconfig).not.toBe(kubeconfig());
      expect(second.node!.network.hostIp).not.toBe(mine.network.hostIp);
      expect(second.node!.cgroupRoot).not.toBe(mine.cgroupRoot);
      // while both run, the host's iptables and tunables are untouched
      const during = hostState(suite);
      expect(during.iptables).toBe(before.iptables);
      expect(during.sysctls).toEqual(before.sysctls);
      expect(during.forward).toBe(before.forward);
      expect(during.varLibKubelet).toBe(false);
      expect(during.runContainerd).toBe(false);
      // a pod runs there, and the suite's own node is still Ready
      const k = (args: string[], input?: string) => kubectlWith(second.kubeconfig, args, input);
      k(['apply', '-f', '-'], stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'probe', annotations: realPodNamespace() } }));
      k(['apply', '-n', 'probe', '-f', '-'], stringify(node('hello', 'console.log("up")')));
      await waitUntil(
        'the pod of the second cluster',
        () => k(['get', 'pod', 'hello', '-n', 'probe', '-o', 'jsonpath={.status.phase}']) === 'Succeeded',
        60_000,
        500,
      );
      expect(k(['logs', 'hello', '-n', 'probe']).trim()).toBe('up');
      expect(kubectl(['get', 'node', mine.name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).toBe('True');
    } finally {
      expect(cli('down')).toContain('cluster stopped');
    }
    expect(nodeLeftovers(second.node!)).toEqual([]);
    expect(existsSync(second.dir)).toBe(false);
    expect(hostState(suite)).toEqual(before);
    expect(cli('down')).toContain('no cluster of this checkout is up');
    // and the suite's cluster is untouched
    expect(kubectl(['get', 'node', realNode().name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).toBe('True');
  });
});

describe('a test run killed before it could stop its cluster', () => {
  it('leaves a cluster that the next start cleans up completely', async () => {
    const suite = dirname(realNode().dir);
    const before = hostState(suite);
    // a harness in a process of its own, killed with SIGKILL once its cluster is up: nothing of it runs its stop()
    const script = `const h = await import(${JSON.stringify(join(ROOT, 'local-cluster', 'harness.ts'))});
      const c = await h.startCluster({ binDir: ${JSON.stringify(inject('clusterBinDir'))}, log: () => {} });
      console.log('DIR ' + c.dir);
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const dir = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c) => {
        out += c;
        const m = /DIR (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`the harness exited ${code} before its cluster was up`)));
    });
    const info = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterInfo;
    expect(info.owner).toBe(child.pid);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(Object.values(info.pids).some((pid) => existsSync(`/proc/${pid}`))).toBe(true); // orphans, still running

    const lines: string[] = [];
    expect(await reapAbandoned((l) => lines.push(l))).toEqual([dir]);
    expect(lines[0]).toContain(`its owner (pid ${child.pid}) is gone`);
    expect(Object.values(info.pids).filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
    expect(nodeLeftovers(info.node!)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    expect(hostState(suite)).toEqual(before);
    // the suite's own cluster has a living owner: it is left alone
    expect(existsSync(realNode().dir)).toBe(true);
  });
});
