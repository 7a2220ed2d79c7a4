// Act, part one: server-side apply of every desired child in order, refusing any object another owner
// controls (a Warning event, Degraded); a failed write is recorded, not thrown, so the rest still apply. A child
// already as last applied is skipped (AppliedRecord).
import { createHash } from 'node:crypto';
import type { KubernetesObject, V1Deployment } from '@kubernetes/client-node';
import { nextTurn } from '../../../lib/clock.js';
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
  client: Pick<KubeClient, 'apply' | 'get'> & Partial<Pick<KubeClient, 'listByName'>>;
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
    `${plan.strategy}: ${plural(plan.shards.length, 'shard')}, imbalance ${plan.imbalance.toFixed(3)}, plan ${plan.hash}${was}` +
      plan.notes.map((n) => `; ${n}`).join(''),
  );
}

/** Children to create at once above which their kinds are listed once, not each asked for by name. */
const LIST_ABOVE = 16;

/**
 * What stands where a child not in the cache would be created: objects without our labels are not in the cache,
 * so the API server is asked before creating (each by name, or, for many, one list per kind).
 */
function absentLookup(client: ApplyDeps['client'], observed: Observed, missing: KubernetesObject[]) {
  const lists = new Map<string, Promise<Map<string, KubernetesObject>>>();
  const { namespace } = observed.rm.metadata;
  return async (obj: KubernetesObject): Promise<KubernetesObject | undefined> => {
    if (missing.length <= LIST_ABOVE || !client.listByName) {
      return client.get({ apiVersion: obj.apiVersion!, kind: obj.kind!, namespace: obj.metadata!.namespace!, name: obj.metadata!.name! });
    }
    const kind = `${obj.apiVersion}/${obj.kind}`;
    if (!lists.has(kind)) lists.set(kind, client.listByName(obj.apiVersion!, obj.kind!, namespace!));
    return (await lists.get(kind)!).get(obj.metadata!.name!);
  };
}

/** Describes the controller of an existing same-named object when it is not this RecModel; else undefined. */
async function foreignOwner(
  observed: Observed,
  owned: Map<string, KubernetesObject>,
  foreign: Map<string, KubernetesObject>,
  lookup: (obj: KubernetesObject) => Promise<KubernetesObject | undefined>,
  obj: KubernetesObject,
): Promise<string | undefined> {
  const describe = (o: KubernetesObject) => {
    const c = controllerOf(o);
    return c ? `controlled by ${c.kind} ${c.name}` : 'no controller';
  };
  if (owned.has(refKey(obj))) return undefined;
  const cached = foreign.get(refKey(obj));
  if (cached) return describe(cached);
  const live = await lookup(obj);
  if (!live || controllerOf(live)?.uid === observed.rm.metadata.uid) return undefined;
  return describe(live);
}

/**
 * What this replica last applied to each child (by namespace, kind and name): the hash of the desired content
 * and the generation (or, for kinds without one, the resourceVersion) the API server answered with. A child whose
 * desired content and live object are both as last applied is not applied again: an idle model makes no writes,
 * and anyone's edit of a child (a new generation) is still put back at the next reconcile.
 */
export class AppliedRecord {
  /** model (namespace/name) -> child (kind/name) -> what was applied. */
  private readonly last = new Map<string, Map<string, { hash: string; mark: string }>>();
  private readonly hashes = new WeakMap<object, string>();

  /** The desired object's content hash (built children are kept per spec generation, so each is hashed once). */
  hash(obj: KubernetesObject): string {
    let h = this.hashes.get(obj);
    if (h === undefined) {
      h = createHash('sha256').update(JSON.stringify(obj)).digest('base64url').slice(0, 16);
      this.hashes.set(obj, h);
    }
    return h;
  }

  unchanged(model: string, obj: KubernetesObject, live: KubernetesObject | undefined): boolean {
    const seen = this.last.get(model)?.get(refKey(obj));
    return !!live && !!seen && seen.hash === this.hash(obj) && seen.mark === mark(live);
  }

  remember(model: string, obj: KubernetesObject, live: KubernetesObject): void {
    let m = this.last.get(model);
    if (!m) this.last.set(model, (m = new Map()));
    m.set(refKey(obj), { hash: this.hash(obj), mark: mark(live) });
  }

  /** Drops a model's records (it was deleted). */
  forget(model: string): void {
    this.last.delete(model);
  }
}

const mark = (o: KubernetesObject) => (o.metadata?.generation ? `g${o.metadata.generation}` : `r${o.metadata?.resourceVersion ?? ''}`);

/** Children looked at between two turns of the event loop. */
const YIELD_EVERY = 128;

/** Writes of one kind run this many at a time (kinds still go in order: policies, config, Services, Deployments...). */
export const APPLY_CONCURRENCY = 16;

export async function applyDesired(d: ApplyDeps, observed: Observed, desired: KubernetesObject[], record?: AppliedRecord): Promise<Applied> {
  const out: Applied = { deployments: [], conflicts: [], errors: [] };
  const { rm } = observed;
  const model = `${rm.metadata.namespace}/${rm.metadata.name}`;
  const owned = new Map(observed.owned.map((o) => [refKey(o), o]));
  const foreign = new Map(observed.foreign.map((o) => [refKey(o), o]));
  const lookup = absentLookup(
    d.client,
    observed,
    desired.filter((o) => !owned.has(refKey(o)) && !foreign.has(refKey(o))),
  );
  const deployments: (V1Deployment | undefined)[] = new Array(desired.length);
  let done = 0;
  const one = async (obj: KubernetesObject, i: number) => {
    // skipped children cost no I/O: without a pause the loop would run thousands of them without serving a probe
    if (++done % YIELD_EVERY === 0) await nextTurn();
    const live = owned.get(refKey(obj));
    if (record?.unchanged(model, obj, live)) {
      if (obj.kind === 'Deployment') deployments[i] = live as V1Deployment;
      return;
    }
    const holder = await foreignOwner(observed, owned, foreign, lookup, obj);
    if (holder) {
      out.conflicts.push(`${obj.kind} ${obj.metadata!.name}`);
      await d.events.emit(
        rm,
        'Warning',
        EventReason.ResourceConflict,
        `${obj.kind} ${obj.metadata!.name} exists and is not controlled by this RecModel (${holder}); left unchanged`,
      );
      return;
    }
    try {
      const applied = await d.client.apply(obj);
      d.metrics.applies.inc({ kind: obj.kind });
      record?.remember(model, obj, applied);
      if (obj.kind === 'Deployment') deployments[i] = applied as V1Deployment;
    } catch (e) {
      const msg = `apply ${obj.kind} ${obj.metadata!.name}: ${apiErrorMessage(e)}`;
      out.errors.push(msg);
      await d.events.emit(rm, 'Warning', EventReason.ApplyFailed, msg);
    }
  };
  // desired comes sorted by kind; each run of one kind is written concurrently, the next kind after it
  for (let start = 0; start < desired.length;) {
    let end = start;
    while (end < desired.length && desired[end]!.kind === desired[start]!.kind) end++;
    await pool(end - start, APPLY_CONCURRENCY, (k) => one(desired[start + k]!, start + k));
    start = end;
  }
  out.deployments = deployments.filter((x) => x !== undefined);
  return out;
}

/** Runs task(0..n-1), at most `width` at a time. */
async function pool(n: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, lane));
}
