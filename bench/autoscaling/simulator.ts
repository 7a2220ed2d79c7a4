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

/** Completion counts per second and latency bucket, over the last RING seconds. */
class Ring {
  readonly all = new Uint32Array(RING * BUCKETS);
  readonly warm = new Uint32Array(RING * BUCKETS);
  /** Which second each ring slot holds. */
  private readonly second = new Float64Array(RING).fill(-1);

  /** Records a completion in second `sec`, into the warm histogram too when the pod was warm. */
  record(sec: number, latencyMs: number, warm: boolean): void {
    const base = this.slot(sec);
    const b = bucketOf(latencyMs);
    this.all[base + b]!++;
    if (warm) this.warm[base + b]!++;
  }

  private slot(sec: number): number {
    const s = sec % RING;
    if (this.second[s] !== sec) {
      this.all.fill(0, s * BUCKETS, (s + 1) * BUCKETS);
      this.warm.fill(0, s * BUCKETS, (s + 1) * BUCKETS);
      this.second[s] = sec;
    }
    return s * BUCKETS;
  }

  /** The completions of the last whole seconds of the window, and their latency at the percentile. */
  window(nowMs: number, windowMs: number, percentile: number, ring: Uint32Array): { total: number; latencyMs?: number } {
    const counts = new Float64Array(BUCKETS);
    let total = 0;
    const last = Math.floor(nowMs / 1000) - 1;
    for (let sec = last - Math.round(windowMs / 1000) + 1; sec <= last; sec++) {
      if (sec < 0 || this.second[sec % RING] !== sec) continue;
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
    const rank = Math.ceil((percentile / 100) * total);
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += counts[b]!;
      if (seen >= rank) return { total, latencyMs: bucketUpper(b) };
    }
    return { total, latencyMs: bucketUpper(BUCKETS - 1) };
  }
}

/** One run: the pods, what they completed, and the counters the result reports. */
class Simulation {
  private readonly u: () => number;
  private readonly pods: Pod[] = [];
  private readonly ring = new Ring();
  private readonly series: SimPoint[] = [];
  private ready: number[] = [];
  /** Latencies of the arrivals of the second now open. */
  private readonly second: number[] = [];
  private nextSecond = 1000;
  private secondsOver = 0;
  private replicaMs = 0;
  private lastDirection = 0;
  private reversals = 0;
  private scaleEvents = 0;
  private maxReplicas: number;

  constructor(
    private readonly o: SimOptions,
    private readonly c: Controller,
  ) {
    this.u = uniform(o.seed);
    for (let i = 0; i < o.initialReplicas; i++) this.add(-o.startupMs - o.warmupMs, 0);
    this.maxReplicas = this.pods.length;
  }

  private add(nowMs: number, startupMs: number): void {
    this.pods.push({ createdMs: nowMs, readyMs: nowMs + startupMs, warmMs: nowMs + startupMs + this.o.warmupMs, freeAtMs: 0, finishes: [] });
  }

  private refreshReady(nowMs: number): void {
    this.ready = [];
    for (let i = 0; i < this.pods.length; i++) if (this.pods[i]!.readyMs <= nowMs) this.ready.push(i);
  }

  /** What the controller reads: the window's tail (of every ready pod, and of the warm ones), rate and backlog. */
  private observe(nowMs: number): Observation {
    const { o, pods } = this;
    let inflight = 0;
    for (const i of this.ready) {
      const p = pods[i]!;
      let k = 0;
      while (k < p.finishes.length && p.finishes[k]! <= nowMs) k++;
      p.finishes.splice(0, k);
      inflight += p.finishes.length;
    }
    const all = this.ring.window(nowMs, o.windowMs, o.percentile, this.ring.all);
    const warm = this.ring.window(nowMs, o.windowMs, o.percentile, this.ring.warm);
    return {
      nowMs,
      replicas: pods.length,
      readyPods: this.ready.length,
      warmPods: this.ready.filter((i) => pods[i]!.warmMs <= nowMs).length,
      ...(all.latencyMs !== undefined ? { latencyMs: all.latencyMs } : {}),
      ...(warm.latencyMs !== undefined ? { warmLatencyMs: warm.latencyMs } : {}),
      // over the part of the window there is data for (as PromQL's rate() extrapolates at a series' start)
      rate: all.total / (Math.min(o.windowMs, Math.max(nowMs, 1000)) / 1000),
      inflight,
    };
  }

  private evaluate(nowMs: number, qps: number): void {
    this.refreshReady(nowMs);
    const obs = this.observe(nowMs);
    const want = Math.max(1, Math.round(this.c.evaluate(obs)));
    const pods = this.pods;
    if (want !== pods.length) {
      const dir = want > pods.length ? 1 : -1;
      if (this.lastDirection && dir !== this.lastDirection) this.reversals++;
      this.lastDirection = dir;
      this.scaleEvents++;
      // a ReplicaSet removes the newest pods first (not-ready before ready); removed pods take no new requests
      while (pods.length > want) pods.pop();
      while (pods.length < want) this.add(nowMs, this.o.startupMs);
      this.maxReplicas = Math.max(this.maxReplicas, pods.length);
      this.refreshReady(nowMs);
    }
    this.series.push({ t: nowMs / 1000, qps, replicas: pods.length, latencyMs: obs.latencyMs ?? 0 });
  }

  private closeSecond(): void {
    const second = this.second;
    if (second.length) {
      second.sort((a, b) => a - b);
      if (second[Math.min(second.length - 1, Math.ceil((this.o.percentile / 100) * second.length) - 1)]! > this.o.targetMs) this.secondsOver++;
    }
    second.length = 0;
    this.replicaMs += this.pods.length * 1000;
    this.refreshReady(this.nextSecond);
    this.nextSecond += 1000;
  }

  /** A request arriving at t goes to a ready pod at random and waits for it (fails when there is none). */
  private arrive(t: number): void {
    if (!this.ready.length) {
      this.second.push(Infinity); // nowhere to go: the request fails
      return;
    }
    const { o, u } = this;
    const pod = this.pods[this.ready[Math.floor(u() * this.ready.length)]!]!;
    const service = o.serviceMs[Math.floor(u() * o.serviceMs.length)]! * (t < pod.warmMs ? o.warmupSlowdown : 1);
    const finish = Math.max(t, pod.freeAtMs) + service;
    pod.freeAtMs = finish;
    pod.finishes.push(finish);
    const latency = finish - t;
    this.second.push(latency);
    this.ring.record(Math.floor(finish / 1000), latency, t >= pod.warmMs);
  }

  run(): SimResult {
    const { o } = this;
    const durationMs = o.trace.durationS * 1000;
    let nextEval = 0;
    let t = 0;
    this.refreshReady(0);
    while (t < durationMs) {
      // Poisson arrivals: the next gap at the rate of this moment
      const qps = Math.max(o.trace.qps(t / 1000), 1e-6);
      t += (-Math.log(1 - this.u()) / qps) * 1000;
      while (this.nextSecond <= t && this.nextSecond <= durationMs) this.closeSecond();
      while (nextEval <= t && nextEval < durationMs) {
        this.evaluate(nextEval, o.trace.qps(nextEval / 1000));
        nextEval += o.intervalMs;
      }
      if (t >= durationMs) break;
      this.arrive(t);
    }
    while (this.nextSecond <= durationMs) this.closeSecond();
    const { secondsOver, reversals, scaleEvents, maxReplicas, series } = this;
    return {
      controller: this.c.name,
      trace: o.trace.name,
      secondsOver,
      replicaSeconds: Math.round(this.replicaMs / 1000),
      reversals,
      scaleEvents,
      maxReplicas,
      series,
    };
  }
}

export function simulate(o: SimOptions, c: Controller): SimResult {
  return new Simulation(o, c).run();
}
