// Act, part two: delete the children the plan no longer calls for (a stale shard, an autoscaler of another
// actuator), with a Normal event for each that users notice; failures are returned, not thrown.
import type { KubernetesObject } from '@kubernetes/client-node';
import { EventReason } from '../../api/reasons.js';
import type { RecModel } from '../../api/v1alpha1/index.js';
import type { ScalingResolution } from '../../autoscaling/policy.js';
import { AUTOSCALER_KINDS } from '../../builders/autoscalers.js';
import { apiErrorMessage, type KubeClient } from '../../kube/client.js';
import type { EventRecorder } from '../../kube/events.js';

export interface PruneDeps {
  client: Pick<KubeClient, 'delete'>;
  events: Pick<EventRecorder, 'emit'>;
}

export async function pruneStale(
  d: PruneDeps,
  rm: RecModel,
  stale: KubernetesObject[],
  planHash: string,
  scaling: ScalingResolution | undefined,
): Promise<string[]> {
  const errors: string[] = [];
  for (const obj of stale) {
    const what = `${obj.kind} ${obj.metadata!.name}`;
    try {
      await d.client.delete({ apiVersion: obj.apiVersion!, kind: obj.kind!, namespace: rm.metadata.namespace!, name: obj.metadata!.name! });
      if (obj.kind === 'Deployment') await d.events.emit(rm, 'Normal', EventReason.DeletedStaleShard, `deleted ${what}: not in plan ${planHash}`);
      if (AUTOSCALER_KINDS.has(obj.kind!)) {
        const why = scaling?.ok ? `policy ${scaling.policy.name} uses actuator ${scaling.policy.actuator}` : 'autoscaling is disabled';
        await d.events.emit(rm, 'Normal', EventReason.DeletedAutoscaler, `deleted ${what}: ${why}`);
      }
    } catch (e) {
      errors.push(`delete ${what}: ${apiErrorMessage(e)}`);
    }
  }
  return errors;
}
