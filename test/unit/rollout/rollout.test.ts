// The rollout of a serving version as a pure function, driven step by step over a small simulated cluster: what
// the decision applies becomes live (a Deployment whose template changed is not available until the test says so),
// what it neither applies nor retains is gone, and main pods follow the main Deployment's template when told.
import type { KubernetesObject, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Reason } from '../../../operator/api/reasons.js';
import type { ResolvedRecModelSpec } from '../../../operator/api/v1alpha1/index.js';
import { buildVersion, type VersionChildren } from '../../../operator/builders/children.js';
import { DEFAULT_BUILDER_CONFIG } from '../../../operator/builders/config.js';
import { LABEL_COMPONENT, LABEL_VERSION } from '../../../operator/builders/labels.js';
import { planModel } from '../../../operator/planner/plan.js';
import { decideRollout, type RolloutDecision, type RolloutStatus } from '../../../operator/rollout/rollout.js';
import { specOf } from '../fixtures.js';

const owner = { name: 'm', namespace: 'ns', uid: 'u-1' };
const tables = Array.from({ length: 8 }, (_, i) => ({ name: `t${i}`, rows: 1000, dim: 16, net: i < 4 ? 'user' : 'item' }));
const specFor = (sharding: Record<string, unknown>, extra: Partial<ResolvedRecModelSpec> = {}) =>
  specOf({ tables, sharding: { shardMemory: '1Mi', ...sharding }, ...extra } as never);

function version(spec: ResolvedRecModelSpec, image = DEFAULT_BUILDER_CONFIG.shardServerImage): { v: VersionChildren; plan: string } {
  const p = planModel(spec);
  if (!p.ok) throw new Error(p.error.message);
  return { v: buildVersion(owner, spec, p.plan, { ...DEFAULT_BUILDER_CONFIG, shardServerImage: image }), plan: p.plan.hash };
}

const key = (o: KubernetesObject) => `${o.kind}/${o.metadata!.name}`;
const DEADLINE = 60_000;
const DRAIN = 30_000;

class Cluster {
  owned = new Map<string, KubernetesObject>();
  pods: V1Pod[] = [];
  status?: RolloutStatus;
  now = Date.parse('2026-01-01T00:00:00Z');
  maxSurgeBytes?: number;
  /** The most shard versions that ever existed at once. */
  peakVersions = 0;

  step(t: { v: VersionChildren; plan: string }): RolloutDecision {
    const d = decideRollout({
      target: t.v,
      planHash: t.plan,
      owned: [...this.owned.values()],
      pods: this.pods,
      ...(this.status ? { previous: this.status } : {}),
      now: new Date(this.now),
      progressDeadlineMs: DEADLINE,
      drainMs: DRAIN,
      ...(this.maxSurgeBytes !== undefined ? { maxSurgeBytes: this.maxSurgeBytes } : {}),
    });
    const next = new Map<string, KubernetesObject>();
    for (const o of d.retain) next.set(key(o), this.owned.get(key(o)) ?? o);
    for (const o of d.apply) {
      const live = this.owned.get(key(o)) as V1Deployment | undefined;
      const same = live && JSON.stringify(live.spec?.template) === JSON.stringify((o as V1Deployment).spec?.template);
      next.set(key(o), o.kind === 'Deployment' && same ? ({ ...o, status: live!.status } as KubernetesObject) : structuredClone(o));
    }
    this.owned = next;
    this.status = d.status;
    this.peakVersions = Math.max(this.peakVersions, this.shardVersions().length);
    return d;
  }

  deployments = () => [...this.owned.values()].filter((o) => o.kind === 'Deployment') as V1Deployment[];
  shardVersions = () =>
    [
      ...new Set(
        this.deployments()
          .filter((d) => d.metadata?.labels?.[LABEL_COMPONENT] === 'sparse')
          .map((d) => d.metadata!.labels![LABEL_VERSION]!),
      ),
    ].sort();
  main = () => this.deployments().find((d) => d.metadata?.labels?.[LABEL_COMPONENT] === 'main');
  mainVersion = () => this.main()?.spec?.template.metadata?.labels?.[LABEL_VERSION];

  /** Every Deployment (of `version`, or all) reports all replicas updated and available. */
  ready(version?: string): void {
    for (const d of this.deployments()) {
      if (version && d.spec?.template.metadata?.labels?.[LABEL_VERSION] !== version) continue;
      const n = d.spec?.replicas ?? 1;
      d.status = { observedGeneration: d.metadata?.generation ?? 0, replicas: n, updatedReplicas: n, readyReplicas: n, availableReplicas: n };
    }
  }

  /** Main pods: `n` on each version given. */
  mainPods(byVersion: Record<string, number>): void {
    this.pods = Object.entries(byVersion).flatMap(([v, n]) =>
      Array.from({ length: n }, (_, i) => {
        const cm = this.main()!.spec!.template.spec!.volumes![0]!.configMap!.name!;
        return {
          metadata: { name: `m-main-${v}-${i}`, labels: { [LABEL_COMPONENT]: 'main', [LABEL_VERSION]: v } },
          spec: { containers: [], volumes: [{ name: 'config', configMap: { name: v === this.mainVersion() ? cm : `cm-of-${v}` } }] },
          status: { phase: 'Running' },
        };
      }),
    );
  }

  advance(ms: number): void {
    this.now += ms;
  }
}

const applied = (d: RolloutDecision) => d.apply.map(key);
const reasons = (d: RolloutDecision) => d.events.map((e) => e.reason);

/** A cluster serving `spec` after its first rollout completed. */
function serving(t: { v: VersionChildren; plan: string }): Cluster {
  const c = new Cluster();
  c.step(t);
  c.ready();
  c.mainPods({ [t.v.version]: 1 });
  expect(c.step(t).status.phase).toBe('Complete');
  return c;
}

describe('a new serving version: overlap, then switch, then drain', () => {
  const lb4 = version(specFor({ strategy: 'load-balanced', shards: 4 }));
  const ns = version(specFor({ strategy: 'net-specific' }));

  it('creates everything of the first version at once (mode Initial)', () => {
    const c = new Cluster();
    const d = c.step(lb4);
    expect(applied(d)).toContain(key(lb4.v.main.deployment));
    expect(applied(d)).toEqual(expect.arrayContaining(lb4.v.shards.deployments.map(key)));
    expect(d.status).toMatchObject({ mode: 'Initial', phase: 'StartingShards', toVersion: lb4.v.version, shardsReady: '0/4' });
    c.ready();
    c.mainPods({ [lb4.v.version]: 1 });
    expect(c.step(lb4).status).toMatchObject({ phase: 'Complete', shardsReady: '4/4', mainUpdated: '1/1' });
  });

  it('starts the new shards beside the old, switches the main only when all are available, deletes the old after the drain', () => {
    const c = serving(lb4);
    const F = lb4.v.version;
    const V = ns.v.version;
    expect(V).not.toBe(F);

    let d = c.step(ns);
    expect(reasons(d)).toContain('RolloutStarted');
    expect(d.status).toMatchObject({ mode: 'Overlap', phase: 'StartingShards', fromVersion: F, toVersion: V, fromPlan: lb4.plan, toPlan: ns.plan });
    expect(applied(d)).not.toContain(key(ns.v.main.deployment));
    expect(c.mainVersion()).toBe(F);
    expect(c.shardVersions()).toEqual([F, V].sort());
    expect(d.progressing).toMatchObject({ status: 'True', reason: Reason.StartingShards });
    // the old set serves: Available is judged on it
    expect(d.serving).toEqual([lb4.v.main.deployment, ...lb4.v.shards.deployments].map((x) => x.metadata!.name));
    // and the autoscaler scales it, not the set that is starting
    expect(d.scaled).toEqual(d.serving);

    // one new shard ready is not enough
    c.deployments().find((x) => x.metadata!.name === ns.v.shards.deployments[0]!.metadata!.name)!.status = {
      availableReplicas: 1,
      updatedReplicas: 1,
      replicas: 1,
    };
    d = c.step(ns);
    expect(d.status.phase).toBe('StartingShards');
    expect(c.mainVersion()).toBe(F);

    c.ready(V);
    d = c.step(ns);
    expect(reasons(d)).toContain('MainSwitched');
    expect(d.status.phase).toBe('SwitchingMain');
    expect(c.mainVersion()).toBe(V);
    expect(c.shardVersions()).toEqual([F, V].sort());

    // old and new main pods side by side: both shard sets stay
    c.mainPods({ [F]: 1, [V]: 1 });
    d = c.step(ns);
    expect(d.status).toMatchObject({ phase: 'SwitchingMain', oldMainPods: 1, mainUpdated: '1/1' });
    // once the main is on the new version, the autoscaler scales its shards
    expect(d.scaled).toEqual([ns.v.main.deployment, ...ns.v.shards.deployments].map((x) => x.metadata!.name));
    expect(c.shardVersions()).toEqual([F, V].sort());

    // the last old main pod is gone: the old set drains, then goes
    c.mainPods({ [V]: 1 });
    d = c.step(ns);
    expect(d.status.phase).toBe('Draining');
    expect(d.status.drainingSince).toBe(new Date(c.now).toISOString().replace('.000', ''));
    expect(d.requeueAfterMs).toBe(DRAIN);
    c.advance(DRAIN - 1);
    expect(c.step(ns).status.phase).toBe('Draining');
    expect(c.shardVersions()).toEqual([F, V].sort());
    c.advance(1);
    d = c.step(ns);
    expect(d.status.phase).toBe('Complete');
    expect(reasons(d)).toContain('RolloutComplete');
    expect(c.shardVersions()).toEqual([V]);
    // the old plan ConfigMap went with its version; the new one stays
    expect([...c.owned.keys()].filter((k) => k.startsWith('ConfigMap/'))).toEqual([key(ns.v.configMap)]);
    expect(c.peakVersions).toBe(2);
  });

  it('a new artifact with the same plan is a new version too; a change of resources rolls in place', () => {
    const c = serving(lb4);
    const artifact = version(specFor({ strategy: 'load-balanced', shards: 4 }, { artifact: { uri: 'file:///models/v2' } } as never));
    expect(artifact.plan).toBe(lb4.plan);
    expect(artifact.v.version).not.toBe(lb4.v.version);
    const d = c.step(artifact);
    expect(d.status).toMatchObject({ mode: 'Overlap', phase: 'StartingShards' });
    expect(d.status.reason).toMatch(/same plan .*another artifact or image/);

    const c2 = serving(lb4);
    const resources = version(specFor({ strategy: 'load-balanced', shards: 4 }, { placement: { main: { replicas: 3 }, sparse: { replicas: 2 } } } as never));
    expect(resources.v.version).toBe(lb4.v.version);
    const d2 = c2.step(resources);
    expect(applied(d2)).toContain(key(resources.v.main.deployment));
    expect(c2.shardVersions()).toEqual([lb4.v.version]);
    expect(c2.main()!.spec!.replicas).toBe(3);
  });

  it('a new shard-server image is a new version (old mains never speak to new shards)', () => {
    const c = serving(lb4);
    const image = version(specFor({ strategy: 'load-balanced', shards: 4 }), 'ghcr.io/recshard/shard-server:0.2.0');
    expect(c.step(image).status).toMatchObject({ mode: 'Overlap', phase: 'StartingShards' });
  });
});

describe('supersede, stuck, rollback, budget, restart', () => {
  const lb4 = version(specFor({ strategy: 'load-balanced', shards: 4 }));
  const ns = version(specFor({ strategy: 'net-specific' }));
  const lb2 = version(specFor({ strategy: 'load-balanced', shards: 2 }));

  it('a plan change before the main switched deletes the superseded shards at once and starts the newest', () => {
    const c = serving(lb4);
    c.step(ns);
    const d = c.step(lb2);
    expect(reasons(d)).toContain('RolloutSuperseded');
    expect(c.shardVersions()).toEqual([lb4.v.version, lb2.v.version].sort());
    expect(d.status).toMatchObject({ phase: 'StartingShards', fromVersion: lb4.v.version, toVersion: lb2.v.version });
    expect(c.peakVersions).toBe(2);
  });

  it('a plan change while the main switches waits for the switch: never more than one extra version', () => {
    const c = serving(lb4);
    c.step(ns);
    c.ready(ns.v.version);
    c.step(ns);
    c.mainPods({ [lb4.v.version]: 1, [ns.v.version]: 1 });
    let d = c.step(lb2);
    expect(d.status.phase).toBe('Waiting');
    expect(d.progressing).toMatchObject({ status: 'True', reason: Reason.WaitingForSwitch });
    expect(d.shardsApplied).toBe(false);
    expect(c.shardVersions()).toEqual([lb4.v.version, ns.v.version].sort());
    c.mainPods({ [ns.v.version]: 1 });
    d = c.step(lb2);
    expect(d.status).toMatchObject({ phase: 'StartingShards', fromVersion: ns.v.version });
    expect(c.shardVersions()).toEqual([ns.v.version, lb2.v.version].sort());
    expect(c.peakVersions).toBe(2);
  });

  it('shards that never become available: Stuck past the deadline, still serving the old; reapplying the old spec rolls back', () => {
    const c = serving(lb4);
    let d = c.step(ns);
    expect(d.requeueAfterMs).toBe(DEADLINE);
    c.advance(DEADLINE);
    d = c.step(ns);
    expect(d.status.phase).toBe('Stuck');
    expect(d.progressing).toMatchObject({ status: 'False', reason: Reason.RolloutStuck });
    expect(d.progressing!.message).toContain(`${ns.v.shards.deployments[0]!.metadata!.name} (0/1 available)`);
    expect(d.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'RolloutStuck' }));
    expect(c.mainVersion()).toBe(lb4.v.version);
    expect(d.serving).toContain(lb4.v.shards.deployments[0]!.metadata!.name);

    d = c.step(lb4);
    expect(c.shardVersions()).toEqual([lb4.v.version]);
    expect(reasons(d)).toContain('RolloutSuperseded');
    expect(d.status).toMatchObject({ phase: 'Complete', reason: `rolled back to version ${lb4.v.version}: version ${ns.v.version} never reached the main` });
  });

  it('rolling back while the main switches moves it back onto the old shards, which never went away', () => {
    const c = serving(lb4);
    c.step(ns);
    c.ready(ns.v.version);
    c.step(ns);
    c.mainPods({ [lb4.v.version]: 1, [ns.v.version]: 1 });
    const d = c.step(lb4);
    expect(c.mainVersion()).toBe(lb4.v.version);
    expect(d.status.phase).toBe('SwitchingMain');
    c.mainPods({ [lb4.v.version]: 1 });
    expect(c.step(lb4).status.phase).toBe('Draining');
    c.advance(DRAIN);
    expect(c.step(lb4).status.phase).toBe('Complete');
    expect(c.shardVersions()).toEqual([lb4.v.version]);
  });

  it('refuses a version whose shards would add more memory than maxSurgeMemory, and keeps serving', () => {
    const c = serving(lb4);
    c.maxSurgeBytes = 1;
    const d = c.step(ns);
    expect(d.status.phase).toBe('Waiting');
    expect(d.progressing).toMatchObject({ status: 'False', reason: Reason.SurgeExceedsBudget });
    expect(d.progressing!.message).toMatch(/maxSurgeMemory allows 1 B/);
    expect(c.shardVersions()).toEqual([lb4.v.version]);
    c.maxSurgeBytes = 1e12;
    const ok = c.step(ns);
    expect(ok.status.phase).toBe('StartingShards');
    expect(ok.status.surgeBytes).toBeGreaterThan(0);
  });

  it('an operator restarted mid-rollout continues from the cluster: same decision from the same objects, pods and status', () => {
    const c = serving(lb4);
    c.step(ns);
    c.ready(ns.v.version);
    c.step(ns);
    c.mainPods({ [lb4.v.version]: 1, [ns.v.version]: 1 });
    const input = { owned: [...c.owned.values()], pods: c.pods, status: c.status };
    const fresh = new Cluster();
    fresh.owned = new Map(input.owned.map((o) => [key(o), structuredClone(o)]));
    fresh.pods = structuredClone(input.pods);
    fresh.status = structuredClone(input.status);
    fresh.now = c.now;
    expect(fresh.step(ns)).toEqual(c.step(ns));
    // even with its status lost, a restarted operator deletes nothing a main pod still uses
    fresh.status = undefined;
    const d = fresh.step(ns);
    expect(fresh.shardVersions()).toEqual([lb4.v.version, ns.v.version].sort());
    expect(d.status.phase).toBe('SwitchingMain');
  });
});
