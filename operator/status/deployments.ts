// When a Deployment counts as available, and when it is still rolling: what the rollout and the status both judge by.
import type { V1Deployment } from '@kubernetes/client-node';

export function isAvailable(d: V1Deployment): boolean {
  return (d.status?.availableReplicas ?? 0) >= (d.spec?.replicas ?? 1);
}

/** A rollout is in progress until the Deployment controller has seen the spec and every replica is new and ready. */
export function isRollingOut(d: V1Deployment): boolean {
  const want = d.spec?.replicas ?? 1;
  const s = d.status ?? {};
  return (
    (s.observedGeneration ?? 0) < (d.metadata?.generation ?? 0) ||
    (s.updatedReplicas ?? 0) < want ||
    (s.replicas ?? 0) > (s.updatedReplicas ?? 0) ||
    (s.availableReplicas ?? 0) < (s.updatedReplicas ?? 0)
  );
}

/** The Deployment controller gave up waiting for progress (its Progressing condition is False, ProgressDeadlineExceeded). */
export function progressDeadlineExceeded(d: V1Deployment): boolean {
  return (d.status?.conditions ?? []).some((c) => c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded');
}
