// Kubernetes Events about a RecModel. The same (object, reason, message) within the dedupe window is sent
// once, so a reconcile loop that repeats itself does not flood the namespace.
import type { CoreV1Event } from '@kubernetes/client-node';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/log.js';
import type { EventReason } from '../api/reasons.js';
import { API_VERSION, KIND, type RecModel } from '../api/v1alpha1/index.js';
import { apiErrorMessage, type KubeClient } from './client.js';

export type EventType = 'Normal' | 'Warning';

export class EventRecorder {
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly client: Pick<KubeClient, 'createEvent'>,
    private readonly component: string,
    private readonly instance: string,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly dedupeMs = 10 * 60_000,
  ) {}

  async emit(rm: RecModel, type: EventType, reason: EventReason, message: string): Promise<void> {
    const now = this.clock.now();
    const key = `${rm.metadata.uid}\0${reason}\0${message}`;
    const last = this.recent.get(key);
    if (last !== undefined && now.getTime() - last < this.dedupeMs) return;
    this.recent.set(key, now.getTime());
    for (const [k, t] of this.recent) if (now.getTime() - t >= this.dedupeMs) this.recent.delete(k);
    const event: CoreV1Event = {
      metadata: { generateName: `${rm.metadata.name}.`, namespace: rm.metadata.namespace },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: KIND,
        name: rm.metadata.name,
        namespace: rm.metadata.namespace,
        uid: rm.metadata.uid,
        resourceVersion: rm.metadata.resourceVersion,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.client.createEvent(event);
    } catch (e) {
      this.log.warn('could not record event', { reason, error: apiErrorMessage(e) });
    }
  }
}
