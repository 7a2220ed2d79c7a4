// Watch-backed caches of RecModels, LatencyScalingPolicies, the children the operator manages (budgets,
// NetworkPolicies, HPAs and KEDA ScaledObjects included) and their pods.
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

interface Source<T extends KubernetesObject> {
  kind: string;
  informer: Informer<T> & ObjectCache<T>;
  synced: boolean;
  /** Consecutive failures, for restart backoff; reset by a successful list. */
  failures: number;
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
    private readonly namespace: string | undefined,
    private readonly enqueue: (key: string) => void,
    private readonly log: Logger,
    private readonly clock: Clock,
    opts: { keda: boolean } = { keda: false },
  ) {
    const ns = namespace ? `/namespaces/${namespace}` : '';
    const make = <T extends KubernetesObject>(kind: string, apiVersion: string, path: string, labelSelector?: string, clusterScoped = false): Source<T> => {
      const source: Source<T> = { kind, synced: false, failures: 0, informer: undefined as never };
      const list = async () => {
        const scope = clusterScoped ? undefined : namespace;
        const result = await client.objects.list<T>(apiVersion, kind, scope, undefined, undefined, undefined, undefined, labelSelector);
        source.synced = true;
        source.failures = 0;
        return result;
      };
      source.informer = makeInformer<T>(kubeConfig, path, list, labelSelector);
      return source;
    };
    this.recModels = make(KIND, API_VERSION, `/apis/${GROUP}/${VERSION}${ns}/${PLURAL}`);
    this.deployments = make('Deployment', 'apps/v1', `/apis/apps/v1${ns}/deployments`, MANAGED_SELECTOR);
    this.services = make('Service', 'v1', `/api/v1${ns}/services`, MANAGED_SELECTOR);
    this.configMaps = make('ConfigMap', 'v1', `/api/v1${ns}/configmaps`, MANAGED_SELECTOR);
    this.pdbs = make('PodDisruptionBudget', 'policy/v1', `/apis/policy/v1${ns}/poddisruptionbudgets`, MANAGED_SELECTOR);
    this.networkPolicies = make('NetworkPolicy', 'networking.k8s.io/v1', `/apis/networking.k8s.io/v1${ns}/networkpolicies`, MANAGED_SELECTOR);
    this.policies = make(POLICY_KIND, API_VERSION, `/apis/${GROUP}/${VERSION}/${POLICY_PLURAL}`, undefined, true);
    // the pods' labels come from the pod templates, which carry the model labels (managed-by included)
    this.pods = make('Pod', 'v1', `/api/v1${ns}/pods`, MANAGED_SELECTOR);
    this.hpas = make('HorizontalPodAutoscaler', 'autoscaling/v2', `/apis/autoscaling/v2${ns}/horizontalpodautoscalers`, MANAGED_SELECTOR);
    if (opts.keda) this.scaledObjects = make(SCALED_OBJECT, KEDA_API_VERSION, `/apis/${KEDA_API_VERSION}${ns}/scaledobjects`, MANAGED_SELECTOR);

    this.enqueueOnEvents();
  }

  /** A RecModel maps to itself, a child to its controlling RecModel, a policy to every RecModel that references it. */
  private enqueueOnEvents(): void {
    const verbs = ['add', 'update', 'delete'] as const;
    const ownKey = (o: KubernetesObject) => this.enqueue(keyOf(o.metadata!.namespace!, o.metadata!.name!));
    for (const verb of verbs) this.recModels.informer.on(verb, ownKey);
    const ownerKey = (o: KubernetesObject) => {
      const owner = controllerOf(o);
      if (owner?.kind === KIND && owner.apiVersion.startsWith(`${GROUP}/`)) this.enqueue(keyOf(o.metadata!.namespace!, owner.name));
    };
    for (const s of this.childSources()) for (const verb of verbs) s.informer.on(verb, ownerKey);
    // a pod belongs to a ReplicaSet; its model label names the RecModel (as dnsLabel made it)
    const podModel = (o: KubernetesObject) => {
      const ns = o.metadata!.namespace!;
      const instance = o.metadata?.labels?.[LABEL_INSTANCE];
      const rm = instance && this.recModels.informer.list(ns).find((r) => dnsLabel(r.metadata!.name!) === instance);
      if (rm) ownKey(rm);
    };
    for (const verb of verbs) this.pods.informer.on(verb, podModel);
    const policyUsers = (p: KubernetesObject) => {
      for (const rm of this.recModels.informer.list()) if ((rm as RecModel).spec?.autoscaling?.policyRef?.name === p.metadata!.name) ownKey(rm);
    };
    for (const verb of verbs) this.policies.informer.on(verb, policyUsers);
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

  /** Starts every informer; resolves once each has listed. */
  async start(): Promise<void> {
    for (const s of this.all()) s.informer.on('error', (err) => this.restart(s, err));
    await Promise.all(this.all().map((s) => s.informer.start()));
    while (!this.synced && !this.stopped) await new Promise((r) => this.clock.setTimeout(() => r(undefined), 100));
  }

  private restart(s: Source<KubernetesObject>, err: unknown): void {
    if (this.stopped) return;
    const delay = Math.min(30_000, 500 * 2 ** s.failures++);
    this.log.warn('watch failed; restarting', { kind: s.kind, error: apiErrorMessage(err), retryInMs: delay });
    this.clock.setTimeout(() => {
      if (!this.stopped) void s.informer.start();
    }, delay);
  }

  get synced(): boolean {
    return this.all().every((s) => s.synced);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.all().map((s) => s.informer.stop()));
  }

  recModel(namespace: string, name: string): RecModel | undefined {
    return this.recModels.informer.get(name, namespace) as RecModel | undefined;
  }

  allRecModelKeys(): string[] {
    return this.recModels.informer.list().map((r) => keyOf(r.metadata!.namespace!, r.metadata!.name!));
  }

  policy(name: string): LatencyScalingPolicy | undefined {
    return this.policies.informer.get(name) as LatencyScalingPolicy | undefined;
  }

  /** Pods in the namespace that carry the model's instance label. */
  modelPods(namespace: string, instance: string): V1Pod[] {
    return this.pods.informer.list(namespace).filter((p) => p.metadata?.labels?.[LABEL_INSTANCE] === instance);
  }

  /** Children in the model's namespace that carry its instance label. */
  children(namespace: string, instance: string) {
    const mine = <T extends KubernetesObject>(s: Source<T>) => s.informer.list(namespace).filter((o) => o.metadata?.labels?.[LABEL_INSTANCE] === instance);
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
