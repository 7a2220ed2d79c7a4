// Desired children of a RecModel: the plan ConfigMap, the main Deployment and Service, one Deployment and
// Service per sparse shard, a PodDisruptionBudget per component and the NetworkPolicies (protection.ts). Pure
// functions of (RecModel, plan, config); the controller applies what they return.
import type {
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1NetworkPolicy,
  V1PodDisruptionBudget,
  V1PodSpec,
  V1ResourceRequirements,
  V1Service,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { HEALTH_PATH, READY_PATH } from '../../contracts/endpoints.js';
import { shardServerArgs, type ShardServerArgs } from '../../contracts/shard-server-args.js';
import { parseCpu } from '../../lib/quantity.js';
import type { ResolvedRecModelSpec } from '../api/v1alpha1/index.js';
import type { Plan } from '../planner/plan.js';
import type { BuilderConfig } from './config.js';
import { ANNOTATION_CONFIG_HASH, ANNOTATION_PLAN_HASH, componentLabels, modelLabels, selectorLabels, type Role } from './labels.js';
import { childMeta, type Owner } from './meta.js';
import { componentName, planConfigMapName, shortHash } from './names.js';
import { podPlacement } from './placement.js';
import { buildNetworkPolicies, buildPdb } from './protection.js';
import { clusterServingPlan, MODEL_KEY, modelConfig, PLAN_KEY } from './serving-files.js';

export interface Children {
  configMap: V1ConfigMap;
  deployments: V1Deployment[];
  services: V1Service[];
  pdbs: V1PodDisruptionBudget[];
  networkPolicies: V1NetworkPolicy[];
}

export const CONFIG_MOUNT = '/etc/recshard';
export const CONTAINER = 'shard-server';

export function buildConfigMap(owner: Owner, spec: ResolvedRecModelSpec, plan: Plan): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: childMeta(owner, planConfigMapName(owner.name), modelLabels(owner.name)),
    data: {
      [PLAN_KEY]: JSON.stringify(clusterServingPlan(owner, spec, plan), null, 2),
      [MODEL_KEY]: JSON.stringify(modelConfig(spec), null, 2),
    },
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
  configHash: string;
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
      ...(role === 'main' ? mainScheduling(spec) : {}),
    }),
    env: [
      { name: 'RECSHARD_MODEL', value: owner.name },
      { name: 'RECSHARD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'RECSHARD_POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ],
    ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
    readinessProbe: { httpGet: { path: READY_PATH, port: 'http' }, periodSeconds: 5, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: HEALTH_PATH, port: 'http' }, periodSeconds: 10, failureThreshold: 6 },
    ...(Object.keys(resources).length ? { resources } : {}),
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
    volumeMounts: [{ name: 'config', mountPath: CONFIG_MOUNT, readOnly: true }, ...(mount ? [mount] : [])],
  };
}

/** The component's pod: placed on its device, the plan ConfigMap (and the model volume) mounted, nothing else granted. */
function podSpec(a: ComponentArgs): V1PodSpec {
  const { owner, spec, plan, cfg, role, shard } = a;
  const tableBytes =
    role === 'main' ? plan.tables.filter((t) => plan.mainTables.includes(t.name)).reduce((s, t) => s + t.bytes, 0) : plan.shards[shard!]!.bytes;
  const derivedMemory = tableBytes > 0 ? tableBytes * cfg.memoryOverhead + cfg.baseMemoryBytes : undefined;
  const placement = podPlacement(role === 'main' ? spec.placement.main : spec.placement.sparse, cfg, derivedMemory);
  const { volume, mount } = artifactVolume(spec);
  return {
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    ...(cfg.imagePullSecrets.length ? { imagePullSecrets: cfg.imagePullSecrets.map((name) => ({ name })) } : {}),
    // the images' numeric non-root user (distroless nonroot)
    securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
    affinity: placement.affinity,
    ...(placement.tolerations ? { tolerations: placement.tolerations } : {}),
    ...(placement.nodeSelector ? { nodeSelector: placement.nodeSelector } : {}),
    containers: [container(a, placement.resources, mount)],
    volumes: [{ name: 'config', configMap: { name: planConfigMapName(owner.name) } }, ...(volume ? [volume] : [])],
  };
}

export function buildDeployment(a: ComponentArgs): V1Deployment {
  const { owner, spec, plan, role, shard } = a;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: childMeta(owner, componentName(owner.name, role, shard), componentLabels(owner.name, role, shard)),
    spec: {
      // Left out while autoscaling owns the count, so the operator's apply never fights the scaler.
      ...(spec.autoscaling.enabled ? {} : { replicas: (role === 'main' ? spec.placement.main : spec.placement.sparse).replicas }),
      selector: { matchLabels: selectorLabels(owner.name, role, shard) },
      template: {
        metadata: {
          labels: componentLabels(owner.name, role, shard),
          annotations: { [ANNOTATION_PLAN_HASH]: plan.hash, [ANNOTATION_CONFIG_HASH]: a.configHash },
        },
        spec: podSpec(a),
      },
    },
  };
}

export function buildService(owner: Owner, spec: ResolvedRecModelSpec, role: Role, shard?: number): V1Service {
  const name = componentName(owner.name, role, shard);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(owner, name, componentLabels(owner.name, role, shard)),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(owner.name, role, shard),
      ports: [{ name: 'http', port: spec.serving.port, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

export function buildChildren(owner: Owner, spec: ResolvedRecModelSpec, plan: Plan, cfg: BuilderConfig): Children {
  const configMap = buildConfigMap(owner, spec, plan);
  const configHash = shortHash(JSON.stringify(configMap.data), 10);
  const components: { role: Role; shard?: number }[] = [{ role: 'main' }, ...plan.shards.map((s) => ({ role: 'sparse' as const, shard: s.index }))];
  return {
    configMap,
    deployments: components.map((c) => buildDeployment({ owner, spec, plan, cfg, configHash, ...c })),
    services: components.map((c) => buildService(owner, spec, c.role, c.shard)),
    pdbs: components.map((c) => buildPdb(owner, c.role, c.shard)),
    networkPolicies: buildNetworkPolicies(owner, spec, plan, cfg),
  };
}
