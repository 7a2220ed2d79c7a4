// Every condition type, condition reason and event reason the operator writes, in one place: they are API (users
// and alerts match on them), so each is a constant, CamelCase, and never changes meaning.

export const ConditionType = {
  Ready: 'Ready',
  Planned: 'Planned',
  Available: 'Available',
  Progressing: 'Progressing',
  Degraded: 'Degraded',
  // under spec.autoscaling
  ScalingActive: 'ScalingActive',
  ScalingLimited: 'ScalingLimited',
  MetricsUnavailable: 'MetricsUnavailable',
} as const;

export const Reason = {
  // Planned
  PlanComputed: 'PlanComputed',
  InvalidSpec: 'InvalidSpec',
  Infeasible: 'Infeasible',
  InvalidModel: 'InvalidModel',
  /** More shards, children or plan bytes than one model may have (operator limits, the ConfigMap size). */
  PlanTooLarge: 'PlanTooLarge',
  /** spec.placement's nodeSelector, affinity or tolerations contradict the device placement or the operator's rules. */
  PlacementConflict: 'PlacementConflict',
  // Available / Progressing
  AllComponentsAvailable: 'AllComponentsAvailable',
  ComponentsUnavailable: 'ComponentsUnavailable',
  RollingOut: 'RollingOut',
  RolloutComplete: 'RolloutComplete',
  // Progressing, while a new serving version rolls out (operator/rollout/rollout.ts; docs/rollouts.md)
  /** The new version's shards start beside the running ones; the main stays on its version. */
  StartingShards: 'StartingShards',
  /** Every new shard is available; the main rolls to the new version. */
  SwitchingMain: 'SwitchingMain',
  /** The main is on the new version; the old shards outlive the last old main pod by the drain period. */
  Draining: 'Draining',
  /** The new shards were not available within spec.rollout.progressDeadline; the model serves the old version. */
  RolloutStuck: 'RolloutStuck',
  /** The new shards would add more memory than spec.rollout.maxSurgeMemory; the rollout is not started. */
  SurgeExceedsBudget: 'SurgeExceedsBudget',
  /** An earlier switch of the main is still in flight: one extra version's shards at a time. */
  WaitingForSwitch: 'WaitingForSwitch',
  // Degraded
  AsExpected: 'AsExpected',
  ResourceConflict: 'ResourceConflict',
  ApplyFailed: 'ApplyFailed',
  /** A component's container was killed for going over its memory limit (the message names the component). */
  OOMKilled: 'OOMKilled',
  /** A component's container keeps exiting; the kubelet waits longer before each restart. */
  CrashLoopBackOff: 'CrashLoopBackOff',
  /** A component's container exited and is not ready again yet. */
  ContainerRestarting: 'ContainerRestarting',
  /** The kubelet cannot pull a component's image. */
  ImagePullFailed: 'ImagePullFailed',
  /** The kubelet cannot create a component's container (a missing ConfigMap or volume, a bad command). */
  ContainerCreateFailed: 'ContainerCreateFailed',
  /** The scheduler finds no node for a component's pod. */
  Unschedulable: 'Unschedulable',
  /** A component's pod has been Pending longer than PENDING_TOO_LONG_MS with no other reason given. */
  PodPending: 'PodPending',
  /** A component's Deployment made no progress within its progressDeadlineSeconds (Progressing False too). */
  ProgressDeadlineExceeded: 'ProgressDeadlineExceeded',
  // Ready
  Ready: 'Ready',
  NotPlanned: 'NotPlanned',
  NotAvailable: 'NotAvailable',
  Progressing: 'Progressing',
  Degraded: 'Degraded',
  // ScalingActive
  ScalingOnLatency: 'ScalingOnLatency',
  PolicyNotFound: 'PolicyNotFound',
  PolicyInvalid: 'PolicyInvalid',
  OverrideNotAllowed: 'OverrideNotAllowed',
  /** The policy's HPA or KEDA actuator cannot work here (KEDA not served, no Prometheus URL for its trigger). */
  ActuatorUnavailable: 'ActuatorUnavailable',
  /** HorizontalPodAutoscalers (the operator's, or KEDA's) scale the components. */
  ScalingByHPA: 'ScalingByHPA',
  /** An HPA the actuator should have made is not there yet. */
  AutoscalerPending: 'AutoscalerPending',
  // ScalingLimited
  WithinLimits: 'WithinLimits',
  RateLimited: 'RateLimited',
  AtBounds: 'AtBounds',
  // MetricsUnavailable
  MetricsAvailable: 'MetricsAvailable',
  NoSamples: 'NoSamples',
  SourceFailed: 'SourceFailed',
} as const;

export type ConditionTypeName = (typeof ConditionType)[keyof typeof ConditionType];
export type ConditionReason = (typeof Reason)[keyof typeof Reason];

/** Why a component's pods are not running as they should (the Degraded condition's reason), worst first. */
export type PodProblemReason =
  | typeof Reason.OOMKilled
  | typeof Reason.CrashLoopBackOff
  | typeof Reason.ImagePullFailed
  | typeof Reason.ContainerCreateFailed
  | typeof Reason.Unschedulable
  | typeof Reason.PodPending
  | typeof Reason.ContainerRestarting;

/** Why a plan could not be made (the Planned condition's reason when False). */
export type PlanFailureReason =
  typeof Reason.InvalidSpec | typeof Reason.Infeasible | typeof Reason.InvalidModel | typeof Reason.PlanTooLarge | typeof Reason.PlacementConflict;
/** Why a model's autoscaling policy is not in force (the ScalingActive condition's reason when False). */
export type PolicyRefusalReason =
  typeof Reason.PolicyNotFound | typeof Reason.PolicyInvalid | typeof Reason.OverrideNotAllowed | typeof Reason.ActuatorUnavailable;

/** Why the control law recommends what it does for a component: in lastScaleReason, Events and metric labels. */
export const ScaleReason = {
  LatencyAboveTarget: 'LatencyAboveTarget',
  LatencyBelowTarget: 'LatencyBelowTarget',
  WithinTolerance: 'WithinTolerance',
  WaitingForWarmup: 'WaitingForWarmup',
  OtherComponentCritical: 'OtherComponentCritical',
  MetricsUnavailable: 'MetricsUnavailable',
  OutsideBounds: 'OutsideBounds',
} as const;
export type ScaleReason = (typeof ScaleReason)[keyof typeof ScaleReason];

export const EventReason = {
  PlanChanged: 'PlanChanged',
  InvalidSpec: Reason.InvalidSpec,
  Infeasible: Reason.Infeasible,
  InvalidModel: Reason.InvalidModel,
  PlanTooLarge: Reason.PlanTooLarge,
  PlacementConflict: Reason.PlacementConflict,
  ResourceConflict: Reason.ResourceConflict,
  ApplyFailed: Reason.ApplyFailed,
  // a component's pods, as the Degraded condition says (one Event per new message)
  OOMKilled: Reason.OOMKilled,
  CrashLoopBackOff: Reason.CrashLoopBackOff,
  ContainerRestarting: Reason.ContainerRestarting,
  ImagePullFailed: Reason.ImagePullFailed,
  ContainerCreateFailed: Reason.ContainerCreateFailed,
  Unschedulable: Reason.Unschedulable,
  PodPending: Reason.PodPending,
  ProgressDeadlineExceeded: Reason.ProgressDeadlineExceeded,
  DeletedStaleShard: 'DeletedStaleShard',
  /** A new serving version's shards are being started beside the running ones. */
  RolloutStarted: 'RolloutStarted',
  /** The main Deployment was moved to the new version (its shards all available). */
  MainSwitched: 'MainSwitched',
  /** A rollout gave way to a newer spec before the main switched; its shards were deleted. */
  RolloutSuperseded: 'RolloutSuperseded',
  RolloutStuck: 'RolloutStuck',
  SurgeExceedsBudget: 'SurgeExceedsBudget',
  /** The old version's last objects were deleted. */
  RolloutComplete: 'RolloutComplete',
  /** An HPA or ScaledObject the policy's actuator no longer calls for. */
  DeletedAutoscaler: 'DeletedAutoscaler',
  /** The autoscaler read no latency for the main; it holds replicas (or adds pods, as the policy says). */
  MetricsUnavailable: 'MetricsUnavailable',
  ScaledUp: 'ScaledUp',
  ScaledDown: 'ScaledDown',
  /** A write to the scale subresource failed. */
  ScaleFailed: 'ScaleFailed',
} as const;
export type EventReason = (typeof EventReason)[keyof typeof EventReason];
