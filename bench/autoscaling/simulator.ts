// A discrete-event simulator of one autoscaled component: Poisson arrivals following a traffic trace, a Service
// that picks a ready pod at random, pods that serve one request at a time in arrival order with service times
// drawn from a measured shard-server run, pods that take time to start and to warm up, and a controller that
// every interval reads what Prometheus would give it (the tail latency and request rate over the last window)
// and sets the replica count. Seeded: the same trace, seed and controller give the same run.
import { uniform } from '../../loadgen/distributions.js';

export interface Trace {
  name: string;
  title: string;
  durationS: number;
  /** Offered requests per second at time t (s). */
  qps(t: number): number;
}

/** What a controller reads at each evaluation: the last window, as the operator's signals give it. */
export interface Observation {
  nowMs: number;
  /** Replicas asked for now (pods that exist, starting or serving). */
  replicas: number;
  readyPods: number;
  /** Ready pods past the warm-up. */
  warmPods: number;
  /** Tail latency over every ready pod's completions in the window (what a plain PromQL query gives). */
  latencyMs?: number;
  /** The same over pods past their warm-up only. */
  warmLatencyMs?: number;
  /** Completions per second over the window. */
  rate: number;
  /** Requests queued or in service on the ready pods now. */
  inflight: number;
}

export interface Controller {
  name: string;
  /** Replicas wanted after this observation. */
  evaluate(o: Observation): number;
}

export interface SimOptions {
  trace: Trace;
  /** Service times of one request on one pod, in ms: samples from a measured run. */
  serviceMs: number[];
  targetMs: number;
  percentile: number;
  initialReplicas: number;
  /** From pod creation to ready (image pull, model load). */
  startupMs: number;
  warmupMs: number;
  /** How much slower a pod serves while warming up (cold caches). */
  warmupSlowdown: number;
  intervalMs: number;
  windowMs: number;
  seed: number;
}

export interface SimPoint {
  t: number;
  qps: number;
  replicas: number;
  latencyMs: number;
}

export interface SimResult {
  controller: string;
  trace: string;
  /** Seconds whose arrivals' tail latency (at the percentile) exceeded the target. */
  secondsOver: number;
  /** Pods that existed (starting or serving), integrated over the run. */
  replicaSeconds: number;
  /** Changes of scaling direction (up then down, or down then up). */
  reversals: number;
  scaleEvents: number;
  maxReplicas: number;
  /** One point per evaluation, for the charts. */
  series: SimPoint[];
}

interface Pod {
  createdMs: number;
  readyMs: number;
  warmMs: number;
  freeAtMs: number;
  /** Finish times of its requests not yet known to be done (pruned at each evaluation). */
  finishes: number[];
}

// Completion histograms per second, log-spaced buckets of 2% from 0.05 ms, kept for the last RING seconds.
const BUCKET_RATIO = 1.02;
const BUCKET_BASE = 0.05;
const BUCKETS = Math.ceil(Math.log(2_000_000 / BUCKET_BASE) / Math.log(BUCKET_RATIO));
const RING = 1024;
const bucketOf = (ms: number) => Math.min(BUCKETS - 1, Math.max(0, Math.floor(Math.log(ms / BUCKET_BASE) / Math.log(BUCKET_RATIO))));
const bucketUpper = (b: number) => BUCKET_BASE * BUCKET_RATIO ** (b + 1);

export function simulate(o: SimOptions, c: Controller): SimResult {
  const u = uniform(o.seed);
  const pods: Pod[] = [];
  const add = (nowMs: number, startupMs: number) =>
    pods.push({ createdMs: nowMs, readyMs: nowMs + startupMs, warmMs: nowMs + startupMs + o.warmupMs, freeAtMs: 0, finishes: [] });
  for (let i = 0; i < o.initialReplicas; i++) add(-o.startupMs - o.warmupMs, 0);
  const ringAll = new Uint32Array(RING * BUCKETS);
  const ringWarm = new Uint32Array(RING * BUCKETS);
  const ringSecond = new Float64Array(RING).fill(-1); // which second each ring slot holds
  const slot = (sec: number) => {
    const s = sec % RING;
    if (ringSecond[s] !== sec) {
      ringAll.fill(0, s * BUCKETS, (s + 1) * BUCKETS);
      ringWarm.fill(0, s * BUCKETS, (s + 1) * BUCKETS);
      ringSecond[s] = sec;
    }
    return s * BUCKETS;
  };

  const series: SimPoint[] = [];
  let secondsOver = 0;
  let replicaMs = 0;
  let lastDirection = 0;
  let reversals = 0;
  let scaleEvents = 0;
  let maxReplicas = pods.length;
  const durationMs = o.trace.durationS * 1000;
  let ready: number[] = [];
  const refreshReady = (nowMs: number) => {
    ready = [];
    for (let i = 0; i < pods.length; i++) if (pods[i]!.readyMs <= nowMs) ready.push(i);
  };

  const window = (nowMs: number, ring: Uint32Array) => {
    const counts = new Float64Array(BUCKETS);
    let total = 0;
    const last = Math.floor(nowMs / 1000) - 1;
    for (let sec = last - Math.round(o.windowMs / 1000) + 1; sec <= last; sec++) {
      if (sec < 0 || ringSecond[sec % RING] !== sec) continue;
      const base = (sec % RING) * BUCKETS;
      for (let b = 0; b < BUCKETS; b++) {
        const n = ring[base + b]!;
        if (n) {
          counts[b]! += n;
          total += n;
        }
      }
    }
    if (!total) return { total, latencyMs: undefined };
    const rank = Math.ceil((o.percentile / 100) * total);
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += counts[b]!;
      if (seen >= rank) return { total, latencyMs: bucketUpper(b) };
    }
    return { total, latencyMs: bucketUpper(BUCKETS - 1) };
  };

  const evaluate = (nowMs: number, qps: number) => {
    refreshReady(nowMs);
    let inflight = 0;
    for (const i of ready) {
      const p = pods[i]!;
      let k = 0;
      while (k < p.finishes.length && p.finishes[k]! <= nowMs) k++;
      p.finishes.splice(0, k);
      inflight += p.finishes.length;
    }
    const all = window(nowMs, ringAll);
    const warm = window(nowMs, ringWarm);
    const obs: Observation = {
      nowMs,
      replicas: pods.length,
      readyPods: ready.length,
      warmPods: ready.filter((i) => pods[i]!.warmMs <= nowMs).length,
      ...(all.latencyMs !== undefined ? { latencyMs: all.latencyMs } : {}),
      ...(warm.latencyMs !== undefined ? { warmLatencyMs: warm.latencyMs } : {}),
      // over the part of the window there is data for (as PromQL's rate() extrapolates at a series' start)
      rate: all.total / (Math.min(o.windowMs, Math.max(nowMs, 1000)) / 1000),
      inflight,
    };
    const want = Math.max(1, Math.round(c.evaluate(obs)));
    if (want !== pods.length) {
      const dir = want > pods.length ? 1 : -1;
      if (lastDirection && dir !== lastDirection) reversals++;
      lastDirection = dir;
      scaleEvents++;
      // a ReplicaSet removes the newest pods first (not-ready before ready); removed pods take no new requests
      while (pods.length > want) pods.pop();
      while (pods.length < want) add(nowMs, o.startupMs);
      maxReplicas = Math.max(maxReplicas, pods.length);
      refreshReady(nowMs);
    }
    series.push({ t: nowMs / 1000, qps, replicas: pods.length, latencyMs: obs.latencyMs ?? 0 });
  };

  const second: number[] = [];
  let nextEval = 0;
  let nextSecond = 1000;
  let t = 0;
  const closeSecond = () => {
    if (second.length) {
      second.sort((a, b) => a - b);
      if (second[Math.min(second.length - 1, Math.ceil((o.percentile / 100) * second.length) - 1)]! > o.targetMs) secondsOver++;
    }
    second.length = 0;
    replicaMs += pods.length * 1000;
    refreshReady(nextSecond);
    nextSecond += 1000;
  };
  refreshReady(0);
  while (t < durationMs) {
    // Poisson arrivals: the next gap at the rate of this moment
    const qps = Math.max(o.trace.qps(t / 1000), 1e-6);
    t += (-Math.log(1 - u()) / qps) * 1000;
    while (nextSecond <= t && nextSecond <= durationMs) closeSecond();
    while (nextEval <= t && nextEval < durationMs) {
      evaluate(nextEval, o.trace.qps(nextEval / 1000));
      nextEval += o.intervalMs;
    }
    if (t >= durationMs) break;
    if (!ready.length) {
      second.push(Infinity); // nowhere to go: the request fails
      continue;
    }
    const pod = pods[ready[Math.floor(u() * ready.length)]!]!;
    const service = o.serviceMs[Math.floor(u() * o.serviceMs.length)]! * (t < pod.warmMs ? o.warmupSlowdown : 1);
    const start = Math.max(t, pod.freeAtMs);
    const finish = start + service;
    pod.freeAtMs = finish;
    pod.finishes.push(finish);
    const latency = finish - t;
    second.push(latency);
    const sec = Math.floor(finish / 1000);
    const b = bucketOf(latency);
    ringAll[slot(sec) + b]!++;
    if (t >= pod.warmMs) ringWarm[slot(sec) + b]!++;
  }
  while (nextSecond <= durationMs) closeSecond();
  return { controller: c.name, trace: o.trace.name, secondsOver, replicaSeconds: Math.round(replicaMs / 1000), reversals, scaleEvents, maxReplicas, series };
}
