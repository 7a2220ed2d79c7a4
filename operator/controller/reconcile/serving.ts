// Read the serving main: its scheduler (DeepRecSched's batch size) for status.scheduler, while it has a pod to ask.
import type { V1Deployment } from '@kubernetes/client-node';
import { LABEL_COMPONENT } from '../../builders/labels.js';
import { mainName } from '../../builders/names.js';
import { mainServing, type SchedulerReading, type ServingProbe } from '../../signals/serving.js';

export interface ServingRead {
  /** Whether the main was asked (it is read again at the poll interval). */
  polled: boolean;
  scheduler?: SchedulerReading;
}

export async function readServing(
  probe: ServingProbe | undefined,
  namespace: string,
  name: string,
  port: number,
  deployments: V1Deployment[],
): Promise<ServingRead> {
  const main = deployments.find((d) => d.metadata?.labels?.[LABEL_COMPONENT] === 'main');
  if (!probe || !mainServing(main)) return { polled: false };
  const scheduler = await probe.scheduler({ name, namespace, service: mainName(name), port });
  return { polled: true, ...(scheduler ? { scheduler } : {}) };
}
