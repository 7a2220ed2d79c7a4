// The pods the operator creates, on the real control plane: admitted in a namespace that enforces the
// `restricted` Pod Security Standard (the ReplicaSets would report FailedCreate otherwise), each component
// covered by a PodDisruptionBudget, sparse shards closed to all but their main and the trusted namespaces by a
// NetworkPolicy, and the budgets and policies of shards a new plan drops deleted with them (once the main has left
// them and they have drained). No CNI runs here, so the NetworkPolicies are checked as the API server stores them,
// not enforced.
import type { V1NetworkPolicy, V1PodDisruptionBudget } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecModel } from '../../operator/api/v1alpha1/index.js';
import { shardSetName } from '../../operator/builders/names.js';
import { customModel } from '../fixtures.js';
import {
  applyYaml,
  childNames,
  condition,
  createNamespace,
  deleteNamespace,
  getRecModel,
  installCrd,
  kubectl,
  kubectlJson,
  servingVersion,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from './support.js';

const NAME = 'guarded';
const model = (sharding: Record<string, unknown>): RecModel => ({
  apiVersion: 'recshard.io/v1alpha1',
  kind: 'RecModel',
  metadata: { name: NAME },
  spec: {
    model: customModel([
      { name: 't0', rows: 100_000, dim: 32 },
      { name: 't1', rows: 100_000, dim: 32 },
    ]),
    sharding,
    // a short drain, so the shards a new plan drops go soon after the main left them
    rollout: { drainPeriod: '2s' },
  } as RecModel['spec'],
});

let ns: string;
let op: OperatorProcess | undefined;

beforeAll(async () => {
  installCrd();
  ns = createNamespace('pss');
  kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest']);
  op = await startOperator(ns);
});

afterAll(async () => {
  await op?.stop();
  if (ns) deleteNamespace(ns);
});

describe('pods under the restricted Pod Security Standard', () => {
  it("every component's pods are admitted and become Ready", async () => {
    applyYaml(ns, [model({ strategy: 'load-balanced', shards: 2 })]);
    await waitUntil(
      'Ready',
      () => {
        const m = getRecModel(ns, NAME);
        return condition(m, 'Ready')?.status === 'True' && m.status?.rollout?.toVersion;
      },
      90_000,
      500,
    );
    const pods = kubectlJson<{ items: { metadata: { name: string } }[] }>(['get', 'pods', '-n', ns, '-l', `app.kubernetes.io/instance=${NAME}`]).items;
    expect(pods).toHaveLength(3);
    const refused = kubectlJson<{ items: { reason: string; message: string }[] }>(['get', 'events', '-n', ns, '--field-selector', 'reason=FailedCreate']).items;
    expect(refused.map((e) => e.message)).toEqual([]);
    // a pod that breaks the standard is refused in this namespace: the label is enforced, not decorative
    const bad = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'root' },
      spec: { containers: [{ name: 'c', image: 'busybox', securityContext: { privileged: true } }] },
    };
    expect(() => kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], JSON.stringify(bad))).toThrow(/violates PodSecurity "restricted:latest"/);
  });

  it("the main's budget keeps its pod through a drain; the shard set's lets one shard pod go at a time", async () => {
    const version = servingVersion(ns, NAME);
    const set = shardSetName(NAME, version);
    expect(childNames(ns, 'pdb', NAME)).toEqual([`${NAME}-main`, set]);
    const pdb = (name: string) => kubectlJson<V1PodDisruptionBudget>(['get', 'pdb', name, '-n', ns, '-o', 'json']);
    // the set's budget covers its own version's shard pods, every shard's
    expect(pdb(set).spec).toMatchObject({
      maxUnavailable: 1,
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
      selector: { matchLabels: { 'app.kubernetes.io/component': 'sparse', 'recshard.io/version': version } },
    });
    expect(pdb(set).spec!.selector!.matchLabels!['recshard.io/shard']).toBeUndefined();
    // the disruption controller counts the pods: the main's last pod may not go; of the two shard pods, one may
    const observed = (name: string, pods: number) =>
      waitUntil(
        `budget ${name} observed`,
        () => {
          const p = pdb(name);
          return p.status?.expectedPods === pods && p.status.observedGeneration === p.metadata!.generation ? p.status : undefined;
        },
        30_000,
        500,
      );
    expect(await observed(`${NAME}-main`, 1)).toMatchObject({ currentHealthy: 1, desiredHealthy: 1, disruptionsAllowed: 0 });
    expect(await observed(set, 2)).toMatchObject({ currentHealthy: 2, desiredHealthy: 1, disruptionsAllowed: 1 });
    // the eviction API enforces them: the main's one pod may not be evicted; a shard pod may (a drain is never blocked
    // for good), and the shard comes back. (Two at once are refused by the same count, disruptionsAllowed above; this
    // cluster's fake nodes replace a pod too fast to catch the second eviction inside the window.)
    const podsOf = (component: string) =>
      kubectlJson<{ items: { metadata: { name: string } }[] }>([
        'get',
        'pods',
        '-n',
        ns,
        '-l',
        `app.kubernetes.io/instance=${NAME},app.kubernetes.io/component=${component}`,
      ]).items.map((p) => p.metadata.name);
    const evict = (pod: string) =>
      kubectl(
        ['create', '--raw', `/api/v1/namespaces/${ns}/pods/${pod}/eviction`, '-f', '-'],
        JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod, namespace: ns } }),
      );
    const [mainPod] = podsOf('main');
    expect(() => evict(mainPod!)).toThrow(/disruption budget|TooManyRequests|429/i);
    expect(podsOf('main')).toEqual([mainPod]);
    const shardPods = podsOf('sparse');
    expect(shardPods).toHaveLength(2);
    evict(shardPods[0]!);
    await waitUntil('the evicted shard pod gone', () => !podsOf('sparse').includes(shardPods[0]!), 30_000, 250);
    await waitUntil(
      'the evicted shard replaced',
      () => {
        const s = pdb(set).status;
        return s?.currentHealthy === 2 && s.disruptionsAllowed === 1;
      },
      90_000,
      500,
    );
  });

  it("lookups only from the model's main, metrics only from the trusted namespaces, the main's API from anyone; egress to DNS and shards", () => {
    expect(childNames(ns, 'networkpolicy', NAME)).toEqual([`${NAME}-main`, `${NAME}-shards`]);
    type Policy = { spec: V1NetworkPolicy['spec'] & { ingress: unknown[]; egress: unknown[]; policyTypes: string[] } };
    const policy = (name: string) => kubectlJson<Policy>(['get', 'networkpolicy', name, '-n', ns, '-o', 'json']);
    const pods = (component: string) => ({
      podSelector: {
        matchLabels: {
          'app.kubernetes.io/name': 'recshard-shard-server',
          'app.kubernetes.io/instance': NAME,
          'app.kubernetes.io/component': component,
          'app.kubernetes.io/managed-by': 'recshard-operator',
        },
      },
    });
    const monitoring = {
      from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
      ports: [{ protocol: 'TCP', port: 9464 }],
    };
    const dns = {
      ports: [
        { protocol: 'UDP', port: 53 },
        { protocol: 'TCP', port: 53 },
      ],
    };
    const shards = policy(`${NAME}-shards`);
    expect(shards.spec.podSelector).toEqual(pods('sparse').podSelector);
    expect(shards.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(shards.spec.ingress).toEqual([{ from: [pods('main')], ports: [{ protocol: 'TCP', port: 8080 }] }, monitoring]);
    expect(shards.spec.egress).toEqual([dns]);
    const main = policy(`${NAME}-main`);
    expect(main.spec.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 8080 }] }, monitoring]);
    expect(main.spec.egress).toEqual([{ to: [pods('sparse')], ports: [{ protocol: 'TCP', port: 8080 }] }, dns]);
  });

  it('a plan without shards takes their budgets and NetworkPolicy away with them', async () => {
    applyYaml(ns, [model({ strategy: 'monolithic' })]);
    await waitUntil(
      'shard budgets and policy gone',
      () => childNames(ns, 'pdb', NAME).length === 1 && childNames(ns, 'networkpolicy', NAME).length === 1,
      60_000,
      500,
    );
    expect(childNames(ns, 'pdb', NAME)).toEqual([`${NAME}-main`]);
    expect(childNames(ns, 'networkpolicy', NAME)).toEqual([`${NAME}-main`]);
  });
});
