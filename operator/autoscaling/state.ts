// What one reconcile knows about a model's autoscaling: the policy in force (or why there is none), and under it
// either the HPAs' view (actuator HPA or KEDA) or the operator's own latest evaluation. Status and the operator's
// metrics are built from it.
import type { Role } from '../../contracts/shard-server-args.js';
import type { PolicyRefusalReason } from '../api/reasons.js';
import type { Evaluation } from './evaluate.js';
import type { EffectivePolicy } from './policy.js';

/** One component as the HPA that scales it reports it (actuator HPA or KEDA). */
export interface ExternalView {
  deployment: string;
  role: Role;
  /** The HPA's name; found: false while it does not exist. */
  hpa: string;
  found: boolean;
  latencyMs?: number;
  desired?: number;
  lastScaleTime?: string;
  conditions: { type: string; status: string; reason?: string; message?: string }[];
}

/** What the reconcile knows about autoscaling this time. */
export type AutoscalingInput =
  | { state: 'refused'; policyName: string; reason: PolicyRefusalReason; message: string }
  /** The policy's actuator is HPA or KEDA: status mirrors the HPAs. */
  | { state: 'external'; policy: EffectivePolicy; views: ExternalView[] }
  /**
   * Under the operator's law: the latest evaluation (absent before the first) and when it ran, and the last
   * scaling of each component, all from the autoscaler's memory, so a reconcile that reads a stale cached
   * status does not drop them.
   */
  | { state: 'active'; policy: EffectivePolicy; evaluation?: Evaluation; evaluatedAt?: string; sourceError?: string; lastScales: Map<string, LastScale> };

export interface LastScale {
  time: string;
  reason: string;
}
