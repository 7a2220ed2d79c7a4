// The real Prometheus server (Debian's package, unpacked by local-cluster/install-prometheus.sh) for the
// autoscaling suite: scrapes every second the targets a file_sd file lists.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../../lib/net.js';
import { ROOT, waitUntil } from './support.js';

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

export async function startPrometheus(o: { dir: string; targetsFile: string }): Promise<PrometheusServer> {
  const binary = prometheusBinary();
  mkdirSync(o.dir, { recursive: true });
  const config = join(o.dir, 'prometheus.yml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      scrape_configs: [{ job_name: 'recshard', scrape_timeout: '900ms', file_sd_configs: [{ files: [o.targetsFile], refresh_interval: '1s' }] }],
    }),
  );
  const port = await freePort();
  const proc = spawn(
    binary,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(o.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout!.on('data', (c) => (out += c));
  proc.stderr!.on('data', (c) => (out += c));
  const url = `http://127.0.0.1:${port}`;
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
  );
  return {
    url,
    proc,
    logs: () => out,
    stop: () =>
      new Promise<void>((r) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return r();
        proc.once('exit', () => r());
        proc.kill('SIGTERM');
      }),
  };
}
