// The two files of the plan ConfigMap that the shard-servers read, built here once: for the operator's pods
// (endpoints are the shards' Services) and for local serving, which passes its own endpoints.
import type { ModelConfig } from '../../contracts/model-config.js';
import { withEndpoints, type Endpoint, type ServingPlan, type ShardDocument } from '../../contracts/plan.js';
import type { ResolvedRecModelSpec } from '../api/v1alpha1/index.js';
import { planDocument } from '../planner/format.js';
import type { Plan } from '../planner/plan.js';
import type { Owner } from './meta.js';
import { mainName, shardName } from './names.js';

export const PLAN_KEY = 'plan.json';
export const MODEL_KEY = 'model.json';

/** plan.json: the plan document with where the main and each shard answer. */
export function servingPlan(model: string, plan: Plan, main: { service?: string }, shard: (s: ShardDocument) => Endpoint): ServingPlan {
  return withEndpoints(planDocument(model, plan), main, shard);
}

/** plan.json in a cluster: each shard answers at its Service. */
export function clusterServingPlan(owner: Owner, spec: ResolvedRecModelSpec, plan: Plan): ServingPlan {
  const port = spec.serving.port;
  return servingPlan(owner.name, plan, { service: mainName(owner.name) }, (s) => ({
    service: shardName(owner.name, s.index),
    endpoint: `http://${shardName(owner.name, s.index)}.${owner.namespace}.svc:${port}`,
  }));
}

/** model.json: the spec's model and serving sections, and the artifact (or the one given, for local serving). */
export function modelConfig(spec: Pick<ResolvedRecModelSpec, 'model' | 'artifact' | 'serving'>, artifactUri?: string): ModelConfig {
  return { model: spec.model, artifact: artifactUri !== undefined ? { uri: artifactUri } : (spec.artifact ?? {}), serving: spec.serving };
}
