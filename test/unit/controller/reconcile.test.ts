// The reconcile's steps one by one, and composed by the Reconciler, against a fake client that records every
// write (unit tests only; the cluster suites run the same code against the real API server).
import type { KubernetesObject, V1Deployment } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../lib/clock.js';
import { silentLogger } from '../../../lib/log.js';
import { resolveSpec, type RecModel } from '../../../operator/api/v1alpha1/index.js';
import { buildVersion } from '../../../operator/builders/children.js';
import { DEFAULT_BUILDER_CONFIG } from '../../../operator/builders/config.js';
import { announcePlan, applyDesired } from '../../../operator/controller/reconcile/apply.js';
import { decide } from '../../../operator/controller/reconcile/decide.js';
import type { CacheReader, Observed } from '../../../operator/controller/reconcile/observe.js';
import { pruneStale } from '../../../operator/controller/reconcile/prune.js';
import { readServing } from '../../../operator/controller/reconcile/serving.js';
import { writeStatus } from '../../../operator/controller/reconcile/status.js';
import { Reconciler } from '../../../operator/controller/reconciler.js';
import type { ObjectRef } from '../../../operator/kube/client.js';
import { EventRecorder } from '../../../operator/kube/events.js';
import { planModel } from '../../../operator/planner/plan.js';
import { OperatorMetrics } from '../../../operator/server/metrics.js';

const now = new Date('2026-06-01T12:00:00Z');
const clock: Clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => {} };

/** Records every write; `failApply` and `failDelete` name objects whose write fails with a 422; `live` is what get() finds. */
class FakeClient {
  applied: KubernetesObject[] = [];
  deleted: ObjectRef[] = [];
  statuses: { namespace: string; name: string; status: RecModel['status'] }[] = [];
  events: { type: string; reason: string; message: string }[] = [];
  live = new Map<string, KubernetesObject>();
  constructor(
    readonly failApply = new Set<string>(),
    readonly failDelete = new Set<string>(),
  ) {}
  async apply<T extends KubernetesObject>(obj: T): Promise<T> {
    if (this.failApply.has(obj.metadata!.name!)) throw Object.assign(new Error('422: field is immutable'), { code: 422 });
    this.applied.push(obj);
    return structuredClone(obj);
  }
  async get<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
    return this.live.get(`${ref.kind}/${ref.name}`) as T | undefined;
  }
  async delete(ref: ObjectRef): Promise<void> {
    if (this.failDelete.has(ref.name)) throw new Error('500: etcd unavailable');
    this.deleted.push(ref);
  }
  async patchRecModelStatus(namespace: string, name: string, status: RecModel['status']): Promise<void> {
    this.statuses.push({ namespace, name, status });
  }
  async createEvent(e: { type?: string; reason?: string; message?: string }): Promise<void> {
    this.events.push({ type: e.type!, reason: e.reason!, message: e.message! });
  }
}

function rm(over: Partial<RecModel['spec']> = {}, status?: RecModel['status']): RecModel {
  return {
    apiVersion: 'recshard.io/v1alpha1',
    kind: 'RecModel',
    metadata: { name: 'm', namespace: 'ns', uid: 'u-1', generation: 3 },
    spec: {
      model: {
        architecture: 'custom',
        denseFeatures: 4,
        bottomMLP: [8],
        topMLP: [4, 1],
        tables: [
          { name: 'a', rows: 100, dim: 8 },
          { name: 'b', rows: 100, dim: 8 },
        ],
      },
      sharding: { strategy: 'load-balanced', shards: 2 },
      ...over,
    } as RecModel['spec'],
    ...(status ? { status } : {}),
  };
}

const deps = (client: FakeClient) => ({ client, events: new EventRecorder(client, 'test', 'test-0', clock, silentLogger), metrics: new OperatorMetrics() });
const observed = (model: RecModel, owned: KubernetesObject[] = [], foreign: KubernetesObject[] = []): Observed => ({ rm: model, owned, foreign, pods: [] });
const planned = (o: Observed) => {
  const d = decide(o, DEFAULT_BUILDER_CONFIG, now);
  if (!d.outcome.ok) throw new Error(d.outcome.message);
  return { d, plan: d.outcome.plan };
};
const otherOwner = (kind: string, name: string): KubernetesObject => ({
  kind,
  apiVersion: 'v1',
  metadata: { name, namespace: 'ns', ownerReferences: [{ apiVersion: 'v1', kind: 'Thing', name: 'x', uid: 'other', controller: true }] },
});
const names = (objs: KubernetesObject[]) => objs.map((o) => `${o.kind}/${o.metadata!.name}`);
/** The serving version rm() builds: its version (in its shards' names) and its plan ConfigMap's name. */
const built = (() => {
  const r = resolveSpec(rm().spec);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const p = planModel(r.spec);
  if (!p.ok) throw p.error;
  const v = buildVersion({ name: 'm', namespace: 'ns', uid: 'u-1' }, r.spec, p.plan, DEFAULT_BUILDER_CONFIG);
  return { version: v.version, configMap: v.configMap.metadata!.name! };
})();
const v = built.version;

describe('apply', () => {
  it('applies every desired child in order and returns the Deployments the API server returned', async () => {
    const client = new FakeClient();
    const o = observed(rm());
    const { d } = planned(o);
    const out = await applyDesired(deps(client), o, d.desired);
    expect(names(client.applied)).toEqual(names(d.desired));
    expect(names(client.applied)[0]).toMatch(/^NetworkPolicy\//);
    // the shards before the main that calls them
    expect(out.deployments.map((x) => x.metadata!.name)).toEqual([`m-shard-0-${v}`, `m-shard-1-${v}`, 'm-main']);
    expect(names(client.applied)).toContain(`ConfigMap/${built.configMap}`);
    expect(out).toMatchObject({ conflicts: [], errors: [] });
  });

  it('leaves alone what another owner controls, cached or only live, with a Warning each, and applies the rest', async () => {
    const client = new FakeClient();
    client.live.set(`Service/m-shard-1-${v}`, otherOwner('Service', `m-shard-1-${v}`));
    const o = observed(rm(), [], [otherOwner('Service', 'm-main')]);
    const { d } = planned(o);
    const out = await applyDesired(deps(client), o, d.desired);
    expect(out.conflicts).toEqual(['Service m-main', `Service m-shard-1-${v}`]);
    expect(names(client.applied)).not.toContain('Service/m-main');
    expect(names(client.applied)).not.toContain(`Service/m-shard-1-${v}`);
    expect(names(client.applied)).toContain(`Service/m-shard-0-${v}`);
    expect(client.events.filter((e) => e.reason === 'ResourceConflict').map((e) => e.message)).toEqual([
      'Service m-main exists and is not controlled by this RecModel (controlled by Thing x); left unchanged',
      `Service m-shard-1-${v} exists and is not controlled by this RecModel (controlled by Thing x); left unchanged`,
    ]);
  });

  it('records a failed write with a Warning and goes on with the others', async () => {
    const client = new FakeClient(new Set([`m-shard-0-${v}`]));
    const o = observed(rm());
    const { d } = planned(o);
    const out = await applyDesired(deps(client), o, d.desired);
    expect(out.errors.length).toBeGreaterThan(0);
    expect(out.errors.every((e) => e.startsWith('apply ') && e.includes(`m-shard-0-${v}`) && e.endsWith('422: field is immutable'))).toBe(true);
    expect(out.deployments.map((x) => x.metadata!.name)).toEqual([`m-shard-1-${v}`, 'm-main']);
    expect(client.events.filter((e) => e.reason === 'ApplyFailed')).toHaveLength(out.errors.length);
  });

  it('announces a plan that differs from the one in status, saying what it was', async () => {
    const client = new FakeClient();
    const { plan } = planned(observed(rm()));
    await announcePlan(deps(client).events, rm({}, { plan: { strategy: 'singular', shards: 1, hash: 'abc' } }), plan);
    await announcePlan(deps(client).events, rm({}, { plan: { strategy: plan.strategy, shards: 2, hash: plan.hash } }), plan);
    expect(client.events).toEqual([
      {
        type: 'Normal',
        reason: 'PlanChanged',
        message: `load-balanced: 2 shards, imbalance ${plan.imbalance.toFixed(3)}, plan ${plan.hash} (was singular, 1 shard, plan abc)`,
      },
    ]);
  });
});

describe('prune', () => {
  it('deletes what the plan dropped, says why for shards and autoscalers, and returns failures without throwing', async () => {
    const client = new FakeClient(new Set(), new Set(['m-shard-3']));
    const model = rm();
    const stale = [
      { kind: 'Deployment', apiVersion: 'apps/v1', metadata: { name: 'm-shard-2' } },
      { kind: 'HorizontalPodAutoscaler', apiVersion: 'autoscaling/v2', metadata: { name: 'm-main' } },
      { kind: 'Deployment', apiVersion: 'apps/v1', metadata: { name: 'm-shard-3' } },
    ];
    const errors = await pruneStale(deps(client), model, stale, 'h1', undefined);
    expect(client.deleted).toEqual([
      { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'ns', name: 'm-shard-2' },
      { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', namespace: 'ns', name: 'm-main' },
    ]);
    expect(errors).toEqual(['delete Deployment m-shard-3: 500: etcd unavailable']);
    expect(client.events.map((e) => `${e.reason}: ${e.message}`)).toEqual([
      'DeletedStaleShard: deleted Deployment m-shard-2: not in plan h1',
      'DeletedAutoscaler: deleted HorizontalPodAutoscaler m-main: autoscaling is disabled',
    ]);
  });
});

describe('read serving', () => {
  const main = (available: number): V1Deployment => ({
    metadata: { name: 'm-main', labels: { 'app.kubernetes.io/component': 'main' } },
    status: { availableReplicas: available },
  });
  const probe = { asked: [] as unknown[], scheduler: async (t: unknown) => (probe.asked.push(t), { mode: 'auto' as const, batchSize: 48 }) };

  it('asks the main only while it has an available pod', async () => {
    expect(await readServing(probe, 'ns', 'm', 8080, [main(0)])).toEqual({ polled: false });
    expect(await readServing(undefined, 'ns', 'm', 8080, [main(1)])).toEqual({ polled: false });
    expect(await readServing(probe, 'ns', 'm', 9090, [main(1)])).toEqual({ polled: true, scheduler: { mode: 'auto', batchSize: 48 } });
    expect(probe.asked).toEqual([{ name: 'm', namespace: 'ns', service: 'm-main', port: 9090 }]);
  });
});

describe('write status', () => {
  it('patches the status subresource only when the status changed', async () => {
    const client = new FakeClient();
    const { plan } = planned(observed(rm()));
    const input = { plan: { ok: true as const, plan }, deployments: [], conflicts: [], applyErrors: [], now };
    const first = await writeStatus(deps(client), rm(), input);
    expect(first.written).toBe(true);
    const again = await writeStatus(deps(client), rm({}, first.status), input);
    expect(again.written).toBe(false);
    expect(client.statuses).toHaveLength(1);
    expect(client.statuses[0]!.status!.conditions!.find((c) => c.type === 'Planned')).toMatchObject({
      status: 'True',
      reason: 'PlanComputed',
      observedGeneration: 3,
    });
  });
});

describe('the steps composed', () => {
  const caches = (model: RecModel | undefined, owned: KubernetesObject[] = []): CacheReader => ({
    recModel: () => model,
    policy: () => undefined,
    modelPods: () => [],
    children: () => ({
      deployments: owned.filter((o) => o.kind === 'Deployment') as V1Deployment[],
      services: [],
      configMaps: [],
      pdbs: [],
      networkPolicies: [],
      hpas: [],
      scaledObjects: [],
    }),
  });
  const reconciler = (client: FakeClient, c: CacheReader, metrics = new OperatorMetrics()) =>
    new Reconciler({ caches: c, ...deps(client), metrics, cfg: DEFAULT_BUILDER_CONFIG, clock, log: silentLogger });

  it('an invalid spec: Planned=False with the field named, a Warning, no writes but status, no retry', async () => {
    const client = new FakeClient();
    const bad = rm({ sharding: { strategy: 'net-specific', shards: 2 } } as Partial<RecModel['spec']>);
    expect(await reconciler(client, caches(bad)).reconcile('ns', 'm')).toEqual({});
    expect(client.applied).toEqual([]);
    expect(client.events.map((e) => e.reason)).toEqual(['InvalidSpec']);
    expect(client.statuses[0]!.status!.conditions!.find((c) => c.type === 'Planned')).toMatchObject({
      status: 'False',
      reason: 'InvalidSpec',
      message: expect.stringContaining('spec.sharding'),
    });
  });

  it('a failed write: status says Degraded=ApplyFailed, then the reconcile throws for the queue to retry', async () => {
    const client = new FakeClient(new Set([built.configMap]));
    await expect(reconciler(client, caches(rm())).reconcile('ns', 'm')).rejects.toThrow(`apply ConfigMap ${built.configMap}: 422: field is immutable`);
    // Planned first (before any write of a child), then what the writes did
    expect(client.statuses[0]!.status!.conditions!.find((c) => c.type === 'Planned')).toMatchObject({ status: 'True', reason: 'PlanComputed' });
    expect(client.statuses.at(-1)!.status!.conditions!.find((c) => c.type === 'Degraded')).toMatchObject({ status: 'True', reason: 'ApplyFailed' });
  });

  it('writes Planned before the children; an unchanged model is not applied again, an edited child is', async () => {
    const client = new FakeClient();
    const order: string[] = [];
    const apply = client.apply.bind(client);
    let rv = 0;
    client.apply = async <T extends KubernetesObject>(obj: T) => {
      order.push('apply');
      const out = await apply(obj);
      return { ...out, metadata: { ...out.metadata, resourceVersion: String(++rv) } };
    };
    const patch = client.patchRecModelStatus.bind(client);
    client.patchRecModelStatus = async (ns, n, st) => (order.push('status'), patch(ns, n, st));
    // the cache: whatever the API server last answered, by kind and name
    const live = new Map<string, KubernetesObject>();
    const wrapped = client.apply;
    client.apply = async <T extends KubernetesObject>(obj: T) => {
      const out = await wrapped(obj);
      live.set(`${obj.kind}/${obj.metadata!.name}`, out);
      return out;
    };
    const byKind = (kind: string) => [...live.values()].filter((o) => o.kind === kind);
    const model = rm();
    const c: CacheReader = {
      recModel: () => model,
      policy: () => undefined,
      modelPods: () => [],
      children: () => ({
        deployments: byKind('Deployment') as V1Deployment[],
        services: byKind('Service'),
        configMaps: byKind('ConfigMap'),
        pdbs: byKind('PodDisruptionBudget'),
        networkPolicies: byKind('NetworkPolicy'),
        hpas: [],
        scaledObjects: [],
      }),
    };
    const r = reconciler(client, c);
    await r.reconcile('ns', 'm');
    expect(order[0]).toBe('status');
    expect(client.events.map((e) => e.reason)).toContain('PlanChanged');
    expect(client.statuses[0]!.status!.plan).toMatchObject({ strategy: 'load-balanced', shards: 2 });
    const first = client.applied.length;
    expect(first).toBeGreaterThan(5);
    model.status = client.statuses.at(-1)!.status;
    await r.reconcile('ns', 'm');
    await r.reconcile('ns', 'm');
    expect(client.applied.length).toBe(first);
    // someone edits a child: the next reconcile puts it back, and only it
    const svc = live.get('Service/m-main')!;
    live.set('Service/m-main', { ...svc, metadata: { ...svc.metadata, resourceVersion: 'edited' } });
    await r.reconcile('ns', 'm');
    expect(names(client.applied.slice(first))).toEqual(['Service/m-main']);
  });

  it('reads its own status writes while the cache lags: a second reconcile continues the rollout, it does not restart it', async () => {
    const r0 = resolveSpec(rm().spec);
    if (!r0.ok) throw new Error('fixture');
    const F = buildVersion({ name: 'm', namespace: 'ns', uid: 'u-1' }, r0.spec, planned(observed(rm())).plan, DEFAULT_BUILDER_CONFIG);
    const serving = { rollout: { toVersion: F.version, phase: 'Complete', mode: 'Initial' } } as RecModel['status'];
    // the spec now asks for another version (monolithic: no shards to start, the main switches at once)
    const next = rm({ sharding: { strategy: 'monolithic' } } as Partial<RecModel['spec']>, serving);
    const owned: KubernetesObject[] = [{ ...F.main.deployment, kind: 'Deployment' }];
    const client = new FakeClient();
    const r = reconciler(client, caches(next, owned));
    await r.reconcile('ns', 'm');
    expect(client.statuses.at(-1)!.status!.rollout).toMatchObject({ mode: 'Overlap', fromVersion: F.version, phase: 'SwitchingMain' });
    // the cache now has the switched main, but not yet the status written with it
    owned[0] = client.applied.filter((o) => o.kind === 'Deployment' && o.metadata!.name === 'm-main').at(-1)!;
    await r.reconcile('ns', 'm');
    expect(client.statuses.at(-1)!.status!.rollout).toMatchObject({ mode: 'Overlap', fromVersion: F.version });
    expect(client.statuses.at(-1)!.status!.rollout!.reason).toMatch(new RegExp(`version ${F.version} -> `));
  });

  it('a deleted model: nothing written, its metrics forgotten', async () => {
    const client = new FakeClient();
    const metrics = new OperatorMetrics();
    metrics.recordModel('ns', 'm', [{ type: 'Ready', status: 'True', reason: 'Ready', message: '', lastTransitionTime: '' }], undefined);
    expect(await reconciler(client, caches(undefined), metrics).reconcile('ns', 'm')).toEqual({});
    expect(client.applied).toEqual([]);
    expect(await metrics.registry.metrics()).not.toContain('recshard_operator_recmodel_condition{');
  });
});
