// The data plane's reliability figures (docs/reliability.md), on real shard-server processes: the main offered a
// multiple of its measured capacity (what is shed and how fast, whether what is admitted meets its deadline, how
// probes fare, memory, recovery), and a sparse shard killed or frozen under load under each failure policy.
import { readFileSync } from 'node:fs';
import type { LocalDeployment } from '../cli/local.js';
import { PREDICT_CONTENT_TYPE } from '../contracts/wire/predict.js';
import { runLoad, type Answer } from '../loadgen/run.js';
import type { Query } from '../loadgen/workload.js';

export const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;

/** The p-th percentile (0..100) of values, nearest rank; 0 for none. */
export function percentile(values: number[], p: number): number {
  if (!values.length) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const summary = (values: number[]) => ({ p50: round(percentile(values, 50), 2), p99: round(percentile(values, 99), 2), max: round(Math.max(0, ...values), 2) });

const scrape = async (d: LocalDeployment) => (await fetch(`${d.mainUrl}/metrics`)).text();

/** One stage of the main's latency histogram (cumulative bucket counts by upper bound, seconds) from a scrape. */
function histogram(text: string, stage: 'end_to_end' | 'shed'): Map<number, number> {
  const out = new Map<number, number>();
  for (const [, labels, count] of text.matchAll(/^recshard_request_duration_seconds_bucket\{([^}]*)\} (\d+)$/gm)) {
    const le = /le="([^"]+)"/.exec(labels!)?.[1];
    if (le && labels!.includes(`stage="${stage}"`)) out.set(le === '+Inf' ? Infinity : Number(le), Number(count));
  }
  return out;
}

/** What the main itself measured, arrival to reply, between two scrapes: answers, the share within `ms`, the p99's bucket. */
function serverSide(before: Map<number, number>, after: Map<number, number>, ms: number) {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const n = (le: number) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const total = n(Infinity);
  const p99 = bounds.find((le) => n(le) >= 0.99 * total) ?? Infinity;
  const within = bounds.filter((le) => le * 1000 <= ms).pop();
  return { answered: total, withinDeadline: round((within !== undefined ? n(within) : 0) / Math.max(1, total), 3), p99AtMostMs: p99 * 1000 };
}

/** Resident memory of a process (MiB), from /proc. */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function post(url: string, q: Query, signal?: AbortSignal): Promise<number> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': PREDICT_CONTENT_TYPE }, body: q.body as unknown as BodyInit, signal });
  await res.arrayBuffer();
  return res.status;
}

/** Closed-loop throughput: `clients` senders back to back for `seconds`; answers per second that were 200. */
export async function closedLoopQps(d: LocalDeployment, qs: Query[], clients: number, seconds: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let ok = 0;
  let i = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) if ((await post(d.predictUrl, qs[i++ % qs.length]!)) === 200) ok++;
    }),
  );
  return ok / seconds;
}

/** Samples an async probe every `everyMs` until stopped; the latencies (ms) and results it saw. */
function sampler<T>(everyMs: number, probe: () => Promise<T>) {
  const ms: number[] = [];
  const seen: T[] = [];
  let on = true;
  const done = (async () => {
    while (on) {
      const t = performance.now();
      try {
        seen.push(await probe());
      } catch {
        // a probe that failed is seen as its time
      }
      ms.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    ms,
    seen,
    stop: async () => {
      on = false;
      await done;
    },
  };
}

export interface OverloadResult {
  capacityQps: number;
  offeredQps: number;
  /** The main's default deadline. */
  deadlineMs: number;
  seconds: number;
  sent: number;
  ok: number;
  /** 503 OVERLOADED: shed by admission control. */
  shed: number;
  /** 504: admitted, then past the deadline. */
  deadlineMisses: number;
  other: number;
  /** The first few of those: status and error. */
  otherSamples: string[];
  /** Shed / (sent - what capacity would have served): 1 when all of the excess was shed. */
  excessShedFraction: number;
  /** Sheds answered within 10 ms of their arrival (as the client measures, from the scheduled arrival). */
  shedWithin10ms: number;
  /** The same by the main's own clock (arrival to the 503 written: its stage="shed" histogram). */
  serverShedWithin10ms: number;
  shedLatencyMs: { p50: number; p99: number; max: number };
  admittedLatencyMs: { p50: number; p99: number; max: number };
  /** The main's own end_to_end histogram over the run (admitted requests, arrival to reply): its p99's bucket. */
  server: { answered: number; withinDeadline: number; p99AtMostMs: number };
  /** /healthz as the client measures it (its own lag included). */
  healthzMs: { p50: number; p99: number; max: number };
  /** The main's event-loop delay over the run (prom-client's nodejs_eventloop_lag_*): what a probe waits for at most. */
  eventLoopDelayMs: { p99: number; max: number };
  rssMiB: { before: number; peak: number };
  /** From the last arrival until a query is again answered in under twice the unloaded median. */
  recoveryMs: number;
}

/**
 * Offers `factor` times the main's capacity (measured closed-loop first) for `seconds`, open loop, with /healthz
 * probed every 50 ms and the main's memory sampled every 100 ms.
 */
export async function measureOverload(d: LocalDeployment, qs: Query[], o: { factor: number; seconds: number; deadlineMs: number }): Promise<OverloadResult> {
  const main = d.processes.find((p) => p.name === 'main')!.proc.pid!;
  await closedLoopQps(d, qs, 4, 1); // warm-up
  const unloaded: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    await post(d.predictUrl, qs[i % qs.length]!);
    unloaded.push(performance.now() - t);
  }
  const capacityQps = await closedLoopQps(d, qs, 16, Math.max(2, o.seconds / 3));
  const before = rssMiB(main);
  const health = sampler(50, () => fetch(`${d.mainUrl}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status));
  const memory = sampler(100, async () => rssMiB(main));
  const answers: Answer[] = [];
  const offeredQps = round(capacityQps * o.factor);
  // (a scrape also restarts the event-loop delay figures: the next one covers the run)
  const first = await scrape(d);
  const histBefore = histogram(first, 'end_to_end');
  const shedBefore = histogram(first, 'shed');
  const r = await runLoad({
    predictUrl: d.predictUrl,
    qps: offeredQps,
    durationMs: o.seconds * 1000,
    timeoutMs: 10_000,
    queries: qs,
    seed: 11,
    onAnswer: (a) => answers.push(a),
  });
  const stopped = performance.now();
  const last = await scrape(d);
  const server = serverSide(histBefore, histogram(last, 'end_to_end'), o.deadlineMs);
  const shedServer = serverSide(shedBefore, histogram(last, 'shed'), 10);
  const gauge = (name: string) => round(Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(last)?.[1] ?? NaN) * 1000, 1);
  const eventLoopDelayMs = { p99: gauge('nodejs_eventloop_lag_p99_seconds'), max: gauge('nodejs_eventloop_lag_max_seconds') };
  const typical = percentile(unloaded, 50);
  let recoveryMs = 0;
  for (;;) {
    const t = performance.now();
    const status = await post(d.predictUrl, qs[0]!);
    recoveryMs = round(performance.now() - stopped, 0);
    if ((status === 200 && performance.now() - t < 2 * typical + 5) || recoveryMs > 30_000) break;
    await new Promise((res) => setTimeout(res, 10));
  }
  await health.stop();
  await memory.stop();
  const shed = answers.filter((a) => a.status === 503);
  const excess = Math.max(1, r.sent - capacityQps * o.seconds);
  return {
    capacityQps: round(capacityQps),
    offeredQps,
    deadlineMs: o.deadlineMs,
    seconds: o.seconds,
    sent: r.sent,
    ok: r.ok,
    shed: shed.length,
    deadlineMisses: answers.filter((a) => a.status === 504).length,
    other: answers.filter((a) => ![200, 503, 504].includes(a.status)).length,
    otherSamples: answers
      .filter((a) => ![200, 503, 504].includes(a.status))
      .slice(0, 3)
      .map(
        (a) =>
          `${a.status} ${
            a.error ??
            Buffer.from(a.body ?? [])
              .toString('utf8')
              .slice(0, 200)
          }`,
      ),
    excessShedFraction: round(shed.length / excess, 3),
    shedWithin10ms: round(shed.filter((a) => a.latencyMs <= 10).length / Math.max(1, shed.length), 3),
    serverShedWithin10ms: shedServer.withinDeadline,
    shedLatencyMs: summary(shed.map((a) => a.latencyMs)),
    admittedLatencyMs: summary(answers.filter((a) => a.status === 200).map((a) => a.latencyMs)),
    server,
    healthzMs: summary(health.ms),
    eventLoopDelayMs,
    rssMiB: { before: round(before), peak: round(Math.max(before, ...memory.seen)) },
    recoveryMs,
  };
}

export type Fault = 'kill' | 'stop';

export interface FaultResult {
  policy: 'fail' | 'zero';
  fault: Fault;
  qps: number;
  /** Answers to queries that arrived while the shard was down. */
  during: { sent: number; ok: number; failed: number; p50Ms: number; p99Ms: number; maxMs: number };
  /** The main's /readyz while the shard was down: the share of probes that passed. */
  mainReadyShare: number;
  /** After the shard came back: how long until every answer is a full (non-degraded) 200 again. */
  recoveredMs: number;
}

/**
 * Loads the main at `qps`; after `warmS` seconds shard `shard` is SIGKILLed or SIGSTOPped for `faultS` seconds,
 * then restarted or continued, and the load runs `afterS` more seconds.
 */
export async function measureShardFault(
  d: LocalDeployment,
  qs: Query[],
  o: { policy: 'fail' | 'zero'; fault: Fault; shard: string; qps: number; warmS: number; faultS: number; afterS: number },
): Promise<FaultResult> {
  const answers: Answer[] = [];
  const ready = sampler(50, () => fetch(`${d.mainUrl}/readyz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status));
  const windows = { from: 0, to: 0 };
  let readyDuring: number[] = [];
  const total = o.warmS + o.faultS + o.afterS;
  const load = runLoad({
    predictUrl: d.predictUrl,
    qps: o.qps,
    durationMs: total * 1000,
    timeoutMs: 10_000,
    queries: qs,
    seed: 13,
    onAnswer: (a) => answers.push(a),
  });
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, o.warmS * 1000));
  const proc = () => d.processes.find((p) => p.name === o.shard)!.proc;
  let restart: (() => Promise<void>) | undefined;
  windows.from = performance.now() - t0;
  const mark = ready.seen.length;
  if (o.fault === 'kill') restart = await d.kill(o.shard);
  else proc().kill('SIGSTOP');
  await new Promise((r) => setTimeout(r, o.faultS * 1000));
  readyDuring = ready.seen.slice(mark);
  if (restart) await restart();
  else proc().kill('SIGCONT');
  windows.to = performance.now() - t0;
  await load;
  await ready.stop();
  const during = answers.filter((a) => a.atMs >= windows.from && a.atMs < windows.to);
  const lat = during.map((a) => a.latencyMs);
  const degraded = (a: Answer) => a.status !== 200 || a.degraded === true;
  const lastBad = answers.filter((a) => a.atMs >= windows.to && degraded(a)).reduce((m, a) => Math.max(m, a.atMs), windows.to);
  return {
    policy: o.policy,
    fault: o.fault,
    qps: o.qps,
    during: {
      sent: during.length,
      ok: during.filter((a) => a.status === 200).length,
      failed: during.filter((a) => a.status !== 200).length,
      p50Ms: round(percentile(lat, 50), 1),
      p99Ms: round(percentile(lat, 99), 1),
      maxMs: round(Math.max(0, ...lat), 1),
    },
    mainReadyShare: round(readyDuring.filter((s) => s === 200).length / Math.max(1, readyDuring.length), 3),
    recoveredMs: round(lastBad - windows.to, 0),
  };
}

/** The sum of a metric's series on the main whose labels include `having` (e.g. 'stage="shard_call"'). */
async function metricSum(d: LocalDeployment, name: string, having = ''): Promise<number> {
  const text = await (await fetch(`${d.mainUrl}/metrics`)).text();
  let sum = 0;
  for (const [, labels, v] of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))) if ((labels ?? '').includes(having)) sum += Number(v);
  return sum;
}

/** Answers and shard-call counts over one or more load windows. */
export interface HedgingStats {
  sent: number;
  failed: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Shard lookups the main made (each once, hedges aside), and the hedges as a share of them. */
  shardCalls: number;
  hedges: number;
  hedgeWins: number;
  extraLoad: number;
}

export interface HedgingResult {
  hedging: boolean;
  /** Windows without the straggler, and windows with it, interleaved. */
  without: HedgingStats;
  with: HedgingStats;
}

/**
 * Open-loop load on a deployment whose shards have two replicas each, in `rounds` pairs of windows of `windowS`
 * seconds: one with every replica well, one with `straggler` frozen (SIGSTOP) for pauseMs every everyMs, like a
 * pod paused by garbage collection or CPU throttling. Interleaving the two on one deployment keeps the machine's
 * drift out of the comparison.
 */
export async function measureHedging(
  d: LocalDeployment,
  qs: Query[],
  o: { qps: number; windowS: number; rounds: number; hedging: boolean; straggler: { name: string; pauseMs: number; everyMs: number } },
): Promise<HedgingResult> {
  const target = d.processes.find((p) => p.name === o.straggler.name);
  if (!target) throw new Error(`no process ${o.straggler.name}`);
  const counters = async () => ({
    calls: await metricSum(d, 'recshard_request_duration_seconds_count', 'stage="shard_call"'),
    hedges: await metricSum(d, 'recshard_shard_hedged_calls_total'),
    wins: await metricSum(d, 'recshard_shard_hedge_wins_total'),
  });
  const acc = { without: { answers: [] as Answer[], calls: 0, hedges: 0, wins: 0 }, with: { answers: [] as Answer[], calls: 0, hedges: 0, wins: 0 } };
  for (let round = 0; round < o.rounds; round++)
    for (const which of ['without', 'with'] as const) {
      const before = await counters();
      let pausing: ReturnType<typeof setInterval> | undefined;
      if (which === 'with')
        pausing = setInterval(() => {
          target.proc.kill('SIGSTOP');
          setTimeout(() => target.proc.kill('SIGCONT'), o.straggler.pauseMs);
        }, o.straggler.everyMs);
      try {
        const a = acc[which];
        await runLoad({
          predictUrl: d.predictUrl,
          qps: o.qps,
          durationMs: o.windowS * 1000,
          timeoutMs: 10_000,
          queries: qs,
          seed: 17 + round,
          onAnswer: (x) => a.answers.push(x),
        });
      } finally {
        clearInterval(pausing);
        target.proc.kill('SIGCONT');
      }
      await new Promise((r) => setTimeout(r, o.straggler.pauseMs + 50)); // the last pause is over
      const after = await counters();
      acc[which].calls += after.calls - before.calls;
      acc[which].hedges += after.hedges - before.hedges;
      acc[which].wins += after.wins - before.wins;
    }
  const stats = (a: (typeof acc)['with']): HedgingStats => ({
    sent: a.answers.length,
    failed: a.answers.filter((x) => x.status !== 200).length,
    latencyMs: summary(a.answers.filter((x) => x.status === 200).map((x) => x.latencyMs)),
    shardCalls: a.calls,
    hedges: a.hedges,
    hedgeWins: a.wins,
    extraLoad: round(a.hedges / Math.max(1, a.calls), 4),
  });
  return { hedging: o.hedging, without: stats(acc.without), with: stats(acc.with) };
}
