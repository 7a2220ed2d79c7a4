// Observing an HPA or KEDA actuator: each component's HorizontalPodAutoscaler (the operator's own under HPA,
// the one KEDA makes for a ScaledObject under KEDA) read into the view status is built from. Pure.
import type { V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { Role } from '../../contracts/shard-server-args.js';
import { parseDecimal } from '../../lib/quantity.js';
import type { EffectivePolicy } from '../autoscaling/policy.js';
import type { ExternalView } from '../autoscaling/state.js';
import { hpaNameFor } from '../builders/names.js';

const iso = (t: unknown) => (t instanceof Date ? t.toISOString() : typeof t === 'string' ? t : undefined);

export function externalViews(p: EffectivePolicy, deployments: { name: string; role: Role }[], hpas: V2HorizontalPodAutoscaler[]): ExternalView[] {
  return deployments.map(({ name: deployment, role }) => {
    const name = hpaNameFor(p.actuator, deployment);
    const hpa = hpas.find((h) => h.metadata?.name === name && h.spec?.scaleTargetRef?.name === deployment);
    if (!hpa) return { deployment, role, hpa: name, found: false, conditions: [] };
    const current = hpa.status?.currentMetrics?.find((m) => m.type === 'External')?.external?.current?.value;
    let latencyMs: number | undefined;
    try {
      latencyMs = current === undefined ? undefined : parseDecimal(current) * 1000;
    } catch {
      latencyMs = undefined; // a value we cannot read is left out, not guessed
    }
    const last = iso(hpa.status?.lastScaleTime);
    return {
      deployment,
      role,
      hpa: name,
      found: true,
      ...(latencyMs !== undefined ? { latencyMs } : {}),
      ...(hpa.status?.desiredReplicas !== undefined ? { desired: hpa.status.desiredReplicas } : {}),
      ...(last ? { lastScaleTime: last } : {}),
      conditions: (hpa.status?.conditions ?? []).map((c) => ({
        type: c.type,
        status: c.status,
        ...(c.reason ? { reason: c.reason } : {}),
        ...(c.message ? { message: c.message } : {}),
      })),
    };
  });
}
