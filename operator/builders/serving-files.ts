// The two files of the plan ConfigMap that the shard-servers read, built here once: for the operator's pods
// (endpoints are the shards' Services of the plan's version) and for local serving, which passes its own endpoints.
import type { ModelConfig } from '../../contracts/model-config.js';
import { withEndpoints, type Endpoint, type ServingPlan, type ShardDocument } from '../../contracts/plan.js';
import type { ResolvedRecModelSpec } from '../api/v1alpha1/index.js';
import { planDocument } from '../planner/format.js';
import type { Plan } from '../planner/plan.js';
import type { Owner } from './meta.js';
import { mainName, shardName, shortHash } from './names.js';

export const PLAN_KEY = 'plan.json';
export const MODEL_KEY = 'model.json';

/**
 * The serving version: what decides which rows a shard returns and how it speaks (the table assignment, the model's
 * shapes, the artifact, the shard-server image and mutual TLS). Shards of one version are a set of their own; a change of it is
 * rolled out beside the running set (rollout.ts), anything else (resources, replicas, scheduling) rolls in place.
 */
export function servingVersion(
  spec: Pick<ResolvedRecModelSpec, 'model' | 'artifact'> & { serving?: Pick<ResolvedRecModelSpec['serving'], 'tls'> },
  plan: Plan,
  image: string,
  artifactUri?: string,
): string {
  const artifact = artifactUri !== undefined ? { uri: artifactUri } : (spec.artifact ?? {});
  // mutual TLS changes how a main and its shards speak (left out when off: existing versions keep their hashes)
  const tls = spec.serving?.tls ? { tls: spec.serving.tls.secretName } : {};
  // layout 2: headless shard Services (a Service's clusterIP cannot change, so an operator that makes them gets new ones)
  return shortHash(JSON.stringify({ plan: plan.hash, tables: spec.model.tables, artifact, image, layout: 2, ...tls }), 8);
}

/** plan.json: the plan document with its version and where the main and each shard answer. */
export function servingPlan(model: string, plan: Plan, version: string, main: { service?: string }, shard: (s: ShardDocument) => Endpoint): ServingPlan {
  return withEndpoints(planDocument(model, plan), version, main, shard);
}

/** plan.json in a cluster: each shard answers at its Service, which belongs to the version. */
export function clusterServingPlan(owner: Owner, spec: ResolvedRecModelSpec, plan: Plan, version: string): ServingPlan {
  const port = spec.serving.port;
  return servingPlan(owner.name, plan, version, { service: mainName(owner.name) }, (s) => ({
    service: shardName(owner.name, s.index, version),
    endpoint: `${spec.serving.tls ? 'https' : 'http'}://${shardName(owner.name, s.index, version)}.${owner.namespace}.svc:${port}`,
  }));
}

/** model.json: the spec's model and serving sections, and the artifact (or the one given, for local serving). */
export function modelConfig(spec: Pick<ResolvedRecModelSpec, 'model' | 'artifact' | 'serving'>, artifactUri?: string): ModelConfig {
  return { model: spec.model, artifact: artifactUri !== undefined ? { uri: artifactUri } : (spec.artifact ?? {}), serving: spec.serving };
}
