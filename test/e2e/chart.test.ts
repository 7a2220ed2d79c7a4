// The Helm chart with the real helm binary against the real control plane: lint, install, upgrade,
// uninstall, and the operator reconciling a RecModel with nothing but the chart's RBAC (a token of the
// chart's ServiceAccount from the TokenRequest API).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { parse, stringify } from 'yaml';
import { ensureBinaries } from '../cluster/harness.js';
import {
  ROOT, childNames, condition, createNamespace, deleteNamespace, getRecModel, installCrd, kubeconfig, kubectl,
  kubectlFails, readExample, startOperator, waitUntil, type OperatorProcess,
} from './support.js';

const CHART = join(ROOT, 'charts', 'recshard');
let helmBin: string;
const helm = (args: string[]) => execFileSync(helmBin, [`--kubeconfig=${kubeconfig()}`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

let ns: string;
let release: string;
let op: OperatorProcess | undefined;

beforeAll(() => {
  helmBin = join(inject('clusterBinDir') || ensureBinaries(), 'helm');
  installCrd();
  ns = createNamespace('chart');
  release = `rs-${ns.slice(-6)}`;
});

afterAll(async () => {
  await op?.stop();
  try {
    helm(['uninstall', release, '-n', ns]);
  } catch {
    /* already gone */
  }
  deleteNamespace(ns);
});

describe('helm chart', () => {
  it('lints clean', () => {
    expect(helm(['lint', CHART, '--strict'])).toContain('0 chart(s) failed');
  });

  it('installs, upgrades and uninstalls on the real control plane', () => {
    helm(['install', release, CHART, '-n', ns, '--wait=false']);
    const dep = JSON.parse(kubectl(['get', 'deployment', `${release}-operator`, '-n', ns, '-o', 'json']));
    expect(dep.spec.replicas).toBe(2);
    expect(dep.spec.template.spec.containers[0].args).toContain(`--lease-name=${release}-operator`);
    helm(['upgrade', release, CHART, '-n', ns, '--set', 'replicaCount=1', '--set', 'logLevel=debug']);
    const upgraded = JSON.parse(kubectl(['get', 'deployment', `${release}-operator`, '-n', ns, '-o', 'json']));
    expect(upgraded.spec.replicas).toBe(1);
    expect(upgraded.spec.template.spec.containers[0].args).toContain('--log-level=debug');
    expect(helm(['status', release, '-n', ns])).toContain('STATUS: deployed');
  });

  it('the operator reconciles a RecModel with only the chart\'s RBAC, and is refused Secrets', async () => {
    const token = kubectl(['create', 'token', `${release}-operator`, '-n', ns, '--duration=1h']).trim();
    const admin = parse(readFileSync(kubeconfig(), 'utf8'));
    admin.users = [{ name: 'operator', user: { token } }];
    admin.contexts = [{ name: 'operator', context: { cluster: admin.clusters[0].name, user: 'operator' } }];
    admin['current-context'] = 'operator';
    const dir = mkdtempSync(join(tmpdir(), 'recshard-sa-'));
    const saKubeconfig = join(dir, 'kubeconfig');
    writeFileSync(saKubeconfig, stringify(admin));

    const asOperator = (args: string[]) => execFileSync('kubectl', [`--kubeconfig=${saKubeconfig}`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(() => asOperator(['get', 'secrets', '-n', ns])).toThrow(/forbidden/);
    // pods are read-only (the autoscaler reads readiness and addresses); nothing else about them is allowed
    expect(asOperator(['auth', 'can-i', 'list', 'pods', '-n', ns]).trim()).toBe('yes');
    expect(kubectlFails([`--as=system:serviceaccount:${ns}:${release}-operator`, 'delete', 'pods', '--all', '-n', ns, '--dry-run=server'])).toMatch(/forbidden/);
    expect(() => asOperator(['auth', 'can-i', 'create', 'pods', '-n', ns])).toThrow(); // `can-i` exits 1 for no
    expect(asOperator(['auth', 'can-i', 'patch', 'deployments', '--subresource=scale', '-n', ns]).trim()).toBe('yes');
    expect(asOperator(['auth', 'can-i', 'patch', 'recmodels', '--subresource=status', '-n', ns]).trim()).toBe('yes');
    expect(kubectlFails([`--as=system:serviceaccount:${ns}:${release}-operator`, 'delete', 'nodes', '--all', '--dry-run=server'])).toMatch(/forbidden/);

    op = await startOperator(ns, { kubeconfig: saKubeconfig, extraArgs: [`--lease-name=${release}-operator`] });
    const rm = readExample('dlrm-rmc3.yaml').find((r) => r.metadata.name === 'rmc3-lb')!;
    kubectl(['apply', '-n', ns, '-f', '-'], JSON.stringify(rm));
    await waitUntil('rmc3-lb Ready', () => condition(getRecModel(ns, 'rmc3-lb'), 'Ready')?.status === 'True', 90_000);
    expect(childNames(ns, 'deployments', 'rmc3-lb')).toEqual(['rmc3-lb-main', 'rmc3-lb-shard-0', 'rmc3-lb-shard-1']);
    expect(op.logs()).not.toMatch(/forbidden/);
  });

  it('uninstalls', () => {
    helm(['uninstall', release, '-n', ns]);
    expect(kubectlFails(['get', 'deployment', `${release}-operator`, '-n', ns])).toContain('NotFound');
  });
});
