// Act, part one: server-side apply of every desired child in order, refusing any object another owner
// controls (a Warning event, Degraded); a failed write is recorded, not thrown, so the rest still apply.
import type { KubernetesObject, V1Deployment } from '@kubernetes/client-node';
import { plural } from '../../../lib/text.js';
import { EventReason } from '../../api/reasons.js';
import type { RecModel } from '../../api/v1alpha1/index.js';
import { apiErrorMessage, type KubeClient } from '../../kube/client.js';
import type { EventRecorder } from '../../kube/events.js';
import type { Plan } from '../../planner/plan.js';
import type { OperatorMetrics } from '../../server/metrics.js';
import { controllerOf } from '../informers.js';
import { refKey } from './decide.js';
import type { Observed } from './observe.js';

export interface ApplyDeps {
  client: Pick<KubeClient, 'apply' | 'get'>;
  events: Pick<EventRecorder, 'emit'>;
  metrics: Pick<OperatorMetrics, 'applies'>;
}

export interface Applied {
  /** The Deployments as the API server returned them. */
  deployments: V1Deployment[];
  /** Objects another owner holds, as "Kind name". */
  conflicts: string[];
  errors: string[];
}

/** A Normal event when the plan differs from the one status last recorded. */
export async function announcePlan(events: Pick<EventRecorder, 'emit'>, rm: RecModel, plan: Plan): Promise<void> {
  const previous = rm.status?.plan;
  if (previous?.hash === plan.hash) return;
  const was = previous ? ` (was ${previous.strategy}, ${plural(previous.shards ?? 0, 'shard')}, plan ${previous.hash})` : '';
  await events.emit(
    rm,
    'Normal',
    EventReason.PlanChanged,
    `${plan.strategy}: ${plural(plan.shards.length, 'shard')}, imbalance ${plan.imbalance.toFixed(3)}, plan ${plan.hash}${was}`,
  );
}

/** Describes the controller of an existing same-named object when it is not this RecModel; else undefined. */
async function foreignOwner(client: ApplyDeps['client'], observed: Observed, obj: KubernetesObject): Promise<string | undefined> {
  const describe = (o: KubernetesObject) => {
    const c = controllerOf(o);
    return c ? `controlled by ${c.kind} ${c.name}` : 'no controller';
  };
  if (observed.owned.some((o) => refKey(o) === refKey(obj))) return undefined;
  const cached = observed.foreign.find((o) => refKey(o) === refKey(obj));
  if (cached) return describe(cached);
  // Objects without our labels are not in the cache: ask the API server before creating.
  const live = await client.get({ apiVersion: obj.apiVersion!, kind: obj.kind!, namespace: obj.metadata!.namespace!, name: obj.metadata!.name! });
  if (!live || controllerOf(live)?.uid === observed.rm.metadata.uid) return undefined;
  return describe(live);
}

export async function applyDesired(d: ApplyDeps, observed: Observed, desired: KubernetesObject[]): Promise<Applied> {
  const out: Applied = { deployments: [], conflicts: [], errors: [] };
  const { rm } = observed;
  for (const obj of desired) {
    const foreign = await foreignOwner(d.client, observed, obj);
    if (foreign) {
      out.conflicts.push(`${obj.kind} ${obj.metadata!.name}`);
      await d.events.emit(
        rm,
        'Warning',
        EventReason.ResourceConflict,
        `${obj.kind} ${obj.metadata!.name} exists and is not controlled by this RecModel (${foreign}); left unchanged`,
      );
      continue;
    }
    try {
      const live = await d.client.apply(obj);
      d.metrics.applies.inc({ kind: obj.kind });
      if (obj.kind === 'Deployment') out.deployments.push(live as V1Deployment);
    } catch (e) {
      const msg = `apply ${obj.kind} ${obj.metadata!.name}: ${apiErrorMessage(e)}`;
      out.errors.push(msg);
      await d.events.emit(rm, 'Warning', EventReason.ApplyFailed, msg);
    }
  }
  return out;
}
