// The RecModel lifecycle on the real control plane: re-planning starts the new version's shard set beside the
// running one, switches the main and then deletes the old set and its plan ConfigMap, deletion
// garbage-collects every child, bad specs are rejected by the API server (and by the CLI, with the same
// rules), infeasible plans are reported without touching what runs, foreign objects are left alone, and a
// killed operator converges to the same objects when it comes back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSpec, type RecModel } from '../../operator/api/v1alpha1/index.js';
import { ANNOTATION_CONFIG, ANNOTATION_PLAN_HASH, LABEL_VERSION } from '../../operator/builders/labels.js';
import { shardName, shardSetName } from '../../operator/builders/names.js';
import { planModel } from '../../operator/planner/plan.js';
import {
  applyYaml,
  childNames,
  condition,
  createNamespace,
  deleteNamespace,
  getRecModel,
  installCrd,
  kubectl,
  kubectlFails,
  kubectlJson,
  servingVersion,
  shardNameOf,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from './support.js';

function recModel(name: string, spec: Record<string, unknown>): RecModel {
  return {
    apiVersion: 'recshard.io/v1alpha1',
    kind: 'RecModel',
    metadata: { name },
    spec: {
      model: {
        architecture: 'dlrm-rmc2',
        denseFeatures: 256,
        bottomMLP: [128, 64],
        topMLP: [128, 64, 1],
        tableGroups: [
          { namePrefix: 'user-', count: 6, rows: 200_000, dim: 64, poolingFactor: 120, net: 'user' },
          { namePrefix: 'item-', count: 6, rows: 200_000, dim: 64, poolingFactor: 120, net: 'item' },
        ],
      },
      ...spec,
    } as RecModel['spec'],
  };
}

function events(ns: string, name: string): { reason: string; type: string; message: string }[] {
  return kubectlJson(['get', 'events', '-n', ns, '--field-selector', `involvedObject.kind=RecModel,involvedObject.name=${name}`]).items;
}

async function waitReady(ns: string, name: string, timeoutMs = 90_000): Promise<RecModel> {
  return waitUntil(
    `${name} Ready on its current generation`,
    () => {
      const rm = getRecModel(ns, name);
      const ready = condition(rm, 'Ready');
      return ready?.status === 'True' && rm.status?.observedGeneration === rm.metadata.generation && rm;
    },
    timeoutMs,
  );
}

/**
 * Waits for Ready on the current generation with the rollout Complete (after a new version: the main switched,
 * the old set drained), recording the model's Deployments on the way.
 */
async function rollThrough(ns: string, name: string, timeoutMs = 90_000): Promise<{ rm: RecModel; deployments: string[][] }> {
  const deployments: string[][] = [];
  const rm = await waitUntil(
    `${name} rolled out and Ready on its current generation`,
    () => {
      deployments.push(childNames(ns, 'deployments', name));
      const r = getRecModel(ns, name);
      const complete = r.status?.rollout?.phase === 'Complete';
      return complete && condition(r, 'Ready')?.status === 'True' && r.status?.observedGeneration === r.metadata.generation && r;
    },
    timeoutMs,
    100,
  );
  return { rm, deployments };
}

/** The plan ConfigMap the main's pod template mounts. */
const planConfigMap = (ns: string, name: string): string =>
  kubectlJson(['get', 'deployment', `${name}-main`, '-n', ns]).spec.template.metadata.annotations[ANNOTATION_CONFIG];

/** Whether the model's Deployments and Services are exactly `names`, and its budgets the main's and `version`'s shard set's. */
const componentsAre = (ns: string, name: string, names: string[], version?: string) =>
  ['deployments', 'services'].every((kind) => childNames(ns, kind, name).join() === [...names].sort().join()) &&
  childNames(ns, 'pdb', name).join() === [`${name}-main`, ...(version ? [shardSetName(name, version)] : [])].sort().join();

/** The model's pods (terminating ones too), optionally narrowed by more labels. */
const podsOf = (ns: string, name: string, selector?: string): { metadata: { name: string; labels: Record<string, string> } }[] =>
  kubectlJson(['get', 'pods', '-n', ns, '-l', [`app.kubernetes.io/instance=${name}`, ...(selector ? [selector] : [])].join(',')]).items;

let ns: string;
let op: OperatorProcess;

beforeAll(async () => {
  installCrd();
  ns = createNamespace('lifecycle');
  op = await startOperator(ns);
});

afterAll(async () => {
  await op?.stop();
  if (ns) deleteNamespace(ns);
});

describe('re-planning', () => {
  it('a new plan starts its own shard set beside the running one, switches the main, then deletes the old set and its ConfigMap', async () => {
    // a short drain, so the old shard set goes soon after the last old main pod
    const rollout = { drainPeriod: '2s' };
    applyYaml(ns, [recModel('replan', { sharding: { strategy: 'load-balanced', shards: 4 }, rollout })]);
    const first = (await rollThrough(ns, 'replan')).rm;
    const oldHash = first.status!.plan!.hash!;
    const v1 = first.status!.rollout!.toVersion!;
    expect(first.status!.rollout).toMatchObject({ toPlan: oldHash, phase: 'Complete' });
    const oldShards = [0, 1, 2, 3].map((i) => shardName('replan', i, v1));
    expect(childNames(ns, 'deployments', 'replan')).toEqual(['replan-main', ...oldShards]);
    const oldConfigMap = planConfigMap(ns, 'replan');
    expect(childNames(ns, 'configmaps', 'replan')).toEqual([oldConfigMap]);
    const oldPods = podsOf(ns, 'replan', 'recshard.io/shard=0').map((p) => p.metadata.name);
    expect(oldPods).toHaveLength(1);

    kubectl(['patch', 'recmodel', 'replan', '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { sharding: { shards: 2 } } })]);
    const second = await rollThrough(ns, 'replan');
    expect(second.rm.status!.plan!.shards).toBe(2);
    const newHash = second.rm.status!.plan!.hash!;
    expect(newHash).not.toBe(oldHash);
    const v2 = second.rm.status!.rollout!.toVersion!;
    expect(v2).not.toBe(v1);
    expect(second.rm.status!.rollout).toMatchObject({ fromVersion: v1, fromPlan: oldHash, toPlan: newHash, mode: 'Overlap', phase: 'Complete' });
    expect(second.rm.status!.rollout!.finishedTime).toBeDefined();
    const newShards = [0, 1].map((i) => shardName('replan', i, v2));
    // the new shards ran beside the old ones (new names: both sets at once) before the old set went
    expect(second.deployments.some((names) => [...oldShards, ...newShards].every((n) => names.includes(n)))).toBe(true);
    // the old set's Deployments, Services and budgets are deleted; the new set's are what is left
    await waitUntil('old shard set deleted', () => componentsAre(ns, 'replan', ['replan-main', ...newShards], v2));
    const shard0 = kubectlJson(['get', 'deployment', newShards[0]!, '-n', ns]);
    expect(shard0.spec.template.metadata.annotations[ANNOTATION_PLAN_HASH]).toBe(newHash);
    expect(shard0.spec.selector.matchLabels[LABEL_VERSION]).toBe(v2);
    // the main moved to the new version and mounts its plan: a new, immutable ConfigMap; the old one is gone
    // once no pod mounts it
    const main = kubectlJson(['get', 'deployment', 'replan-main', '-n', ns]);
    expect(main.spec.template.metadata.labels[LABEL_VERSION]).toBe(v2);
    expect(main.spec.template.metadata.annotations[ANNOTATION_PLAN_HASH]).toBe(newHash);
    const newConfigMap = planConfigMap(ns, 'replan');
    expect(newConfigMap).not.toBe(oldConfigMap);
    const cm = kubectlJson(['get', 'configmap', newConfigMap, '-n', ns]);
    expect(cm.immutable).toBe(true);
    expect(cm.metadata.labels[LABEL_VERSION]).toBe(v2);
    const served = JSON.parse(cm.data['plan.json']);
    expect(served.version).toBe(v2);
    expect(served.shards.map((s: { endpoint: string }) => s.endpoint)).toEqual(newShards.map((s) => `http://${s}.${ns}.svc:8080`));
    await waitUntil('the old ConfigMap deleted', () => childNames(ns, 'configmaps', 'replan').join() === newConfigMap);
    // every pod serves the new version; shard 0's is a new pod of the new set
    await waitUntil("the old version's pods gone", () => {
      const pods = podsOf(ns, 'replan');
      return pods.length === 3 && pods.every((p) => p.metadata.labels[LABEL_VERSION] === v2);
    });
    const [pod0] = podsOf(ns, 'replan', 'recshard.io/shard=0');
    expect(oldPods).not.toContain(pod0!.metadata.name);
    expect(
      events(ns, 'replan')
        .filter((e) => e.reason === 'PlanChanged')
        .map((e) => e.message),
    ).toContainEqual(expect.stringContaining('(was load-balanced, 4 shards'));
    await waitUntil('the rollout events', () => {
      const seen = events(ns, 'replan');
      return ['RolloutStarted', 'MainSwitched', 'RolloutComplete'].every((reason) => seen.some((e) => e.reason === reason && e.message.includes(v2)));
    });

    kubectl([
      'patch',
      'recmodel',
      'replan',
      '-n',
      ns,
      '--type=json',
      '-p',
      JSON.stringify([
        { op: 'remove', path: '/spec/sharding/shards' },
        { op: 'replace', path: '/spec/sharding/strategy', value: 'net-specific' },
        { op: 'replace', path: '/spec/sharding/shardMemory', value: '512Mi' },
      ]),
    ]);
    const third = (await rollThrough(ns, 'replan')).rm;
    expect(third.spec.sharding!.strategy).toBe('net-specific');
    // 6 tables of 48.8 MiB per net in 460.8 MiB shards: one shard per net
    expect(third.status!.plan!.shards).toBe(2);
    const v3 = third.status!.rollout!.toVersion!;
    expect(third.status!.rollout).toMatchObject({ fromVersion: v2, mode: 'Overlap', phase: 'Complete' });
    const netShards = [0, 1].map((i) => shardName('replan', i, v3));
    await waitUntil('the load-balanced shards deleted', () => componentsAre(ns, 'replan', ['replan-main', ...netShards], v3));
    const cm3 = kubectlJson(['get', 'configmap', planConfigMap(ns, 'replan'), '-n', ns]);
    expect(cm3.metadata.labels[LABEL_VERSION]).toBe(v3);
    const plan3 = JSON.parse(cm3.data['plan.json']);
    expect(plan3.shards.map((s: { net: string }) => s.net)).toEqual(['item', 'user']);
    expect(plan3.shards.map((s: { service: string }) => s.service)).toEqual(netShards);

    kubectl([
      'patch',
      'recmodel',
      'replan',
      '-n',
      ns,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { sharding: { strategy: 'monolithic', shardMemory: '2Gi' } } }),
    ]);
    const fourth = (await rollThrough(ns, 'replan')).rm;
    // no shards to start: the main switches at once, and the net-specific shards go after the drain
    expect(fourth.status!.rollout).toMatchObject({ fromVersion: v3, mode: 'Overlap', phase: 'Complete' });
    await waitUntil('every shard deleted', () => componentsAre(ns, 'replan', ['replan-main']));
    await waitUntil('only the monolithic plan ConfigMap left', () => childNames(ns, 'configmaps', 'replan').join() === planConfigMap(ns, 'replan'));
  });
});

describe('scale subresource and user placement', () => {
  it('kubectl scale drives the main; a user nodeSelector narrows the device default', async () => {
    applyYaml(ns, [
      recModel('placed', {
        sharding: { strategy: 'load-balanced', shards: 3 },
        placement: { sparse: { device: 'cpu', nodeSelector: { 'kubernetes.io/hostname': 'kwok-cpu-1' } } },
      }),
    ]);
    await waitReady(ns, 'placed');
    const nodes = kubectlJson(['get', 'pods', '-n', ns, '-l', 'app.kubernetes.io/instance=placed,app.kubernetes.io/component=sparse']).items.map(
      (p: { spec: { nodeName: string } }) => p.spec.nodeName,
    );
    expect(nodes).toEqual(['kwok-cpu-1', 'kwok-cpu-1', 'kwok-cpu-1']);

    kubectl(['scale', 'recmodel', 'placed', '-n', ns, '--replicas=3']);
    const rm = await waitUntil('main scaled to 3 and Ready', async () => {
      const r = await waitReady(ns, 'placed');
      return r.status?.replicas === 3 && r;
    });
    expect(rm.spec.placement!.main!.replicas).toBe(3);
    expect(kubectlJson(['get', 'deployment', 'placed-main', '-n', ns]).status.readyReplicas).toBe(3);
    const scale = JSON.parse(kubectl(['get', '--raw', `/apis/recshard.io/v1alpha1/namespaces/${ns}/recmodels/placed/scale`]));
    expect(scale.status).toMatchObject({ replicas: 3, selector: expect.stringContaining('app.kubernetes.io/component=main') });
  });
});

describe('deletion', () => {
  it('deleting the RecModel garbage-collects every child', async () => {
    applyYaml(ns, [recModel('gone', { sharding: { strategy: 'net-specific', shardMemory: '256Mi' } })]);
    await waitReady(ns, 'gone');
    expect(childNames(ns, 'deployments', 'gone').length).toBeGreaterThan(2);
    kubectl(['delete', 'recmodel', 'gone', '-n', ns, '--wait=true']);
    await waitUntil(
      'children collected',
      () => ['deployments', 'services', 'configmaps', 'replicasets', 'pods'].every((k) => childNames(ns, k, 'gone').length === 0),
      90_000,
    );
  });
});

describe('bad specs', () => {
  const invalid: [string, Record<string, unknown>, string, string][] = [
    ['shards with singular', { sharding: { strategy: 'singular', shards: 3 } }, 'spec.sharding', 'shards may only be set when strategy is load-balanced'],
    [
      'gpu limits on a cpu component',
      { placement: { sparse: { device: 'cpu', resources: { limits: { 'nvidia.com/gpu': 1 } } } } },
      'spec.placement.sparse',
      'requires device gpu',
    ],
    ['autoscaling without a policy', { autoscaling: { enabled: true } }, 'spec.autoscaling', 'policyRef is required when autoscaling is enabled'],
    ['unknown strategy', { sharding: { strategy: 'round-robin' } }, 'spec.sharding.strategy', 'Unsupported value'],
    ['headroom above 90%', { sharding: { headroom: 95 } }, 'spec.sharding.headroom', '90'],
    ['bad artifact scheme', { artifact: { uri: 's3://bucket/m' } }, 'spec.artifact.uri', 'must start with file://'],
    ['a net not declared', { model: { ...recModel('x', {}).spec.model, nets: ['user', 'itme'] } }, 'spec.model', 'must be one of spec.model.nets'],
  ];

  it.each(invalid)('%s: the API server and the CLI both reject it, naming the field', (_what, spec, field, message) => {
    const rm = recModel('bad', spec);
    const err = kubectlFails(['apply', '-n', ns, '-f', '-'], JSON.stringify(rm));
    expect(err).toContain(field);
    expect(err).toContain(message);
    const local = resolveSpec(rm.spec);
    expect(local.ok).toBe(false);
    if (!local.ok) expect(local.errors.map((e) => e.field)).toContain(field);
  });

  it('a model without tables is rejected by the API server', () => {
    const rm = recModel('empty', {});
    (rm.spec.model as Record<string, unknown>).tableGroups = [];
    const err = kubectlFails(['apply', '-n', ns, '-f', '-'], JSON.stringify(rm));
    expect(err).toContain('spec.model must declare at least one embedding table');
  });

  it('an infeasible plan sets Planned=False with the numbers and leaves running children alone', async () => {
    applyYaml(ns, [recModel('tight', { sharding: { strategy: 'singular', shardMemory: '2Gi' } })]);
    await waitReady(ns, 'tight');
    const before = childNames(ns, 'deployments', 'tight');
    const version = servingVersion(ns, 'tight');
    kubectl(['patch', 'recmodel', 'tight', '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { sharding: { shardMemory: '256Mi' } } })]);
    const rm = await waitUntil('Planned=False', () => {
      const r = getRecModel(ns, 'tight');
      return condition(r, 'Planned')?.status === 'False' && r.status?.observedGeneration === r.metadata.generation && r;
    });
    const planned = condition(rm, 'Planned')!;
    expect(planned.reason).toBe('Infeasible');
    expect(planned.message).toBe(
      'singular: the 12 tables need 585.9 MiB but one sparse shard holds at most 230.4 MiB (shardMemory 256Mi less 10% ' +
        'headroom); use load-balanced or net-specific, or raise spec.sharding.shardMemory',
    );
    expect(condition(rm, 'Ready')).toMatchObject({ status: 'False', reason: 'NotPlanned' });
    expect(rm.status!.plan!.strategy).toBe('singular');
    expect(childNames(ns, 'deployments', 'tight')).toEqual(before);
    // no rollout started: the running version stays the one status names
    expect(rm.status!.rollout!.toVersion).toBe(version);
    await waitUntil('Warning event', () => events(ns, 'tight').some((e) => e.type === 'Warning' && e.reason === 'Infeasible' && e.message === planned.message));
  });

  it('strategy auto: the Planned condition names the strategy it chose and why; asking for that strategy outright keeps the version', async () => {
    applyYaml(ns, [recModel('auto', { sharding: { strategy: 'auto', shardMemory: '256Mi' } })]);
    await waitReady(ns, 'auto');
    const rm = getRecModel(ns, 'auto');
    expect(condition(rm, 'Planned')!.message).toMatch(
      new RegExp(
        '^(load-balanced|net-specific): \\d+ shards, 12 tables, .*; ' +
          'auto chose (load-balanced|net-specific) \\(\\d+ shards\\): per 64-sample query \\d+ shard calls, .*; runner-up ',
      ),
    );
    const chosen = rm.status!.plan!.strategy!;
    const version = servingVersion(ns, 'auto');
    kubectl(['patch', 'recmodel', 'auto', '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { sharding: { strategy: chosen } } })]);
    const after = await waitUntil('re-planned', () => {
      const r = getRecModel(ns, 'auto');
      return r.status?.observedGeneration === r.metadata.generation && !condition(r, 'Planned')!.message!.includes('auto chose') && r;
    });
    expect(after.status!.plan!.strategy).toBe(chosen);
    expect(servingVersion(ns, 'auto')).toBe(version);
    kubectl(['delete', 'recmodel', 'auto', '-n', ns, '--wait=true']);
  });

  it('refused before anything is applied: a placement its device contradicts, a plan too large for its ConfigMap', async () => {
    const conflict = recModel('contradicts', { placement: { sparse: { nodeSelector: { 'nvidia.com/gpu.present': 'true' } } } });
    // 65,536 tables with long names on 1,024 shards: the plan ConfigMap would be over 3 MiB
    const tableGroups = Array.from({ length: 64 }, (_, g) => ({ namePrefix: `${'x'.repeat(40)}-g${g}-`, count: 1024, rows: 10, dim: 4 }));
    const big = recModel('too-large', { sharding: { strategy: 'load-balanced', shards: 1024 } });
    big.spec.model = { ...big.spec.model, tableGroups };
    applyYaml(ns, [conflict, big]);
    const cases = [
      ['contradicts', 'PlacementConflict', 'spec.placement.sparse.nodeSelector["nvidia.com/gpu.present"]: "true" contradicts device cpu'],
      ['too-large', 'PlanTooLarge', 'the plan of 65536 tables on 1024 shards is'],
    ] as const;
    for (const [name, reason, text] of cases) {
      const rm = await waitUntil(`${name}: Planned=False`, () => {
        const r = getRecModel(ns, name);
        return condition(r, 'Planned')?.status === 'False' && r;
      });
      expect(condition(rm, 'Planned')).toMatchObject({ reason, message: expect.stringContaining(text) });
      expect(condition(rm, 'Progressing')).toMatchObject({ status: 'False', reason });
      for (const kind of ['deployments', 'services', 'configmaps']) expect(childNames(ns, kind, name)).toEqual([]);
    }
  });
});

describe('what the Deployment controller says', () => {
  it('a shard that never becomes available: Progressing=False ProgressDeadlineExceeded once its progress deadline passes', async () => {
    applyYaml(ns, [
      recModel('stuck', {
        sharding: { strategy: 'load-balanced', shards: 2 },
        // no node has this name: the shards' pods stay Pending
        placement: { sparse: { nodeSelector: { 'kubernetes.io/hostname': 'no-such-node' } } },
        rollout: { progressDeadline: '10s' },
      }),
    ]);
    const rm = await waitUntil(
      'Progressing=False',
      () => {
        const r = getRecModel(ns, 'stuck');
        return condition(r, 'Progressing')?.reason === 'ProgressDeadlineExceeded' && r;
      },
      90_000,
      500,
    );
    expect(condition(rm, 'Progressing')).toMatchObject({ status: 'False', message: expect.stringMatching(/made no progress within its progress deadline/) });
    expect(condition(rm, 'Ready')?.status).toBe('False');
    // what the pods say comes first in Degraded: the scheduler's own words
    expect(condition(rm, 'Degraded')).toMatchObject({ status: 'True', reason: 'Unschedulable' });
    const shard = kubectlJson<{ spec: { progressDeadlineSeconds: number } }>([
      'get',
      'deployment',
      childNames(ns, 'deployments', 'stuck').find((n) => n.includes('shard'))!,
      '-n',
      ns,
    ]);
    expect(shard.spec.progressDeadlineSeconds).toBe(10);
    kubectl(['delete', 'recmodel', 'stuck', '-n', ns, '--wait=true']);
  });
});

describe('liveness', () => {
  it('fails while one reconcile runs past --reconcile-timeout, naming the model, and passes again once it ends', async () => {
    const wideNs = createNamespace('liveness');
    const slow = await startOperator(wideNs, { extraArgs: ['--reconcile-timeout=1'] });
    const healthz = async () => {
      const r = await fetch(`http://127.0.0.1:${slow.port}/healthz`);
      return { status: r.status, body: await r.text() };
    };
    try {
      expect(await healthz()).toEqual({ status: 200, body: 'ok\n' });
      // 513 children to write (no pods): seconds of API calls in one reconcile on any machine
      applyYaml(wideNs, [
        {
          apiVersion: 'recshard.io/v1alpha1',
          kind: 'RecModel',
          metadata: { name: 'wide' },
          spec: {
            model: {
              architecture: 'custom',
              denseFeatures: 13,
              bottomMLP: [64],
              topMLP: [64, 1],
              tableGroups: [{ namePrefix: 't-', count: 1024, rows: 1000, dim: 16, poolingFactor: 2 }],
            },
            sharding: { strategy: 'load-balanced', shards: 256, shardMemory: '1Gi' },
            placement: { main: { replicas: 0 }, sparse: { replicas: 0 } },
          },
        },
      ]);
      const unhealthy = await waitUntil(
        '/healthz to fail while the wide model reconciles',
        async () => {
          const h = await healthz();
          return h.status === 503 && h.body;
        },
        120_000,
        100,
      );
      expect(unhealthy).toMatch(new RegExp(`^unhealthy: reconcile of ${wideNs}/wide has run for \\d+ s`));
      await waitUntil('/healthz to pass again', async () => (await healthz()).status === 200, 180_000, 200);
      const deployments = kubectl(['get', 'deployments', '-n', wideNs, '-l', 'app.kubernetes.io/instance=wide', '-o', 'name']);
      expect(deployments.trim().split('\n')).toHaveLength(257);
    } finally {
      await slow.stop();
      deleteNamespace(wideNs);
    }
  });
});

describe('ownership', () => {
  it('an existing object of the same name that the RecModel does not control is left alone, with a Warning', async () => {
    const foreign = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'squat-main', labels: { team: 'someone-else' } },
      spec: { selector: { app: 'theirs' }, ports: [{ port: 9999 }] },
    };
    applyYaml(ns, [foreign]);
    applyYaml(ns, [recModel('squat', { sharding: { strategy: 'singular' } })]);
    const rm = await waitUntil('Degraded=True', () => {
      const r = getRecModel(ns, 'squat');
      return condition(r, 'Degraded')?.status === 'True' && r;
    });
    expect(condition(rm, 'Degraded')).toMatchObject({
      reason: 'ResourceConflict',
      message: 'Service squat-main exists and is not controlled by this RecModel',
    });
    expect(condition(rm, 'Ready')).toMatchObject({ status: 'False', reason: 'Degraded' });
    const svc = kubectlJson(['get', 'service', 'squat-main', '-n', ns]);
    expect(svc.spec.selector).toEqual({ app: 'theirs' });
    expect(svc.spec.ports.map((p: { port: number }) => p.port)).toEqual([9999]);
    expect(svc.metadata.ownerReferences).toBeUndefined();
    expect(svc.metadata.labels).toEqual({ team: 'someone-else' });
    // the rest of the model is still reconciled
    expect(childNames(ns, 'deployments', 'squat')).toEqual(['squat-main', shardNameOf(ns, 'squat', 0)]);
    await waitUntil('Warning event', () => events(ns, 'squat').some((e) => e.type === 'Warning' && e.reason === 'ResourceConflict'));

    kubectl(['delete', 'service', 'squat-main', '-n', ns]);
    await waitReady(ns, 'squat');
    expect(kubectlJson(['get', 'service', 'squat-main', '-n', ns]).metadata.ownerReferences[0].name).toBe('squat');
  });
});

describe('operator restarts', () => {
  it('a killed operator converges to the same objects when restarted mid-reconcile', async () => {
    const spec = { sharding: { strategy: 'load-balanced', shards: 12 } };
    applyYaml(ns, [recModel('crash', spec)]);
    // kill -9 as soon as the first children appear, so the reconcile is cut off half-way
    await waitUntil(
      'first child applied',
      () => childNames(ns, 'deployments', 'crash').length > 0 || childNames(ns, 'configmaps', 'crash').length > 0,
      30_000,
      5,
    );
    await op.stop('SIGKILL');
    op = await startOperator(ns);
    const rm = (await rollThrough(ns, 'crash')).rm;
    const r = resolveSpec(recModel('crash', spec).spec);
    if (!r.ok) throw new Error('spec');
    const p = planModel(r.spec);
    if (!p.ok) throw p.error;
    // one version (whichever operator made its first objects), one shard set, one plan ConfigMap
    const version = rm.status!.rollout!.toVersion!;
    expect(rm.status!.rollout).toMatchObject({ toPlan: p.plan.hash, phase: 'Complete' });
    const expected = ['crash-main', ...p.plan.shards.map((s) => shardName('crash', s.index, version))].sort();
    expect(childNames(ns, 'deployments', 'crash')).toEqual(expected);
    expect(childNames(ns, 'services', 'crash')).toEqual(expected);
    expect(childNames(ns, 'configmaps', 'crash')).toEqual([planConfigMap(ns, 'crash')]);
    expect(rm.status!.plan!.hash).toBe(p.plan.hash);
    for (const d of expected) {
      const dep = kubectlJson(['get', 'deployment', d, '-n', ns, '--show-managed-fields']);
      expect(dep.spec.template.metadata.annotations[ANNOTATION_PLAN_HASH]).toBe(p.plan.hash);
      expect(dep.spec.template.metadata.labels[LABEL_VERSION]).toBe(version);
      expect(
        dep.metadata.managedFields.filter((f: { manager: string; operation: string }) => f.operation === 'Apply').map((f: { manager: string }) => f.manager),
      ).toEqual(['recshard-operator']);
    }
  });

  it('two replicas elect one leader; when it stops, the other takes over and reconciles', async () => {
    const standby = await startOperator(ns);
    try {
      const holder = () => kubectlJson(['get', 'lease', 'recshard-operator', '-n', ns]).spec.holderIdentity as string;
      expect(holder()).toBe(op.identity);
      expect(await standby.metrics()).toMatch(/^recshard_operator_leader 0$/m);
      expect(await op.metrics()).toMatch(/^recshard_operator_leader 1$/m);
      expect(await op.stop('SIGTERM')).toBe(0);
      await waitUntil('standby holds the lease', () => holder() === standby.identity, 30_000);
      applyYaml(ns, [recModel('after-failover', { sharding: { strategy: 'singular' } })]);
      await waitReady(ns, 'after-failover');
      expect(await standby.metrics()).toMatch(/^recshard_operator_reconcile_duration_seconds_count\{result="success"\} [1-9]/m);
    } finally {
      op = standby;
    }
  });
});
