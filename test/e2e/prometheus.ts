// The real Prometheus server (Debian's package, unpacked by local-cluster/install-prometheus.sh) for the
// autoscaling suite: inside the real node's network namespace (where pod IPs route), listening on the node's
// address, it scrapes every second the pods the chart's PodMonitor selects (the shard-server pods' `http` port,
// /metrics), with the namespace and pod labels it would add. Debian builds Prometheus without Kubernetes service
// discovery, so the suite lists the pods itself each second into a file_sd file.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { kubectl } from '../../local-cluster/harness.js';
import type { NodeInfo } from '../../local-cluster/node/node.js';
import { ROOT, waitUntil } from './support.js';

interface PodJson {
  metadata: { name: string };
  spec: { containers: { ports?: { name?: string; containerPort: number }[] }[] };
  status: { phase?: string; podIP?: string };
}

export interface PrometheusServer {
  url: string;
  proc: ChildProcess;
  logs(): string;
  stop(): Promise<void>;
}

/** The prometheus binary (installing the package on first use); promtool lies beside it. */
export function prometheusBinary(): string {
  return execFileSync('bash', [join(ROOT, 'local-cluster', 'install-prometheus.sh')], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .at(-1)!;
}

export async function startPrometheus(o: { dir: string; namespace: string; kubeconfig: string; node: NodeInfo }): Promise<PrometheusServer> {
  const binary = prometheusBinary();
  mkdirSync(o.dir, { recursive: true });
  const config = join(o.dir, 'prometheus.yml');
  const targetsFile = join(o.dir, 'targets.json');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      scrape_configs: [{ job_name: 'recshard-pods', scrape_timeout: '900ms', file_sd_configs: [{ files: [targetsFile], refresh_interval: '1s' }] }],
    }),
  );
  const discover = () => {
    const pods = JSON.parse(kubectl(o.kubeconfig, ['get', 'pods', '-n', o.namespace, '-l', 'app.kubernetes.io/name=recshard-shard-server', '-o', 'json'])) as {
      items: PodJson[];
    };
    const targets = pods.items.flatMap((p) => {
      const port = p.spec.containers.flatMap((c) => c.ports ?? []).find((x) => x.name === 'metrics');
      if (p.status.phase !== 'Running' || !p.status.podIP || !port) return [];
      return [{ targets: [`${p.status.podIP}:${port.containerPort}`], labels: { namespace: o.namespace, pod: p.metadata.name } }];
    });
    writeFileSync(`${targetsFile}.tmp`, JSON.stringify(targets));
    renameSync(`${targetsFile}.tmp`, targetsFile);
  };
  discover();
  const discovery = setInterval(() => {
    try {
      discover();
    } catch {
      /* the next round */
    }
  }, 1000);
  // a free port on the node's address: nothing else listens in that namespace but the kubelet and kube-proxy
  const port = 19090 + Math.floor(Math.random() * 1000);
  const proc = spawn(
    'nsenter',
    [
      `--net=${o.node.network.netns}`,
      '--',
      binary,
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(o.dir, 'data')}`,
      `--web.listen-address=${o.node.network.nodeIp}:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout!.on('data', (c) => (out += c));
  proc.stderr!.on('data', (c) => (out += c));
  const url = `http://${o.node.network.nodeIp}:${port}`;
  await waitUntil(
    'Prometheus ready',
    async () => {
      if (proc.exitCode !== null) throw new Error(`prometheus exited ${proc.exitCode}:\n${out}`);
      try {
        return (await fetch(`${url}/-/ready`)).ok;
      } catch {
        return false;
      }
    },
    30_000,
  ).catch((e: unknown) => {
    clearInterval(discovery);
    proc.kill('SIGKILL');
    throw e;
  });
  return {
    url,
    proc,
    logs: () => out,
    stop: () =>
      new Promise<void>((r) => {
        clearInterval(discovery);
        if (proc.exitCode !== null || proc.signalCode !== null) return r();
        proc.once('exit', () => r());
        proc.kill('SIGTERM');
      }),
  };
}
