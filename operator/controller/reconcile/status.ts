// Write status: computed (pure, status/status.ts) from what this reconcile decided and saw, exported as the
// model's metrics, and patched through the status subresource only when it changed.
import { nextTurn } from '../../../lib/clock.js';
import type { RecModel, RecModelStatus } from '../../api/v1alpha1/index.js';
import type { KubeClient } from '../../kube/client.js';
import type { OperatorMetrics } from '../../server/metrics.js';
import { computeStatus, sameStatus, type StatusInput } from '../../status/status.js';

export interface StatusDeps {
  client: Pick<KubeClient, 'patchRecModelStatus'>;
  metrics: Pick<OperatorMetrics, 'recordModel'>;
}

/** Returns the status and whether it was written. */
export async function writeStatus(
  d: StatusDeps,
  rm: RecModel,
  input: Omit<StatusInput, 'name' | 'generation' | 'previous'>,
): Promise<{ status: RecModelStatus; written: boolean }> {
  const { namespace, name } = rm.metadata;
  const status = computeStatus({ ...input, name, generation: rm.metadata.generation ?? 0, previous: rm.status });
  d.metrics.recordModel(namespace!, name, status.conditions ?? [], input.autoscaling);
  await nextTurn();
  if (sameStatus(rm.status, status)) return { status, written: false };
  await d.client.patchRecModelStatus(namespace!, name, status);
  return { status, written: true };
}
