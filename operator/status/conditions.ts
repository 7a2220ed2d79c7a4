// Standard conditions (types and reasons are in ../api/reasons.ts): a setter that keeps lastTransitionTime when
// the status of a condition does not change.
import { metaTime } from '../../lib/clock.js';
import type { ConditionReason, ConditionTypeName } from '../api/reasons.js';
import type { Condition } from '../api/v1alpha1/index.js';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ConditionInput {
  type: ConditionTypeName;
  status: ConditionStatus;
  /** A constant of ../api/reasons.ts. */
  reason: ConditionReason;
  message: string;
}

/**
 * Merges new conditions into the previous list: same type and status keeps the old lastTransitionTime; every
 * condition carries the generation it was computed for. Output order follows `next`.
 */
export function mergeConditions(previous: Condition[] | undefined, next: ConditionInput[], generation: number, now: Date): Condition[] {
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    const lastTransitionTime = old && old.status === c.status ? old.lastTransitionTime : metaTime(now);
    return { ...c, observedGeneration: generation, lastTransitionTime };
  });
}

export function findCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
