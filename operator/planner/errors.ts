// The planner's one error type: a constant reason the operator puts in the Planned condition, and a message
// that names the table, the sizes and the capacity involved.
import type { Reason } from '../api/reasons.js';

export type PlanErrorReason = typeof Reason.InvalidModel | typeof Reason.Infeasible | typeof Reason.PlanTooLarge;

export class PlanError extends Error {
  constructor(
    readonly reason: PlanErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'PlanError';
  }
}
