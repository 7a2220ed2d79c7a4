// Desired children of one serving version of a RecModel: its immutable plan ConfigMap, the main Deployment and
// Service, one Deployment and Service per sparse shard of the version, a PodDisruptionBudget for the main and one for
// the shard set (NetworkPolicies are protection.ts's). Pure functions of (RecModel, plan, config); the rollout (rollout.ts)
// decides which versions' children are applied and when.
import type {
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1PodDisruptionBudget,
  V1PodSpec,
  V1ResourceRequirements,
  V1Service,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { HEALTH_PATH, READY_PATH } from '../../contracts/endpoints.js';
import { shardServerArgs, type ShardServerArgs } from '../../contracts/shard-server-args.js';
import { durationMs } from '../../lib/duration.js';
import { parseCpu } from '../../lib/quantity.js';
import type { ResolvedRecModelSpec } from '../api/v1alpha1/index.js';
import type { Plan } from '../planner/plan.js';
import type { BuilderConfig } from './config.js';
import { ANNOTATION_CONFIG, ANNOTATION_PLAN_HASH, componentLabels, LABEL_VERSION, modelLabels, selectorLabels, type Role } from './labels.js';
import { childMeta, type Owner } from './meta.js';
import { componentName, planConfigMapName, shortHash } from './names.js';
import { podPlacement } from './placement.js';
import { buildMainPdb, buildShardSetPdb } from './protection.js';
import { clusterServingPlan, MODEL_KEY, modelConfig, PLAN_KEY, servingVersion } from './serving-files.js';

/** Everything one serving version of a model needs: its immutable plan ConfigMap, the main and its shard set. */
export interface VersionChildren {
  version: string;
  configMap: V1ConfigMap;
  main: { deployment: V1Deployment; service: V1Service; pdb: V1PodDisruptionBudget };
  /** The version's sparse shards, a Deployment and Service each, and one budget for the set (none when the main holds every table). */
  shards: { deployments: V1Deployment[]; services: V1Service[]; pdbs: V1PodDisruptionBudget[] };
}

/** Seconds a terminating shard-server keeps answering (and telling clients to reconnect) while Services forget it. */
export const SHUTDOWN_DELAY_MS = 5_000;

export const CONFIG_MOUNT = '/etc/recshard';
/** Where spec.serving.tls's Secret is mounted (tls.crt, tls.key, ca.crt). */
export const TLS_MOUNT = '/etc/recshard-tls';
export const TLS_VOLUME = 'tls';
export const CONTAINER = 'shard-server';

/** The API server's limit on a ConfigMap's data (and etcd's on one value, with room for the metadata). */
export const CONFIGMAP_MAX_BYTES = 1024 * 1024;

/** Files are indented for people to read while that costs little; a large plan is written compact to fit. */
const INDENT_UNDER_BYTES = 256 * 1024;
function jsonFile(doc: unknown): string {
  const compact = JSON.stringify(doc);
  return compact.length < INDENT_UNDER_BYTES ? JSON.stringify(doc, null, 2) : compact;
}

/** Bytes of a ConfigMap's data, as the API server counts them against CONFIGMAP_MAX_BYTES. */
export function configMapBytes(cm: V1ConfigMap): number {
  return Object.entries(cm.data ?? {}).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
}

/** The plan ConfigMap: immutable, named by the hash of its files, labelled with its version. */
export function buildConfigMap(owner: Owner, spec: ResolvedRecModelSpec, plan: Plan, version: string): V1ConfigMap {
  const data = {
    [PLAN_KEY]: jsonFile(clusterServingPlan(owner, spec, plan, version)),
    [MODEL_KEY]: jsonFile(modelConfig(spec)),
  };
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: childMeta(owner, planConfigMapName(owner.name, shortHash(JSON.stringify(data), 10)), { ...modelLabels(owner.name), [LABEL_VERSION]: version }),
    immutable: true,
    data,
  };
}

function artifactVolume(spec: ResolvedRecModelSpec): { volume?: V1Volume; mount?: V1VolumeMount } {
  const a = spec.artifact;
  if (!a?.uri?.startsWith('file://') || !a.volume) return {};
  const path = a.uri.slice('file://'.length);
  const dir = path.endsWith('/') ? path.replace(/\/+$/, '') || '/' : path.slice(0, path.lastIndexOf('/')) || '/';
  return {
    volume: { ...(a.volume as unknown as V1Volume), name: 'model' },
    mount: { name: 'model', mountPath: dir, readOnly: true },
  };
}

interface ComponentArgs {
  owner: Owner;
  spec: ResolvedRecModelSpec;
  plan: Plan;
  cfg: BuilderConfig;
  role: Role;
  shard?: number;
  version: string;
  configMap: string;
}

/**
 * The main's worker threads follow its CPU allowance unless spec.serving.workers says otherwise (Node sees the
 * node's cores, not the container's quota); a GPU main gets the CUDA session for whole large queries.
 */
export function mainScheduling(spec: ResolvedRecModelSpec): Pick<ShardServerArgs, 'workers' | 'accelerator'> {
  const res = spec.placement.main.resources as { limits?: Record<string, string | number>; requests?: Record<string, string | number> } | undefined;
  const cpu = res?.limits?.cpu ?? res?.requests?.cpu;
  let cores: number | undefined;
  try {
    cores = cpu === undefined ? undefined : Math.max(1, Math.ceil(parseCpu(cpu)));
  } catch {
    cores = undefined; // a quantity we cannot read: the main falls back to the cores it sees
  }
  return {
    ...(spec.serving.workers === undefined && cores !== undefined ? { workers: cores } : {}),
    ...(spec.placement.main.device === 'gpu' ? { accelerator: 'cuda' } : {}),
  };
}

/** The shard-server container: its arguments, probes and restricted security context. */
function container(a: ComponentArgs, resources: V1ResourceRequirements, mount: V1VolumeMount | undefined): V1Container {
  const { owner, spec, cfg, role, shard } = a;
  const port = spec.serving.port;
  const scheme = spec.serving.tls && role === 'sparse' ? { scheme: 'HTTPS' } : {};
  return {
    name: CONTAINER,
    image: cfg.shardServerImage,
    imagePullPolicy: cfg.imagePullPolicy,
    args: shardServerArgs({
      role,
      shard,
      plan: `${CONFIG_MOUNT}/${PLAN_KEY}`,
      modelConfig: `${CONFIG_MOUNT}/${MODEL_KEY}`,
      port,
      metricsPort: spec.serving.metricsPort,
      shutdownDelayMs: SHUTDOWN_DELAY_MS,
      ...(role === 'main' ? mainScheduling(spec) : {}),
      ...(spec.serving.tls ? { tlsCert: `${TLS_MOUNT}/tls.crt`, tlsKey: `${TLS_MOUNT}/tls.key`, tlsCa: `${TLS_MOUNT}/ca.crt` } : {}),
    }),
    env: [
      { name: 'RECSHARD_MODEL', value: owner.name },
      { name: 'RECSHARD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'RECSHARD_POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ],
    ports: [
      { name: 'http', containerPort: port, protocol: 'TCP' },
      { name: 'metrics', containerPort: spec.serving.metricsPort, protocol: 'TCP' },
    ],
    // a shard under mutual TLS serves its port over TLS; its probes need no client certificate
    readinessProbe: { httpGet: { path: READY_PATH, port: 'http', ...scheme }, periodSeconds: 5, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: HEALTH_PATH, port: 'http', ...scheme }, periodSeconds: 10, failureThreshold: 6 },
    ...(Object.keys(resources).length ? { resources } : {}),
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
    volumeMounts: [
      { name: 'config', mountPath: CONFIG_MOUNT, readOnly: true },
      ...(mount ? [mount] : []),
      ...(spec.serving.tls ? [{ name: TLS_VOLUME, mountPath: TLS_MOUNT, readOnly: true }] : []),
    ],
  };
}

/** The component's pod: placed on its device, the plan ConfigMap (and the model volume) mounted, nothing else granted. */
function podSpec(a: ComponentArgs): V1PodSpec {
  const { spec, plan, cfg, role, shard } = a;
  const tableBytes =
    role === 'main' ? plan.tables.filter((t) => plan.mainTables.includes(t.name)).reduce((s, t) => s + t.bytes, 0) : plan.shards[shard!]!.bytes;
  const derivedMemory = tableBytes > 0 ? tableBytes * cfg.memoryOverhead + cfg.baseMemoryBytes : undefined;
  const placement = podPlacement(role === 'main' ? spec.placement.main : spec.placement.sparse, cfg, derivedMemory);
  const { volume, mount } = artifactVolume(spec);
  return {
    ...(cfg.modelServiceAccount !== 'default' ? { serviceAccountName: cfg.modelServiceAccount } : {}),
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    ...(cfg.imagePullSecrets.length ? { imagePullSecrets: cfg.imagePullSecrets.map((name) => ({ name })) } : {}),
    // the images' numeric non-root user (distroless nonroot)
    securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
    affinity: placement.affinity,
    ...(placement.tolerations ? { tolerations: placement.tolerations } : {}),
    ...(placement.nodeSelector ? { nodeSelector: placement.nodeSelector } : {}),
    containers: [container(a, placement.resources, mount)],
    volumes: [
      { name: 'config', configMap: { name: a.configMap } },
      ...(volume ? [volume] : []),
      ...(spec.serving.tls ? [{ name: TLS_VOLUME, secret: { secretName: spec.serving.tls.secretName } }] : []),
    ],
  };
}

export function buildDeployment(a: ComponentArgs): V1Deployment {
  const { owner, spec, plan, role, shard, version } = a;
  // the main Deployment's own labels and selector stay the same from version to version; its pods say theirs
  const own = role === 'sparse' ? version : undefined;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: childMeta(owner, componentName(owner.name, role, shard, version), componentLabels(owner.name, role, shard, own)),
    spec: {
      // Left out while autoscaling owns the count, so the operator's apply never fights the scaler.
      ...(spec.autoscaling.enabled ? {} : { replicas: (role === 'main' ? spec.placement.main : spec.placement.sparse).replicas }),
      selector: { matchLabels: selectorLabels(owner.name, role, shard, version) },
      // a new pod is Ready before an old one goes, so a change that rolls in place never lowers capacity
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      progressDeadlineSeconds: Math.max(1, Math.ceil((durationMs(spec.rollout.progressDeadline) ?? 600_000) / 1000)),
      template: {
        metadata: {
          labels: componentLabels(owner.name, role, shard, version),
          annotations: { [ANNOTATION_PLAN_HASH]: plan.hash, [ANNOTATION_CONFIG]: a.configMap },
        },
        spec: podSpec(a),
      },
    },
  };
}

/**
 * The main's Service has a virtual IP (clients of the model reach it through kube-proxy). A sparse shard's is
 * headless: its name resolves to the addresses of its Ready pods, and the main spreads its calls over them, request
 * by request, hedging a slow one to another pod (kube-proxy would spread connections, and hide which pod answers).
 */
export function buildService(owner: Owner, spec: ResolvedRecModelSpec, role: Role, shard?: number, version?: string): V1Service {
  const name = componentName(owner.name, role, shard, version);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(owner, name, componentLabels(owner.name, role, shard, role === 'sparse' ? version : undefined)),
    spec: {
      type: 'ClusterIP',
      ...(role === 'sparse' ? { clusterIP: 'None' } : {}),
      selector: selectorLabels(owner.name, role, shard, version),
      ports: [{ name: 'http', port: spec.serving.port, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

/** The children of the spec's serving version (servingVersion: the plan, the artifact, the image and TLS). */
export function buildVersion(owner: Owner, spec: ResolvedRecModelSpec, plan: Plan, cfg: BuilderConfig): VersionChildren {
  const v = versionBuilder(owner, spec, plan, cfg);
  for (const s of plan.shards) v.addShard(s.index);
  return v.done();
}

/**
 * The same, a slice of shards per turn of the event loop (`pause` between slices): building a thousand shards'
 * Deployments takes a quarter of a second, which a controller's loop must not spend at once.
 */
export async function buildVersionInTurns(
  owner: Owner,
  spec: ResolvedRecModelSpec,
  plan: Plan,
  cfg: BuilderConfig,
  pause: () => Promise<void>,
  slice = 32,
): Promise<VersionChildren> {
  const v = versionBuilder(owner, spec, plan, cfg);
  for (const [i, s] of plan.shards.entries()) {
    if (i > 0 && i % slice === 0) await pause();
    v.addShard(s.index);
  }
  return v.done();
}

function versionBuilder(owner: Owner, spec: ResolvedRecModelSpec, plan: Plan, cfg: BuilderConfig) {
  const version = servingVersion(spec, plan, cfg.shardServerImage);
  const configMap = buildConfigMap(owner, spec, plan, version);
  const base = { owner, spec, plan, cfg, version, configMap: configMap.metadata!.name! };
  const shards: VersionChildren['shards'] = { deployments: [], services: [], pdbs: [] };
  return {
    addShard(shard: number) {
      shards.deployments.push(buildDeployment({ ...base, role: 'sparse', shard }));
      shards.services.push(buildService(owner, spec, 'sparse', shard, version));
    },
    done(): VersionChildren {
      if (shards.deployments.length) shards.pdbs.push(buildShardSetPdb(owner, version));
      const main = { deployment: buildDeployment({ ...base, role: 'main' }), service: buildService(owner, spec, 'main'), pdb: buildMainPdb(owner) };
      return { version, configMap, main, shards };
    },
  };
}
