// What the operator reads from the data plane: the main's scheduler state (DeepRecSched's current batch size and
// accelerator threshold), from GET /v1/models/NAME on the main's Service. The URL comes from a template so an
// operator outside the cluster network (tests, port-forwards) can be pointed at reachable mains.
import type { V1Deployment } from '@kubernetes/client-node';
import { modelPath } from '../../contracts/endpoints.js';
import type { ModelInfo, SchedulerInfo } from '../../contracts/model-info.js';

/** What status.scheduler keeps of the main's scheduler. */
export type SchedulerReading = Pick<SchedulerInfo, 'mode' | 'batchSize' | 'acceleratorThreshold' | 'windowLatencyMs'>;

export interface MainTarget {
  /** RecModel name. */
  name: string;
  namespace: string;
  /** The main's Service name. */
  service: string;
  port: number;
}

export interface ServingProbe {
  /** The main's scheduler, or undefined when it cannot be read (not running, unreachable, an older server). */
  scheduler(t: MainTarget): Promise<SchedulerReading | undefined>;
}

export const DEFAULT_MAIN_URL_TEMPLATE = 'http://{service}.{namespace}.svc:{port}';

/** Expands {name}, {namespace}, {service} and {port}. */
export function mainUrl(template: string, t: MainTarget): string {
  return template.replace(/\{(name|namespace|service|port)\}/g, (_m, k: keyof MainTarget) => String(t[k]));
}

export class HttpServingProbe implements ServingProbe {
  constructor(
    private readonly template = DEFAULT_MAIN_URL_TEMPLATE,
    private readonly timeoutMs = 1000,
  ) {}

  async scheduler(t: MainTarget): Promise<SchedulerReading | undefined> {
    try {
      const res = await fetch(`${mainUrl(this.template, t)}${modelPath(t.name)}`, { signal: AbortSignal.timeout(this.timeoutMs) });
      if (!res.ok) return undefined;
      const s = ((await res.json()) as Partial<ModelInfo>).scheduler;
      return s && typeof s.batchSize === 'number' && typeof s.mode === 'string' ? s : undefined;
    } catch {
      return undefined;
    }
  }
}

/** A main worth asking: at least one replica available. */
export function mainServing(d: V1Deployment | undefined): boolean {
  return (d?.status?.availableReplicas ?? 0) > 0;
}
