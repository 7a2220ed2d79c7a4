// What the kubelet and the scheduler say of a model's pods, as the Degraded condition reports it: one problem per
// component (its worst), with the component and the kubelet's or the scheduler's own words.
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { podProblems } from '../../../operator/status/pods.js';
import { computeStatus } from '../../../operator/status/status.js';

/** The serving version every pod is labelled with (a shard's component, its Deployment, is named with it). */
const V = '0a1b2c3d';

function pod(
  name: string,
  shard: number | undefined,
  status: { containers?: Partial<V1ContainerStatus>[]; scheduled?: { reason: string; message: string } },
  /** null: a pod made before versions existed */
  version: string | null = V,
): V1Pod {
  return {
    metadata: {
      name,
      labels: {
        'app.kubernetes.io/component': shard === undefined ? 'main' : 'sparse',
        ...(shard === undefined ? {} : { 'recshard.io/shard': String(shard) }),
        ...(version === null ? {} : { 'recshard.io/version': version }),
      },
    },
    spec: { containers: [{ name: 'shard-server', resources: { limits: { memory: '160Mi' } } }] },
    status: {
      conditions: status.scheduled ? [{ type: 'PodScheduled', status: 'False', ...status.scheduled }] : [{ type: 'PodScheduled', status: 'True' }],
      containerStatuses: status.containers?.map((c) => ({
        name: 'shard-server',
        image: 'ghcr.io/recshard/shard-server:0.1.0',
        imageID: '',
        ready: false,
        restartCount: 0,
        ...c,
      })),
    },
  };
}

const NOW = new Date('2026-01-01T00:10:00Z');
const oom = { lastState: { terminated: { reason: 'OOMKilled', exitCode: 137 } }, state: { waiting: { reason: 'CrashLoopBackOff' } }, restartCount: 3 };

describe('podProblems', () => {
  it('names the component and the reason: OOMKilled with the limit, before a crash loop of another pod of it', () => {
    const problems = podProblems(
      'm',
      [
        pod('m-shard-1-a', 1, {
          containers: [{ state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { reason: 'Error', exitCode: 1 } }, restartCount: 2 }],
        }),
        pod('m-shard-1-b', 1, { containers: [oom] }),
        pod('m-main-a', undefined, { containers: [{ ready: true, state: { running: {} } }] }),
      ],
      NOW,
    );
    expect(problems).toEqual([
      {
        component: `m-shard-1-${V}`,
        pod: 'm-shard-1-b',
        reason: 'OOMKilled',
        message: 'pod m-shard-1-b: container shard-server was OOMKilled: its memory limit (160Mi) is too small, restarted 3 times (CrashLoopBackOff)',
      },
    ]);
  });

  it('reports pulls, creation failures, scheduling and a restart in progress; a ready container is no problem', () => {
    const problems = podProblems(
      'm',
      [
        pod('m-main-a', undefined, { containers: [{ state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } } }] }),
        pod('m-shard-0-a', 0, { scheduled: { reason: 'Unschedulable', message: '0/5 nodes are available: 5 node(s) didn’t match node selector.' } }),
        pod('m-shard-1-a', 1, {
          containers: [{ state: { waiting: { reason: 'CreateContainerConfigError', message: 'configmap "m-plan-5e0bda33b3" not found' } } }],
        }),
        pod('m-shard-2-a', 2, { containers: [{ state: { running: {} }, lastState: { terminated: { reason: 'Error', exitCode: 137 } }, restartCount: 1 }] }),
        pod('m-shard-3-a', 3, {
          containers: [{ ready: true, state: { running: {} }, lastState: { terminated: { reason: 'OOMKilled', exitCode: 137 } }, restartCount: 1 }],
        }),
      ],
      NOW,
    );
    expect(problems.map((p) => [p.component, p.reason, p.message])).toEqual([
      ['m-main', 'ImagePullFailed', 'pod m-main-a: cannot pull image ghcr.io/recshard/shard-server:0.1.0: ImagePullBackOff: Back-off pulling image'],
      [`m-shard-0-${V}`, 'Unschedulable', 'pod m-shard-0-a cannot be scheduled: 0/5 nodes are available: 5 node(s) didn’t match node selector.'],
      [
        `m-shard-1-${V}`,
        'ContainerCreateFailed',
        'pod m-shard-1-a: container shard-server: CreateContainerConfigError: configmap "m-plan-5e0bda33b3" not found',
      ],
      [`m-shard-2-${V}`, 'ContainerRestarting', 'pod m-shard-2-a: container shard-server exited: Error (exit 137), restarted 1 time; not ready yet'],
    ]);
  });

  it('ignores pods being deleted and pods still starting', () => {
    const leaving = pod('m-shard-0-old', 0, { containers: [oom] });
    leaving.metadata!.deletionTimestamp = new Date();
    const starting = pod('m-shard-0-new', 0, { containers: [{ state: { waiting: { reason: 'ContainerCreating' } } }] });
    expect(podProblems('m', [leaving, starting], NOW)).toEqual([]);
  });

  it("tells one shard's versions apart (a rollout runs both), and names a pod from before versions by its unversioned Deployment", () => {
    const problems = podProblems(
      'm',
      [
        pod('m-shard-1-old', 1, { containers: [oom] }),
        pod('m-shard-1-new', 1, { scheduled: { reason: 'Unschedulable', message: 'no room' } }, 'ffff0000'),
        pod('m-shard-1-legacy', 1, { containers: [oom] }, null),
        pod('m-main-new', undefined, { scheduled: { reason: 'Unschedulable', message: 'no room' } }, 'ffff0000'),
        pod('m-main-old', undefined, { containers: [oom] }),
      ],
      NOW,
    );
    expect(problems.map((p) => [p.component, p.pod, p.reason])).toEqual([
      // the main is one Deployment whatever version its pods serve: its worst problem
      ['m-main', 'm-main-old', 'OOMKilled'],
      ['m-shard-1', 'm-shard-1-legacy', 'OOMKilled'],
      [`m-shard-1-${V}`, 'm-shard-1-old', 'OOMKilled'],
      ['m-shard-1-ffff0000', 'm-shard-1-new', 'Unschedulable'],
    ]);
  });
});

describe('a pod Pending with nothing else said of it', () => {
  const pending = (name: string, createdMinAgo: number, nodeName?: string): V1Pod => ({
    metadata: {
      name,
      creationTimestamp: new Date(NOW.getTime() - createdMinAgo * 60_000),
      labels: { 'app.kubernetes.io/component': 'sparse', 'recshard.io/shard': '0', 'recshard.io/version': V },
    },
    spec: { containers: [{ name: 'shard-server' }], ...(nodeName ? { nodeName } : {}) },
    status: { phase: 'Pending', ...(nodeName ? { conditions: [{ type: 'PodScheduled', status: 'True' }] } : {}) },
  });

  it('is a problem after PENDING_TOO_LONG_MS (5 min), whether or not it reached a node; not before', () => {
    expect(podProblems('m', [pending('young', 4)], NOW)).toEqual([]);
    expect(podProblems('m', [pending('old', 11)], NOW)).toEqual([
      { component: `m-shard-0-${V}`, pod: 'old', reason: 'PodPending', message: 'pod old has been Pending for 11 min, not scheduled to any node yet' },
    ]);
    expect(podProblems('m', [pending('stuck', 6, 'node-1')], NOW)[0]!.message).toBe('pod stuck has been Pending for 6 min, on node node-1');
  });
});

describe('Degraded from the pods', () => {
  const statusWith = (pods: V1Pod[]) =>
    computeStatus({
      name: 'm',
      generation: 1,
      previous: undefined,
      plan: { ok: false, reason: 'InvalidSpec', message: 'x' },
      deployments: [],
      pods,
      conflicts: [],
      applyErrors: [],
      now: new Date('2026-01-01T00:00:00Z'),
    });

  it('is True with the worst reason, the worst component named first; Ready says Degraded', () => {
    const status = statusWith([
      pod('m-shard-0-a', 0, { scheduled: { reason: 'Unschedulable', message: '0/5 nodes are available' } }),
      pod('m-shard-1-a', 1, { containers: [oom] }),
    ]);
    const degraded = status.conditions!.find((c) => c.type === 'Degraded')!;
    expect(degraded).toMatchObject({ status: 'True', reason: 'OOMKilled' });
    expect(degraded.message).toBe(
      `m-shard-1-${V}: pod m-shard-1-a: container shard-server was OOMKilled: its memory limit (160Mi) is too small, restarted 3 times (CrashLoopBackOff); ` +
        `m-shard-0-${V}: pod m-shard-0-a cannot be scheduled: 0/5 nodes are available`,
    );
    expect(status.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'NotPlanned' });
  });

  it('names three components and counts the rest, however many shards cannot be scheduled', () => {
    const unschedulable = { scheduled: { reason: 'Unschedulable', message: '0/5 nodes are available' } };
    const pods = Array.from({ length: 1000 }, (_, i) => pod(`m-shard-${i}-a`, i, unschedulable));
    const degraded = statusWith(pods).conditions!.find((c) => c.type === 'Degraded')!;
    expect(degraded.reason).toBe('Unschedulable');
    expect(degraded.message).toMatch(/^m-shard-0-\w+: pod m-shard-0-a cannot be scheduled: 0\/5 nodes are available; m-shard-1-/);
    expect(degraded.message).toMatch(/ and 997 more$/);
    expect(degraded.message.length).toBeLessThan(400);
  });
});
