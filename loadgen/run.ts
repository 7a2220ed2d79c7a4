// The open-loop load generator: arrivals follow a Poisson process at the offered rate and never wait for
// answers. Latency is measured from each query's scheduled arrival, not from when it was sent, so a slow
// server cannot hide its queueing (no coordinated omission).
import { build, type Histogram } from 'hdr-histogram-js';
import { PREDICT_CONTENT_TYPE } from '../contracts/wire/predict.js';
import { uniform } from './distributions.js';
import type { Query } from './workload.js';

export interface LoadOptions {
  predictUrl: string;
  qps: number;
  durationMs: number;
  timeoutMs: number;
  queries: Query[];
  seed: number;
  /** Also report latency at this percentile as latencyMs.tail (default 99). */
  tailPercentile?: number;
  /** Called about once a second with the running numbers. */
  onTick?: (t: Tick) => void;
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

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  if (!(o.qps > 0)) throw new Error('qps must be positive');
  const hist = newHistogram();
  const u = uniform(o.seed + 17);
  const errorsByStatus: Record<string, number> = {};
  let sent = 0;
  let ok = 0;
  let errors = 0;
  let timeouts = 0;
  let samples = 0;
  const inflight = new Set<Promise<void>>();

  const fire = (q: Query, intended: number) => {
    const p = (async () => {
      try {
        const res = await fetch(o.predictUrl, {
          method: 'POST',
          headers: { 'content-type': PREDICT_CONTENT_TYPE },
          body: q.body as unknown as BodyInit,
          signal: AbortSignal.timeout(o.timeoutMs),
        });
        await res.arrayBuffer();
        if (res.ok) {
          ok++;
          samples += q.size;
          hist.recordValue(Math.max(1, Math.round((performance.now() - intended) * 1000)));
        } else {
          errors++;
          errorsByStatus[res.status] = (errorsByStatus[res.status] ?? 0) + 1;
        }
      } catch (e) {
        if ((e as Error).name === 'TimeoutError') timeouts++;
        else {
          errors++;
          errorsByStatus.network = (errorsByStatus.network ?? 0) + 1;
        }
      }
    })();
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };

  const start = performance.now();
  const end = start + o.durationMs;
  let next = start;
  let lastTick = start;
  let sizeSum = 0;
  while (next < end) {
    const now = performance.now();
    if (now >= next) {
      // every arrival that is due goes out now, stamped with the time it was due
      const q = o.queries[sent % o.queries.length]!;
      sizeSum += q.size;
      fire(q, next);
      sent++;
      if (sent % 64 === 0) await new Promise((r) => setImmediate(r)); // let answers in while catching up
      next += (-Math.log(1 - u()) / o.qps) * 1000;
      continue;
    }
    if (o.onTick && now - lastTick >= 1000) {
      lastTick = now;
      o.onTick({ elapsedMs: now - start, sent, done: ok + errors + timeouts, errors: errors + timeouts, p99Ms: ms(hist.getValueAtPercentile(99)) });
    }
    await new Promise((r) => setTimeout(r, Math.min(next - now, 20)));
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - start) / 1000;
  o.onTick?.({ elapsedMs: elapsed * 1000, sent, done: ok + errors + timeouts, errors: errors + timeouts, p99Ms: ms(hist.getValueAtPercentile(99)) });
  return {
    offeredQps: o.qps,
    achievedQps: Math.round((ok / (o.durationMs / 1000)) * 100) / 100,
    durationS: Math.round(elapsed * 100) / 100,
    sent,
    ok,
    errors,
    timeouts,
    errorsByStatus,
    latencyMs: {
      p50: ms(hist.getValueAtPercentile(50)),
      p95: ms(hist.getValueAtPercentile(95)),
      p99: ms(hist.getValueAtPercentile(99)),
      p999: ms(hist.getValueAtPercentile(99.9)),
      max: ms(hist.maxValue),
      mean: ms(hist.mean),
      tail: ms(hist.getValueAtPercentile(o.tailPercentile ?? 99)),
      tailPercentile: o.tailPercentile ?? 99,
    },
    meanQuerySize: sent ? Math.round((sizeSum / sent) * 10) / 10 : 0,
    samplesPerSecond: Math.round(samples / (o.durationMs / 1000)),
  };
}
