// Helpers for suites on the real control plane: namespaces, the CRD, operator processes, kubectl, polling.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { freePort } from '../../lib/net.js';
import { kubectl as kubectlWith } from '../../local-cluster/harness.js';
import type { RecModel } from '../../operator/api/v1alpha1/index.js';
import { shardName } from '../../operator/builders/names.js';
import { OPERATOR_NODE_FLAGS } from '../../operator/flags.js';
import { KubeClient } from '../../operator/kube/client.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const kubeconfig = (): string => inject('kubeconfig');

export function kubectl(args: string[], input?: string): string {
  return kubectlWith(kubeconfig(), args, input);
}

/** kubectl that is expected to fail: returns its stderr. */
export function kubectlFails(args: string[], input?: string): string {
  try {
    kubectl(args, input);
  } catch (e) {
    return String((e as { stderr?: string }).stderr ?? e);
  }
  throw new Error(`kubectl ${args.join(' ')} succeeded but should have failed`);
}

export function kubectlJson<T = any>(args: string[]): T {
  return JSON.parse(kubectl([...args, '-o', 'json'])) as T;
}

export function client(): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig());
  return new KubeClient(kc);
}

export function installCrd(): void {
  kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(ROOT, 'crds')]);
  kubectl(['wait', '--for=condition=Established', 'crd/recmodels.recshard.io', '--timeout=60s']);
}

export function createNamespace(prefix: string): string {
  const ns = `${prefix}-${randomBytes(3).toString('hex')}`;
  kubectl(['create', 'namespace', ns]);
  return ns;
}

export function deleteNamespace(ns: string): void {
  kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
}

export async function waitUntil<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 60_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}

export function readExample(file: string): RecModel[] {
  return parseAllDocuments(readFileSync(join(ROOT, 'examples', file), 'utf8')).map((d) => d.toJS() as RecModel);
}

export function applyYaml(namespace: string, docs: object[]): string {
  return kubectl(['apply', '-n', namespace, '-f', '-'], docs.map((d) => stringify(d)).join('---\n'));
}

export function getRecModel(namespace: string, name: string): RecModel {
  return kubectlJson<RecModel>(['get', 'recmodel', name, '-n', namespace]);
}

export function condition(rm: RecModel, type: string) {
  return rm.status?.conditions?.find((c) => c.type === type);
}

/** The serving version the RecModel's spec asks for (status.rollout.toVersion), once the operator has written it. */
export function servingVersion(namespace: string, name: string): string {
  const v = getRecModel(namespace, name).status?.rollout?.toVersion;
  if (!v) throw new Error(`recmodel ${namespace}/${name} has no status.rollout.toVersion yet`);
  return v;
}

/** The Deployment (Service, budget, HPA) names of shard `index` of the model's current version. */
export function shardNameOf(namespace: string, name: string, index: number): string {
  return shardName(name, index, servingVersion(namespace, name));
}

export interface OperatorProcess {
  proc: ChildProcess;
  port: number;
  identity: string;
  logs: () => string;
  metrics: () => Promise<string>;
  /** Sends the signal and waits for the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

export async function startOperator(
  namespace: string,
  opts: { identity?: string; leaderElect?: boolean; kubeconfig?: string; extraArgs?: string[] } = {},
): Promise<OperatorProcess> {
  const main = join(ROOT, 'dist', 'operator', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`make build\` (make test does) before the cluster suites`);
  const port = await freePort();
  const identity = opts.identity ?? `op-${randomBytes(3).toString('hex')}`;
  const args = [
    ...OPERATOR_NODE_FLAGS,
    main,
    `--kubeconfig=${opts.kubeconfig ?? kubeconfig()}`,
    `--namespace=${namespace}`,
    `--lease-namespace=${namespace}`,
    `--identity=${identity}`,
    `--listen=127.0.0.1:${port}`,
    '--log-level=debug',
    '--resync=30',
    ...(opts.leaderElect === false ? ['--no-leader-elect'] : []),
    ...(opts.extraArgs ?? []),
  ];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (c) => (out += c));
  proc.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  await waitUntil(
    `operator ${identity} ready`,
    async () => {
      if (proc.exitCode !== null) throw new Error(`operator exited ${proc.exitCode}:\n${out}`);
      return (await httpGet(port, '/readyz')).status === 200;
    },
    30_000,
  );
  return {
    proc,
    port,
    identity,
    logs: () => out,
    metrics: async () => (await httpGet(port, '/metrics')).body,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Names of objects of a kind that belong to one model (by its instance label). */
export function childNames(namespace: string, kind: string, model: string): string[] {
  const list = kubectlJson<{ items: { metadata: { name: string } }[] }>(['get', kind, '-n', namespace, '-l', `app.kubernetes.io/instance=${model}`]);
  return list.items.map((i) => i.metadata.name).sort();
}
