// Watch-backed caches of RecModels, LatencyScalingPolicies, the children the operator manages (budgets,
// NetworkPolicies, HPAs and KEDA ScaledObjects included) and their pods, in the served namespaces only (one
// informer per namespace when a list is given, so a namespaced Role in each is all the operator needs).
// Event handlers only enqueue keys: a RecModel maps to itself, a child to its controlling RecModel, a policy to
// every RecModel that references it, a pod to its model (what the kubelet says of it, and which version it serves,
// drive status and the rollout). Watches restart by themselves on
// close and on 410 Gone (the library relists); any other failure restarts the informer with backoff.
import {
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type ObjectCache,
  type V1ConfigMap,
  type V1Deployment,
  type V1NetworkPolicy,
  type V1Pod,
  type V1PodDisruptionBudget,
  type V1Service,
  type V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/log.js';
import { API_VERSION, GROUP, KIND, PLURAL, POLICY_KIND, POLICY_PLURAL, VERSION, type LatencyScalingPolicy, type RecModel } from '../api/v1alpha1/index.js';
import { KEDA_API_VERSION, SCALED_OBJECT } from '../builders/autoscalers.js';
import { LABEL_INSTANCE, MANAGED_SELECTOR } from '../builders/labels.js';
import { dnsLabel } from '../builders/names.js';
import { apiErrorMessage, type KubeClient } from '../kube/client.js';
import { trimForCache } from './trim.js';

/** One informer: a kind in one namespace (or in all, or cluster-scoped). */
interface Part<T extends KubernetesObject> {
  namespace?: string;
  informer: Informer<T> & ObjectCache<T>;
  synced: boolean;
  /** Consecutive failures, for restart backoff; reset by a successful list. */
  failures: number;
}

/** A kind, watched in every served namespace: one informer each (or one for all namespaces). */
class Source<T extends KubernetesObject> {
  constructor(
    readonly kind: string,
    readonly parts: Part<T>[],
  ) {}

  get synced(): boolean {
    return this.parts.every((p) => p.synced);
  }

  private partOf(namespace: string): Part<T> | undefined {
    return this.parts.find((p) => p.namespace === undefined || p.namespace === namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return namespace === undefined ? this.parts[0]?.informer.get(name) : this.partOf(namespace)?.informer.get(name, namespace);
  }

  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.partOf(namespace)?.informer.list(namespace) ?? [])];
    return this.parts.flatMap((p) => p.informer.list());
  }

  on(verb: 'add' | 'update' | 'delete', fn: (o: T) => void): void {
    for (const p of this.parts) p.informer.on(verb, fn);
  }
}

export function controllerOf(obj: KubernetesObject): { kind: string; name: string; uid: string; apiVersion: string } | undefined {
  const ref = obj.metadata?.ownerReferences?.find((r) => r.controller);
  return ref ? { kind: ref.kind, name: ref.name, uid: ref.uid, apiVersion: ref.apiVersion } : undefined;
}

export const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

export class Caches {
  readonly recModels: Source<RecModel & KubernetesObject>;
  readonly deployments: Source<V1Deployment>;
  readonly services: Source<V1Service>;
  readonly configMaps: Source<V1ConfigMap>;
  readonly pdbs: Source<V1PodDisruptionBudget>;
  readonly networkPolicies: Source<V1NetworkPolicy>;
  readonly policies: Source<LatencyScalingPolicy & KubernetesObject>;
  readonly pods: Source<V1Pod>;
  /** HPAs with our labels: the operator's (actuator HPA) and those KEDA makes from our ScaledObjects (it copies their labels). */
  readonly hpas: Source<V2HorizontalPodAutoscaler>;
  /** Only where KEDA's API is served (found at start-up). */
  readonly scaledObjects?: Source<KubernetesObject>;
  private stopped = false;

  constructor(
    kubeConfig: KubeConfig,
    client: KubeClient,
    /** The served namespaces; undefined: all of them. Nothing outside them is listed or watched. */
    private readonly namespaces: string[] | undefined,
    /** `child`: a child's or a pod's event (coalesced by the manager); `self`: the RecModel's own. */
    private readonly enqueue: (key: string, cause: 'self' | 'child') => void,
    private readonly log: Logger,
    private readonly clock: Clock,
    opts: { keda: boolean } = { keda: false },
  ) {
    const make = <T extends KubernetesObject>(
      kind: string,
      apiVersion: string,
      path: (ns: string) => string,
      labelSelector?: string,
      clusterScoped = false,
    ) => {
      const scopes: (string | undefined)[] = clusterScoped || !namespaces ? [undefined] : namespaces;
      const parts = scopes.map((namespace) => {
        const part: Part<T> = { namespace: clusterScoped ? undefined : namespace, synced: false, failures: 0, informer: undefined as never };
        const list = async () => {
          const result = await client.objects.list<T>(apiVersion, kind, part.namespace, undefined, undefined, undefined, undefined, labelSelector);
          for (const o of result.items) trimForCache(kind, o);
          part.synced = true;
          part.failures = 0;
          return result;
        };
        part.informer = makeInformer<T>(kubeConfig, path(namespace ? `/namespaces/${namespace}` : ''), list, labelSelector);
        // first handler: the object is already in the cache, trimmed before anyone reads it
        for (const verb of ['add', 'update'] as const) part.informer.on(verb, (o) => trimForCache(kind, o));
        return part;
      });
      return new Source<T>(kind, parts);
    };
    this.recModels = make(KIND, API_VERSION, (ns) => `/apis/${GROUP}/${VERSION}${ns}/${PLURAL}`);
    this.deployments = make('Deployment', 'apps/v1', (ns) => `/apis/apps/v1${ns}/deployments`, MANAGED_SELECTOR);
    this.services = make('Service', 'v1', (ns) => `/api/v1${ns}/services`, MANAGED_SELECTOR);
    this.configMaps = make('ConfigMap', 'v1', (ns) => `/api/v1${ns}/configmaps`, MANAGED_SELECTOR);
    this.pdbs = make('PodDisruptionBudget', 'policy/v1', (ns) => `/apis/policy/v1${ns}/poddisruptionbudgets`, MANAGED_SELECTOR);
    this.networkPolicies = make('NetworkPolicy', 'networking.k8s.io/v1', (ns) => `/apis/networking.k8s.io/v1${ns}/networkpolicies`, MANAGED_SELECTOR);
    this.policies = make(POLICY_KIND, API_VERSION, () => `/apis/${GROUP}/${VERSION}/${POLICY_PLURAL}`, undefined, true);
    // the pods' labels come from the pod templates, which carry the model labels (managed-by included)
    this.pods = make('Pod', 'v1', (ns) => `/api/v1${ns}/pods`, MANAGED_SELECTOR);
    this.hpas = make('HorizontalPodAutoscaler', 'autoscaling/v2', (ns) => `/apis/autoscaling/v2${ns}/horizontalpodautoscalers`, MANAGED_SELECTOR);
    if (opts.keda) this.scaledObjects = make(SCALED_OBJECT, KEDA_API_VERSION, (ns) => `/apis/${KEDA_API_VERSION}${ns}/scaledobjects`, MANAGED_SELECTOR);

    this.enqueueOnEvents();
  }

  /** A RecModel maps to itself, a child to its controlling RecModel, a policy to every RecModel that references it. */
  private enqueueOnEvents(): void {
    const verbs = ['add', 'update', 'delete'] as const;
    const ownKey = (o: KubernetesObject) => this.enqueue(keyOf(o.metadata!.namespace!, o.metadata!.name!), 'self');
    for (const verb of verbs) this.recModels.on(verb, ownKey);
    const ownerKey = (o: KubernetesObject) => {
      const owner = controllerOf(o);
      if (owner?.kind === KIND && owner.apiVersion.startsWith(`${GROUP}/`)) this.enqueue(keyOf(o.metadata!.namespace!, owner.name), 'child');
    };
    for (const s of this.childSources()) for (const verb of verbs) s.on(verb, ownerKey);
    // a pod belongs to a ReplicaSet; its model label names the RecModel (as dnsLabel made it)
    const podModel = (o: KubernetesObject) => {
      const ns = o.metadata!.namespace!;
      const instance = o.metadata?.labels?.[LABEL_INSTANCE];
      const rm = instance && this.recModels.list(ns).find((r) => dnsLabel(r.metadata!.name!) === instance);
      if (rm) this.enqueue(keyOf(ns, rm.metadata!.name!), 'child');
    };
    for (const verb of verbs) this.pods.on(verb, podModel);
    const policyUsers = (p: KubernetesObject) => {
      for (const rm of this.recModels.list()) if ((rm as RecModel).spec?.autoscaling?.policyRef?.name === p.metadata!.name) ownKey(rm);
    };
    for (const verb of verbs) this.policies.on(verb, policyUsers);
  }

  private childSources(): Source<KubernetesObject>[] {
    return [
      this.deployments,
      this.services,
      this.configMaps,
      this.pdbs,
      this.networkPolicies,
      this.hpas,
      ...(this.scaledObjects ? [this.scaledObjects] : []),
    ] as Source<KubernetesObject>[];
  }

  private all(): Source<KubernetesObject>[] {
    return [
      this.recModels as Source<KubernetesObject>,
      ...this.childSources(),
      this.policies as Source<KubernetesObject>,
      this.pods as Source<KubernetesObject>,
    ];
  }

  private allParts(): Part<KubernetesObject>[] {
    return this.all().flatMap((s) => s.parts);
  }

  /** Starts every informer; resolves once each has listed. */
  async start(): Promise<void> {
    for (const s of this.all()) for (const p of s.parts) p.informer.on('error', (err) => this.restart(s.kind, p, err));
    await Promise.all(this.allParts().map((p) => p.informer.start()));
    while (!this.synced && !this.stopped) await new Promise((r) => this.clock.setTimeout(() => r(undefined), 100));
  }

  private restart(kind: string, p: Part<KubernetesObject>, err: unknown): void {
    if (this.stopped) return;
    const delay = Math.min(30_000, 500 * 2 ** p.failures++);
    this.log.warn('watch failed; restarting', { kind, ...(p.namespace ? { namespace: p.namespace } : {}), error: apiErrorMessage(err), retryInMs: delay });
    this.clock.setTimeout(() => {
      if (!this.stopped) void p.informer.start();
    }, delay);
  }

  get synced(): boolean {
    return this.all().every((s) => s.synced);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.allParts().map((p) => p.informer.stop()));
  }

  recModel(namespace: string, name: string): RecModel | undefined {
    return this.recModels.get(name, namespace) as RecModel | undefined;
  }

  allRecModelKeys(): string[] {
    return this.recModels.list().map((r) => keyOf(r.metadata!.namespace!, r.metadata!.name!));
  }

  policy(name: string): LatencyScalingPolicy | undefined {
    return this.policies.get(name) as LatencyScalingPolicy | undefined;
  }

  /** Pods in the namespace that carry the model's instance label. */
  modelPods(namespace: string, instance: string): V1Pod[] {
    return this.pods.list(namespace).filter((p) => p.metadata?.labels?.[LABEL_INSTANCE] === instance);
  }

  /** Children in the model's namespace that carry its instance label. */
  children(namespace: string, instance: string) {
    const mine = <T extends KubernetesObject>(s: Source<T>) => s.list(namespace).filter((o) => o.metadata?.labels?.[LABEL_INSTANCE] === instance);
    return {
      deployments: mine(this.deployments),
      services: mine(this.services),
      configMaps: mine(this.configMaps),
      pdbs: mine(this.pdbs),
      networkPolicies: mine(this.networkPolicies),
      hpas: mine(this.hpas),
      scaledObjects: this.scaledObjects ? mine(this.scaledObjects) : [],
    };
  }
}
