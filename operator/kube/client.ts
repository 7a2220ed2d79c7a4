// The thin Kubernetes client the controller acts through: server-side apply with one field manager, get,
// delete, status patches, Events and Leases. Nothing else in the operator talks to the API server directly.
import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type KubernetesObject,
  type V1Lease,
} from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type RecModelStatus } from '../api/v1alpha1/index.js';

export const FIELD_MANAGER = 'recshard-operator';
/** The autoscaler writes replicas through the scale subresource under its own manager, never by apply. */
export const SCALER_FIELD_MANAGER = 'recshard-autoscaler';

export function isStatus(e: unknown, code: number): boolean {
  return e instanceof ApiException && e.code === code;
}

/** A readable one-line message for an API error (the Status message when there is one). */
export function apiErrorMessage(e: unknown): string {
  if (e instanceof ApiException) {
    const body = typeof e.body === 'string' ? safeJson(e.body) : e.body;
    return `${e.code}: ${(body as { message?: string } | undefined)?.message ?? String(e.body).slice(0, 300)}`;
  }
  return e instanceof Error ? e.message : String(e);
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return { message: s };
  }
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

export class KubeClient {
  readonly objects: KubernetesObjectApi;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly coordination: CoordinationV1Api;
  readonly apps: AppsV1Api;

  constructor(readonly kubeConfig: KubeConfig) {
    this.objects = KubernetesObjectApi.makeApiClient(kubeConfig);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.coordination = kubeConfig.makeApiClient(CoordinationV1Api);
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
  }

  /** Whether the API server serves this kind (e.g. KEDA's ScaledObject, only where KEDA is installed). */
  async served(apiVersion: string, kind: string, namespace?: string): Promise<boolean> {
    try {
      await this.objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, undefined, 1);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Sets a Deployment's replicas by a patch of the Deployment itself, not its scale subresource: the admission
   * policy sees the whole object (its labels and owner), so the operator needs no right to scale every Deployment.
   */
  async scaleDeployment(namespace: string, name: string, replicas: number): Promise<void> {
    await this.apps.patchNamespacedDeployment(
      { namespace, name, body: { spec: { replicas } }, fieldManager: SCALER_FIELD_MANAGER },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  /** Server-side apply of exactly the fields we own, forced, under the operator's field manager. */
  async apply<T extends KubernetesObject>(obj: T): Promise<T> {
    return this.objects.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  }

  /** Every object of a kind in a namespace (one LIST), by name. */
  async listByName(apiVersion: string, kind: string, namespace: string): Promise<Map<string, KubernetesObject>> {
    const list = await this.objects.list(apiVersion, kind, namespace);
    return new Map(list.items.map((o) => [o.metadata!.name!, o]));
  }

  async get<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
    try {
      return await this.objects.read<T>({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } } as never);
    } catch (e) {
      if (isStatus(e, 404)) return undefined;
      throw e;
    }
  }

  /** Deletes in the background (dependents collected by the garbage collector); gone already is fine. */
  async delete(ref: ObjectRef): Promise<void> {
    try {
      await this.objects.delete(
        { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } },
        undefined,
        undefined,
        undefined,
        undefined,
        'Background',
      );
    } catch (e) {
      if (!isStatus(e, 404)) throw e;
    }
  }

  async patchRecModelStatus(namespace: string, name: string, status: RecModelStatus): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: { status }, fieldManager: FIELD_MANAGER },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  async createEvent(event: CoreV1Event): Promise<void> {
    await this.core.createNamespacedEvent({ namespace: event.metadata.namespace!, body: event });
  }

  async getLease(namespace: string, name: string): Promise<V1Lease | undefined> {
    try {
      return await this.coordination.readNamespacedLease({ namespace, name });
    } catch (e) {
      if (isStatus(e, 404)) return undefined;
      throw e;
    }
  }

  async createLease(lease: V1Lease): Promise<V1Lease> {
    return this.coordination.createNamespacedLease({ namespace: lease.metadata!.namespace!, body: lease });
  }

  /** Replace with the lease's resourceVersion: a concurrent writer makes this fail with 409. */
  async replaceLease(lease: V1Lease): Promise<V1Lease> {
    return this.coordination.replaceNamespacedLease({ namespace: lease.metadata!.namespace!, name: lease.metadata!.name!, body: lease });
  }
}
