// The open-loop load generator: arrivals follow a Poisson process at the offered rate and never wait for
// answers. Latency is measured from each query's scheduled arrival, not from when it was sent, so a slow
// server cannot hide its queueing (no coordinated omission).
import { build, type Histogram } from 'hdr-histogram-js';
import { DEGRADED_HEADER, TIMEOUT_HEADER } from '../contracts/endpoints.js';
import { PREDICT_CONTENT_TYPE } from '../contracts/wire/predict.js';
import { uniform } from './distributions.js';
import type { Query } from './workload.js';

export interface LoadOptions {
  predictUrl: string;
  qps: number;
  durationMs: number;
  timeoutMs: number;
  /** Each query's budget, sent as TIMEOUT_HEADER (the main's default when absent). */
  deadlineMs?: number;
  queries: Query[];
  seed: number;
  /** Also report latency at this percentile as latencyMs.tail (default 99). */
  tailPercentile?: number;
  /** Called about once a second with the running numbers. */
  onTick?: (t: Tick) => void;
  /** Called with every answer (or failure) as it comes: what `recshard load --record` writes. */
  onAnswer?: (a: Answer) => void;
  /** Ends the run early (no new arrivals; answers still in flight are waited for). */
  signal?: AbortSignal;
}

/** One query's outcome: which of the workload's queries, when it was due, and what came back. */
export interface Answer {
  /** Index into the workload's queries. */
  query: number;
  /** When it was due, in ms since the run began. */
  atMs: number;
  /** When it was due, as epoch ms (the wall clock). */
  dueAt: number;
  latencyMs: number;
  /** The HTTP status; 0 for a network error, -1 for a client timeout. */
  status: number;
  /** The answer's body (binary scores when status is 200). */
  body?: Uint8Array;
  /** A 200 the main marked degraded (zero embeddings for a shard it could not reach). */
  degraded?: boolean;
  error?: string;
}

export interface Tick {
  elapsedMs: number;
  sent: number;
  done: number;
  errors: number;
  p99Ms: number;
}

export interface LoadResult {
  offeredQps: number;
  achievedQps: number;
  durationS: number;
  sent: number;
  ok: number;
  errors: number;
  timeouts: number;
  errorsByStatus: Record<string, number>;
  latencyMs: { p50: number; p95: number; p99: number; p999: number; max: number; mean: number; tail: number; tailPercentile: number };
  meanQuerySize: number;
  samplesPerSecond: number;
}

const newHistogram = (): Histogram => build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
const ms = (us: number) => Math.round(us) / 1000;

/** What the answers said so far: counts by outcome, and latencies from each query's scheduled arrival. */
class Outcomes {
  readonly hist = newHistogram();
  readonly errorsByStatus: Record<string, number> = {};
  ok = 0;
  errors = 0;
  timeouts = 0;
  samples = 0;
  private readonly inflight = new Set<Promise<void>>();

  constructor(private readonly o: LoadOptions) {}

  /** Sends a query without waiting for it; `intended` is when it was due (performance.now()). */
  fire(q: Query, intended: number, index: number, start: number): void {
    const p = this.send(q, intended, index, start);
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private async send(q: Query, intended: number, index: number, start: number): Promise<void> {
    const answer = (status: number, body?: Uint8Array, error?: string, degraded = false) =>
      this.o.onAnswer?.({
        query: index,
        atMs: Math.round((intended - start) * 1000) / 1000,
        dueAt: Math.round(Date.now() - (performance.now() - intended)),
        latencyMs: Math.round((performance.now() - intended) * 1000) / 1000,
        status,
        ...(body ? { body } : {}),
        ...(degraded ? { degraded } : {}),
        ...(error ? { error } : {}),
      });
    try {
      const res = await fetch(this.o.predictUrl, {
        method: 'POST',
        headers: { 'content-type': PREDICT_CONTENT_TYPE, ...(this.o.deadlineMs !== undefined ? { [TIMEOUT_HEADER]: String(this.o.deadlineMs) } : {}) },
        body: q.body as unknown as BodyInit,
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
      const body = new Uint8Array(await res.arrayBuffer());
      answer(res.status, body, undefined, res.headers.has(DEGRADED_HEADER));
      if (res.ok) {
        this.ok++;
        this.samples += q.size;
        this.hist.recordValue(Math.max(1, Math.round((performance.now() - intended) * 1000)));
      } else {
        this.errors++;
        this.errorsByStatus[res.status] = (this.errorsByStatus[res.status] ?? 0) + 1;
      }
    } catch (e) {
      const err = e as Error & { cause?: Error };
      answer(err.name === 'TimeoutError' ? -1 : 0, undefined, String(err.cause?.message ?? err.message));
      if ((e as Error).name === 'TimeoutError') this.timeouts++;
      else {
        this.errors++;
        this.errorsByStatus.network = (this.errorsByStatus.network ?? 0) + 1;
      }
    }
  }

  settled(): Promise<unknown> {
    return Promise.all(this.inflight);
  }

  tick(elapsedMs: number, sent: number): Tick {
    return { elapsedMs, sent, done: this.ok + this.errors + this.timeouts, errors: this.errors + this.timeouts, p99Ms: ms(this.hist.getValueAtPercentile(99)) };
  }
}

/** `sendingS`: how long arrivals went out (the duration, or less when the run was ended early). */
function result(o: LoadOptions, r: Outcomes, sent: number, sizeSum: number, elapsedS: number, sendingS: number): LoadResult {
  const at = (p: number) => ms(r.hist.getValueAtPercentile(p));
  return {
    offeredQps: o.qps,
    achievedQps: Math.round((r.ok / sendingS) * 100) / 100,
    durationS: Math.round(elapsedS * 100) / 100,
    sent,
    ok: r.ok,
    errors: r.errors,
    timeouts: r.timeouts,
    errorsByStatus: r.errorsByStatus,
    latencyMs: {
      p50: at(50),
      p95: at(95),
      p99: at(99),
      p999: at(99.9),
      max: ms(r.hist.maxValue),
      mean: ms(r.hist.mean),
      tail: at(o.tailPercentile ?? 99),
      tailPercentile: o.tailPercentile ?? 99,
    },
    meanQuerySize: sent ? Math.round((sizeSum / sent) * 10) / 10 : 0,
    samplesPerSecond: Math.round(r.samples / sendingS),
  };
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  if (!(o.qps > 0)) throw new Error('qps must be positive');
  const u = uniform(o.seed + 17);
  const r = new Outcomes(o);
  let sent = 0;
  const start = performance.now();
  const end = start + o.durationMs;
  let next = start;
  let lastTick = start;
  let sizeSum = 0;
  while (next < end && !o.signal?.aborted) {
    const now = performance.now();
    if (now >= next) {
      // every arrival that is due goes out now, stamped with the time it was due
      const q = o.queries[sent % o.queries.length]!;
      sizeSum += q.size;
      r.fire(q, next, sent % o.queries.length, start);
      sent++;
      if (sent % 64 === 0) await new Promise((res) => setImmediate(res)); // let answers in while catching up
      next += (-Math.log(1 - u()) / o.qps) * 1000;
      continue;
    }
    if (o.onTick && now - lastTick >= 1000) {
      lastTick = now;
      o.onTick(r.tick(now - start, sent));
    }
    await new Promise((res) => setTimeout(res, Math.min(next - now, 20)));
  }
  const sendingS = o.signal?.aborted ? Math.max(0.001, (performance.now() - start) / 1000) : o.durationMs / 1000;
  await r.settled();
  const elapsed = (performance.now() - start) / 1000;
  o.onTick?.(r.tick(elapsed * 1000, sent));
  return result(o, r, sent, sizeSum, elapsed, sendingS);
}
