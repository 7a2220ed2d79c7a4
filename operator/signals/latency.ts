// Where the autoscaler reads latency: per pod, the rates of the buckets of the shard-server's
// recshard_request_duration_seconds histogram over a window. Prometheus' HTTP API is the default source; a
// direct scrape of the pods' /metrics is the fallback for clusters without Prometheus. Per-pod rates let the
// autoscaler leave out pods still warming up before it merges them and takes the percentile, the same
// interpolation PromQL's histogram_quantile does.
import { Label, Metric, type Stage } from '../../contracts/metrics.js';
import type { Role } from '../../contracts/shard-server-args.js';

/** Cumulative bucket rates of one pod: `le` upper bounds ascending (the last is +Inf), requests per second. */
export interface PodRates {
  le: number[];
  rate: number[];
}

export interface LatencyQuery {
  namespace: string;
  model: string;
  role: Role;
  /** end_to_end, or shard_call (the main's calls to each shard, by `shard` label). */
  stage: Extract<Stage, 'end_to_end' | 'shard_call'>;
  windowMs: number;
  /** The pods to read, with where to scrape them. */
  pods: { name: string; ip?: string }[];
  port: number;
}

/** Per pod (and, for shard_call, per shard: "pod/shard") bucket rates; undefined when the source cannot answer. */
export type LatencyReading = Map<string, PodRates>;

export interface LatencySource {
  readonly name: string;
  read(q: LatencyQuery): Promise<LatencyReading | undefined>;
}

const METRIC = Metric.requestDuration;
const L = Label;
const FORGET_MS = 15 * 60_000;

/** Sums the bucket rates of several pods (all read with the same bucket bounds). */
export function mergeRates(parts: PodRates[]): PodRates | undefined {
  const first = parts[0];
  if (!first) return undefined;
  const rate = first.rate.map((_, i) => parts.reduce((s, p) => s + (p.rate[i] ?? 0), 0));
  return { le: first.le, rate };
}

/** Requests per second: the +Inf bucket. */
export const totalRate = (r: PodRates) => r.rate[r.rate.length - 1] ?? 0;

/**
 * The q-quantile (0..1) in ms, as histogram_quantile computes it: linear within the bucket the rank falls in;
 * the lower bound of +Inf's bucket when it falls there. Undefined without requests.
 */
export function quantileMs(r: PodRates, q: number): number | undefined {
  const total = totalRate(r);
  if (!(total > 0)) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (let i = 0; i < r.le.length; i++) {
    const le = r.le[i]!;
    const count = r.rate[i]!;
    if (count >= rank) {
      if (!Number.isFinite(le)) return prevLe * 1000;
      const inBucket = count - prevCount;
      const f = inBucket > 0 ? (rank - prevCount) / inBucket : 1;
      return (prevLe + (le - prevLe) * f) * 1000;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe * 1000;
}

/** Prometheus' HTTP API: one instant query per read, `sum by (pod, le)` (and shard, for shard calls). */
export class PrometheusSource implements LatencySource {
  readonly name = 'prometheus';
  constructor(
    private readonly url: string,
    private readonly timeoutMs = 5_000,
  ) {}

  static promql(q: LatencyQuery): string {
    const by = q.stage === 'shard_call' ? `${L.pod}, ${L.shard}, le` : `${L.pod}, le`;
    const pods = q.pods.map((p) => p.name.replace(/[.*+?^${}()|[\]\\]/g, '\\\\$&')).join('|');
    const sel = `${L.namespace}="${q.namespace}",${L.model}="${q.model}",${L.role}="${q.role}",${L.stage}="${q.stage}",${L.pod}=~"${pods}"`;
    return `sum by (${by}) (rate(${METRIC}_bucket{${sel}}[${Math.max(1, Math.round(q.windowMs / 1000))}s]))`;
  }

  async read(q: LatencyQuery): Promise<LatencyReading | undefined> {
    if (!q.pods.length) return new Map();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.timeoutMs);
    try {
      const res = await fetch(`${this.url.replace(/\/$/, '')}/api/v1/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ query: PrometheusSource.promql(q) }),
        signal: ctl.signal,
      });
      if (!res.ok) throw new Error(`Prometheus answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
      const body = (await res.json()) as {
        status: string;
        data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      if (body.status !== 'success' || body.data?.resultType !== 'vector') throw new Error(`unexpected Prometheus answer: ${body.status}`);
      const series = body.data.result.map((s) => ({
        key: q.stage === 'shard_call' ? `${s.metric[L.pod]}/${s.metric[L.shard]}` : s.metric[L.pod]!,
        le: parseLe(s.metric.le!),
        value: Number(s.value[1]),
      }));
      // Prometheus has no data for the pods (never scraped, or stale): the signal is missing, not zero
      if (!series.length) return undefined;
      return groupRates(series);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Reads each pod's /metrics directly and differences cumulative buckets against the oldest scrape still within
 * the window; the first read of a pod has nothing to difference against, so it is missing until the next.
 */
export class ScrapeSource implements LatencySource {
  readonly name = 'scrape';
  private readonly history = new Map<string, { atMs: number; series: Map<string, { le: number; count: number }[]> }[]>();
  constructor(
    private readonly now: () => number = Date.now,
    private readonly timeoutMs = 3_000,
  ) {}

  async read(q: LatencyQuery): Promise<LatencyReading | undefined> {
    const out: LatencyReading = new Map();
    let any = false;
    await Promise.all(
      q.pods.map(async (pod) => {
        if (!pod.ip) return;
        const text = await this.fetchText(`http://${pod.ip.includes(':') ? `[${pod.ip}]` : pod.ip}:${q.port}/metrics`);
        if (text === undefined) return;
        const now = this.now();
        const series = parseBuckets(text, q);
        const key = `${q.namespace}/${pod.name}/${q.stage}`;
        const past = (this.history.get(key) ?? []).filter((h) => now - h.atMs <= q.windowMs * 2);
        const base = past.find((h) => now - h.atMs <= q.windowMs) ?? past.at(-1);
        past.push({ atMs: now, series });
        this.history.set(key, past);
        if (!base || now <= base.atMs) return;
        const dt = (now - base.atMs) / 1000;
        for (const [sub, buckets] of series) {
          const before = base.series.get(sub);
          if (!before) continue;
          any = true;
          // a restarted pod's counters start again from zero: count from zero then
          const reset = buckets.some((b, i) => b.count < (before[i]?.count ?? 0));
          out.set(sub === '' ? pod.name : `${pod.name}/${sub}`, {
            le: buckets.map((b) => b.le),
            rate: buckets.map((b, i) => Math.max(0, b.count - (reset ? 0 : (before[i]?.count ?? 0))) / dt),
          });
        }
      }),
    );
    // pods that are gone stop being read: forget them once their newest scrape is out of any window
    const now = this.now();
    for (const [key, past] of this.history) if (now - (past.at(-1)?.atMs ?? 0) > FORGET_MS) this.history.delete(key);
    return any || !q.pods.length ? out : undefined;
  }

  private async fetchText(url: string): Promise<string | undefined> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.timeoutMs);
    try {
      const res = await fetch(url, { signal: ctl.signal });
      return res.ok ? await res.text() : undefined;
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}

const parseLe = (le: string) => (le === '+Inf' ? Infinity : Number(le));

function groupRates(series: { key: string; le: number; value: number }[]): LatencyReading {
  const by = new Map<string, { le: number; value: number }[]>();
  for (const s of series) {
    const list = by.get(s.key) ?? [];
    list.push(s);
    by.set(s.key, list);
  }
  const out: LatencyReading = new Map();
  for (const [key, list] of by) {
    list.sort((a, b) => a.le - b.le);
    out.set(key, { le: list.map((s) => s.le), rate: list.map((s) => (Number.isFinite(s.value) ? s.value : 0)) });
  }
  return out;
}

/** Cumulative bucket counts of the query's model, role and stage in a Prometheus text exposition, by shard. */
export function parseBuckets(text: string, q: Pick<LatencyQuery, 'model' | 'role' | 'stage'>): Map<string, { le: number; count: number }[]> {
  const out = new Map<string, { le: number; count: number }[]>();
  const prefix = `${METRIC}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const close = line.lastIndexOf('}');
    const labels = Object.fromEntries([...line.slice(prefix.length, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (labels[L.model] !== q.model || labels[L.role] !== q.role || labels[L.stage] !== q.stage) continue;
    const sub = q.stage === 'shard_call' ? (labels[L.shard] ?? '') : '';
    const list = out.get(sub) ?? [];
    list.push({
      le: parseLe(labels.le!),
      count: Number(
        line
          .slice(close + 1)
          .trim()
          .split(/\s+/)[0],
      ),
    });
    out.set(sub, list);
  }
  for (const list of out.values()) list.sort((a, b) => a.le - b.le);
  return out;
}
