// Helpers for suites whose pods really run, on the cluster's real node: namespaces pinned to it, HTTP from inside
// its network namespace (where ClusterIPs and pod IPs route), and containerd's own CLI.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { realPodNamespace } from '../../local-cluster/harness.js';
import type { NodeInfo } from '../../local-cluster/node/node.js';
import { applyYaml, kubectl, kubectlJson, waitUntil } from './support.js';

export function realNode(): NodeInfo {
  const node = inject('clusterNode');
  if (!node)
    throw new Error(
      'this suite needs the cluster with its real node (the global setup starts one; an external RECSHARD_KUBECONFIG needs RECSHARD_CLUSTER_NODE)',
    );
  return JSON.parse(node) as NodeInfo;
}

/** A namespace whose pods run on the real node, under the restricted Pod Security standard (enforced). */
export function createRealNamespace(prefix: string): string {
  const ns = `${prefix}-${randomBytes(3).toString('hex')}`;
  kubectl(
    ['apply', '-f', '-'],
    stringify({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: ns,
        annotations: realPodNamespace(),
        labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' },
      },
    }),
  );
  return ns;
}

/** One HTTP request from inside the node's network namespace (Node's fetch, in a process there). */
export function nodeHttp(url: string, body?: string): { status: number; text: string } {
  const script =
    'let b="";process.stdin.on("data",c=>b+=c).on("end",async()=>{try{const r=await fetch(process.argv[1],' +
    'b?{method:"POST",body:b,headers:{"content-type":"application/json"},signal:AbortSignal.timeout(10000)}:{signal:AbortSignal.timeout(10000)});' +
    'console.log(JSON.stringify({status:r.status,text:await r.text()}))}catch(e){console.log(JSON.stringify({status:0,text:String(e.cause??e)}))}})';
  const out = execFileSync('nsenter', [`--net=${realNode().network.netns}`, '--', process.execPath, '-e', script, url], {
    encoding: 'utf8',
    input: body ?? '',
  });
  return JSON.parse(out) as { status: number; text: string };
}

/** A claim `models` in `namespace`, bound to one of the node's hostpath volumes: the directory the pods mount, as seen here. */
export async function modelVolume(namespace: string): Promise<string> {
  applyYaml(namespace, [
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'models' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    },
  ]);
  const pv = await waitUntil(
    'the claim bound',
    () => kubectlJson<{ spec: { volumeName?: string } }>(['get', 'pvc', 'models', '-n', namespace]).spec.volumeName,
  );
  return kubectlJson<{ spec: { hostPath: { path: string } } }>(['get', 'pv', pv]).spec.hostPath.path;
}

/** containerd's CLI on the node's socket, in the namespace the kubelet's containers live in. */
export function ctr(args: string[]): string {
  return execFileSync('ctr', ['-a', realNode().containerdSocket, '-n', 'k8s.io', ...args], { encoding: 'utf8' });
}

/** The ClusterIP URL of a Service's first port. */
/** Where the first Running pod a label selector picks serves /metrics: its own port, apart from the API behind the Service. */
export function podMetricsUrl(namespace: string, selector: string): string {
  type PodJson = { status: { podIP?: string }; spec: { containers: { ports?: { name: string; containerPort: number }[] }[] } };
  const pods = kubectlJson<{ items: PodJson[] }>(['get', 'pods', '-n', namespace, '-l', selector, '--field-selector=status.phase=Running', '-o', 'json']);
  for (const p of pods.items) {
    const port = p.spec.containers.flatMap((c) => c.ports ?? []).find((x) => x.name === 'metrics');
    if (p.status.podIP && port) return `http://${p.status.podIP}:${port.containerPort}/metrics`;
  }
  throw new Error(`no Running pod with a metrics port matches ${selector} in ${namespace}`);
}

export function serviceUrl(namespace: string, name: string): string {
  const svc = kubectlJson<{ spec: { clusterIP: string; ports: { port: number }[] } }>(['get', 'service', name, '-n', namespace]);
  return `http://${svc.spec.clusterIP}:${svc.spec.ports[0]!.port}`;
}
