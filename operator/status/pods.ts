// What is wrong with a model's pods, as the kubelet and the scheduler report it: a container OOM-killed or
// crash-looping, an image that cannot be pulled, a container that cannot be created, a pod no node can take.
// Pure: the pods in, one problem per component out (its worst), for the Degraded condition.
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { Reason as R, type PodProblemReason } from '../api/reasons.js';
import { LABEL_COMPONENT, LABEL_SHARD, LABEL_VERSION } from '../builders/labels.js';
import { componentName, dnsLabel } from '../builders/names.js';

export const isPodProblemReason = (r: string | undefined): r is PodProblemReason => PROBLEM_SEVERITY.includes(r as PodProblemReason);

export interface PodProblem {
  /** The component (its Deployment's name). */
  component: string;
  pod: string;
  reason: PodProblemReason;
  message: string;
}

/** Worst first: the order in which a component's (and the model's) problem is chosen. */
export const PROBLEM_SEVERITY: PodProblemReason[] = [
  R.OOMKilled,
  R.CrashLoopBackOff,
  R.ImagePullFailed,
  R.ContainerCreateFailed,
  R.Unschedulable,
  R.PodPending,
  R.ContainerRestarting,
];

/** A pod Pending this long with nothing else said of it (no node yet, volumes not attached...) is a problem. */
export const PENDING_TOO_LONG_MS = 5 * 60_000;
const IMAGE_PULL = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
const CREATE_FAILED = new Set(['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

function lastExit(c: V1ContainerStatus): string {
  const t = c.lastState?.terminated;
  if (!t) return '';
  return `${t.reason ?? 'exited'} (exit ${t.exitCode}${t.signal ? `, signal ${t.signal}` : ''})`;
}

function containerProblem(c: V1ContainerStatus, limit: string | undefined): { reason: PodProblemReason; message: string } | undefined {
  if (c.ready) return undefined;
  const waiting = c.state?.waiting;
  const restarts = c.restartCount ? `, restarted ${c.restartCount} time${c.restartCount === 1 ? '' : 's'}` : '';
  const oom = c.lastState?.terminated?.reason === 'OOMKilled' || c.state?.terminated?.reason === 'OOMKilled';
  if (oom)
    return {
      reason: R.OOMKilled,
      message:
        `container ${c.name} was OOMKilled: its memory limit${limit ? ` (${limit})` : ''} is too small${restarts}` +
        (waiting?.reason ? ` (${waiting.reason})` : ''),
    };
  if (waiting?.reason === 'CrashLoopBackOff')
    return { reason: R.CrashLoopBackOff, message: `container ${c.name} keeps exiting: last ${lastExit(c)}${restarts}` };
  if (waiting?.reason && IMAGE_PULL.has(waiting.reason))
    return { reason: R.ImagePullFailed, message: `cannot pull image ${c.image}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` };
  if (waiting?.reason && CREATE_FAILED.has(waiting.reason))
    return { reason: R.ContainerCreateFailed, message: `container ${c.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` };
  if (c.lastState?.terminated) return { reason: R.ContainerRestarting, message: `container ${c.name} exited: ${lastExit(c)}${restarts}; not ready yet` };
  return undefined;
}

function podProblem(p: V1Pod, now: Date): { reason: PodProblemReason; message: string } | undefined {
  if (p.metadata?.deletionTimestamp) return undefined;
  const scheduled = p.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable')
    return { reason: R.Unschedulable, message: `pod ${p.metadata!.name} cannot be scheduled: ${scheduled.message ?? 'no node fits'}` };
  const limits = new Map((p.spec?.containers ?? []).map((c) => [c.name, c.resources?.limits?.memory]));
  const found = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]
    .map((c) => containerProblem(c, limits.get(c.name)))
    .filter((x) => x !== undefined);
  found.sort((a, b) => PROBLEM_SEVERITY.indexOf(a.reason) - PROBLEM_SEVERITY.indexOf(b.reason));
  if (found[0]) return { ...found[0], message: `pod ${p.metadata!.name}: ${found[0].message}` };
  const created = new Date(p.metadata?.creationTimestamp ?? now).getTime();
  const pendingMs = now.getTime() - created;
  if (p.status?.phase === 'Pending' && pendingMs > PENDING_TOO_LONG_MS) {
    const where = scheduled?.status === 'True' ? `on node ${p.spec?.nodeName ?? '?'}` : 'not scheduled to any node yet';
    return { reason: R.PodPending, message: `pod ${p.metadata!.name} has been Pending for ${Math.round(pendingMs / 60_000)} min, ${where}` };
  }
  return undefined;
}

/** The worst problem of each component's pods, components in name order. */
export function podProblems(model: string, pods: V1Pod[], now: Date): PodProblem[] {
  const worst = new Map<string, PodProblem>();
  for (const p of pods) {
    const labels = p.metadata?.labels ?? {};
    const role = labels[LABEL_COMPONENT] === 'sparse' ? 'sparse' : 'main';
    const shard = labels[LABEL_SHARD] === undefined ? undefined : Number(labels[LABEL_SHARD]);
    const problem = podProblem(p, now);
    if (!problem) continue;
    // a shard pod made before versions existed belongs to the unversioned Deployment (named without one)
    const version = labels[LABEL_VERSION];
    const component = role === 'sparse' && version === undefined ? dnsLabel(model, `shard-${shard}`) : componentName(model, role, shard, version);
    const prev = worst.get(component);
    if (!prev || PROBLEM_SEVERITY.indexOf(problem.reason) < PROBLEM_SEVERITY.indexOf(prev.reason))
      worst.set(component, { component, pod: p.metadata!.name!, ...problem });
  }
  return [...worst.values()].sort((a, b) => (a.component < b.component ? -1 : 1));
}
