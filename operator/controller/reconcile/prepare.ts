// Prepare: what a model's spec alone decides (the defaulted spec, the placement checks, the plan and the serving
// version's children), made once per spec generation and kept: an idle model is not re-planned or re-built on
// every resync, and a large plan is made off the event loop (planner/offload.ts).
import { nextTurn } from '../../../lib/clock.js';
import { formatBytes } from '../../../lib/quantity.js';
import { plural } from '../../../lib/text.js';
import { Reason } from '../../api/reasons.js';
import { formatFieldErrors, resolveSpec } from '../../api/v1alpha1/index.js';
import type { ResolvedRecModelSpec, RecModel } from '../../api/v1alpha1/index.js';
import { buildVersion, buildVersionInTurns, configMapBytes, CONFIGMAP_MAX_BYTES, type VersionChildren } from '../../builders/children.js';
import type { BuilderConfig } from '../../builders/config.js';
import type { Owner } from '../../builders/meta.js';
import { placementConflicts } from '../../builders/placement.js';
import type { Planner } from '../../planner/offload.js';
import { DEFAULT_PLAN_LIMITS, planModel, type Plan, type PlanResult } from '../../planner/plan.js';
import type { PlanOutcome } from '../../status/status.js';

/** The spec's verdict: a failure (for the Planned condition), or the plan and the children of its version. */
export type Prepared =
  | { ok: true; spec: ResolvedRecModelSpec; outcome: Extract<PlanOutcome, { ok: true }>; target: VersionChildren }
  | { ok: false; spec?: ResolvedRecModelSpec; outcome: Extract<PlanOutcome, { ok: false }> };

const ownerOf = (rm: RecModel): Owner => ({ name: rm.metadata.name, namespace: rm.metadata.namespace!, uid: rm.metadata.uid! });

/** From a plan and its version's children to the verdict, pure: refused when the plan cannot be stored. */
function verdict(spec: ResolvedRecModelSpec, plan: Plan, target: VersionChildren): Prepared {
  const bytes = configMapBytes(target.configMap);
  if (bytes > CONFIGMAP_MAX_BYTES) {
    const message =
      `the plan of ${plural(plan.tables.length, 'table')} on ${plural(plan.shards.length, 'shard')} is ${formatBytes(bytes)} as its ConfigMap, ` +
      `but a ConfigMap holds at most ${formatBytes(CONFIGMAP_MAX_BYTES)}; use fewer tables (or fewer, larger shards)`;
    return { ok: false, spec, outcome: { ok: false, reason: Reason.PlanTooLarge, message } };
  }
  return { ok: true, spec, outcome: { ok: true, plan }, target };
}

/** The defaulted spec, or why the spec is refused before planning (schema, CEL, placement). */
function resolve(rm: RecModel, cfg: BuilderConfig): { ok: true; spec: ResolvedRecModelSpec } | { ok: false; prepared: Prepared } {
  const resolved = resolveSpec(rm.spec);
  if (!resolved.ok)
    return { ok: false, prepared: { ok: false, outcome: { ok: false, reason: Reason.InvalidSpec, message: formatFieldErrors(resolved.errors) } } };
  const conflicts = placementConflicts(resolved.spec.placement, cfg);
  if (conflicts.length) {
    return { ok: false, prepared: { ok: false, spec: resolved.spec, outcome: { ok: false, reason: Reason.PlacementConflict, message: conflicts.join('; ') } } };
  }
  return { ok: true, spec: resolved.spec };
}

const refused = (spec: ResolvedRecModelSpec, planned: Extract<PlanResult, { ok: false }>): Prepared => ({
  ok: false,
  spec,
  outcome: { ok: false, reason: planned.error.reason, message: planned.error.message },
});

/** The whole step inline: for tests and the CLI, where nothing else waits on the loop. */
export function prepareNow(rm: RecModel, cfg: BuilderConfig, limits = DEFAULT_PLAN_LIMITS): Prepared {
  const r = resolve(rm, cfg);
  if (!r.ok) return r.prepared;
  const planned = planModel(r.spec, limits);
  return planned.ok ? verdict(r.spec, planned.plan, buildVersion(ownerOf(rm), r.spec, planned.plan, cfg)) : refused(r.spec, planned);
}

/** One verdict per model, made again only when its uid or generation changes. */
export class Preparer {
  private readonly cache = new Map<string, { uid: string; generation: number; prepared: Promise<Prepared> }>();

  constructor(
    private readonly planner: Pick<Planner, 'plan'>,
    private readonly cfg: BuilderConfig,
  ) {}

  prepare(rm: RecModel): Promise<Prepared> {
    const key = `${rm.metadata.namespace}/${rm.metadata.name}`;
    const uid = rm.metadata.uid ?? '';
    const generation = rm.metadata.generation ?? 0;
    const hit = this.cache.get(key);
    if (hit && hit.uid === uid && hit.generation === generation) return hit.prepared;
    const prepared = this.make(rm);
    this.cache.set(key, { uid, generation, prepared });
    // a thread that failed is asked again next time
    prepared.catch(() => this.cache.get(key)?.prepared === prepared && this.cache.delete(key));
    return prepared;
  }

  forget(namespace: string, name: string): void {
    this.cache.delete(`${namespace}/${name}`);
  }

  private async make(rm: RecModel): Promise<Prepared> {
    const r = resolve(rm, this.cfg);
    if (!r.ok) return r.prepared;
    const planned = await this.planner.plan(r.spec);
    if (!planned.ok) return refused(r.spec, planned);
    // the children of a thousand shards are built a slice per turn of the loop
    return verdict(r.spec, planned.plan, await buildVersionInTurns(ownerOf(rm), r.spec, planned.plan, this.cfg, nextTurn));
  }
}
