// DeepRecSched's online tuning, pure (latencies, CPU time and clocks in, decisions out). With `fixed`, every query
// is split into parts of the configured batch size B. With `auto`, B is tuned by hill climbing over windows of
// queries: measure at home, probe a neighbour on the ladder, keep it if it is better by more than the noise
// tolerance, otherwise go home and try the other side; with both sides worse, dwell at home and watch for a shift
// (two windows in a row moving by more than `drift` from home, or crossing the latency bound), then probe again.
// A probe runs a worse setting for a window, which is what auto pays for tuning: each cycle that confirms the
// same home doubles the next dwell (up to 8x), and any move or shift brings it back to the base.
//
// "Better" is what raises latency-bounded throughput. While both windows compared keep their tail latency under
// the bound (a margin below the target), the one that spent less CPU per item is better, and a larger B that is
// no worse within the noise wins the tie: splitting costs CPU (a worker hand-off and onnxruntime calls per part),
// and CPU is what runs out at the throughput limit, where the saving shows. Once a
// window's tail reaches the bound, tail latency decides: smaller parts finish a large query sooner on more cores.
// With an accelerator, a second climber tunes the query size above which a query goes whole to it; the two
// climbers take turns, each until it settles.
import { build, type Histogram } from 'hdr-histogram-js';
import type { SchedulerInfo } from '../../contracts/model-info.js';
import type { SchedulerMode } from '../../contracts/shard-server-args.js';

export interface SchedulerOptions {
  mode: SchedulerMode;
  /** Fixed B, or where auto starts. */
  batchSize: number;
  /** The percentile of the latency target (e.g. 95). */
  percentile: number;
  /** The latency target at that percentile; without one, windows compare on tail latency alone. */
  targetMs?: number;
  /** Share of the target under which CPU per item decides (default 0.8). */
  headroom?: number;
  /** Process CPU time in ms (all threads); without it, windows compare on tail latency alone. */
  cpuMs?: () => number;
  /** An accelerator executor exists: also tune the whole-query threshold. */
  accelerator?: boolean;
  /** Where the accelerator threshold starts (default: the 75th percentile of the query sizes seen so far). */
  threshold?: number;
  /** A window closes when it has at least this many queries ... (default 50) */
  windowQueries?: number;
  /** ... and spans at least this many milliseconds (default 500). */
  windowMs?: number;
  /** Relative latency change treated as noise (default 0.05). */
  tolerance?: number;
  /** Windows to stay at a settled point before probing again (default 16; doubles, up to 8x, while probes keep confirming it). */
  dwellWindows?: number;
  /** Relative change of the settled latency that counts as a load shift (default 0.3). */
  drift?: number;
}

/** Batch sizes auto may choose: steps of about sqrt(2), up to the largest request the server accepts. */
export const BATCH_LADDER = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024];

type Phase = 'home' | 'probe' | 'dwell';

/** What one window measured. */
export interface WindowSample {
  /** Latency at the target percentile. */
  latencyMs: number;
  /** Process CPU time per item served. */
  cpuPerItemMs?: number;
}

/** How two windows compare. */
export interface Judge {
  /**
   * a is better than b by more than the noise tolerance; or, `toward` the climber's preferred direction, no
   * worse than b within it.
   */
  better(a: WindowSample, b: WindowSample, toward: boolean): boolean;
  /** a differs from the settled reference enough to look again. */
  shifted(a: WindowSample, ref: WindowSample): boolean;
}

/** One tuned parameter on a ladder of values. */
export class HillClimber {
  private i: number;
  private dir: 1 | -1 = 1;
  private phase: Phase = 'home';
  private failures = 0;
  private home?: WindowSample;
  private dwellLeft = 0;
  /** The next dwell, in windows: doubles while probing keeps confirming the same home. */
  private dwellNext: number;
  /** Consecutive dwell windows that looked shifted. */
  private shiftedRun = 0;
  /** The home index when the current probe cycle began. */
  private cycleFrom = -1;

  constructor(
    readonly ladder: number[],
    start: number,
    private readonly judge: Judge,
    private readonly dwellWindows: number,
    /** The direction a tie goes (+1: up the ladder), or 0 for none. */
    private readonly prefer: 1 | -1 | 0 = 0,
  ) {
    this.i = nearest(ladder, start);
    this.dwellNext = dwellWindows;
  }

  /** The setting to run the next window with. */
  get value(): number {
    return this.ladder[this.phase === 'probe' ? this.i + this.dir : this.i]!;
  }

  get settled(): boolean {
    return this.phase === 'dwell';
  }

  /** Starts over from the ladder value nearest `start`. */
  reset(start: number): void {
    this.i = nearest(this.ladder, start);
    this.phase = 'home';
    this.failures = 0;
    this.dir = 1;
    this.dwellNext = this.dwellWindows;
    this.cycleFrom = -1;
  }

  /** What the window just run with `value` measured. */
  step(w: WindowSample): void {
    switch (this.phase) {
      case 'home':
        this.home = w;
        if (this.failures >= 2) {
          // settled: a cycle that came back to where it began confirms the home, and the next look waits longer
          this.dwellNext = this.cycleFrom === this.i ? Math.min(this.dwellNext * 2, this.dwellWindows * 8) : this.dwellWindows;
          this.phase = 'dwell';
          this.dwellLeft = this.dwellNext;
          this.shiftedRun = 0;
        } else this.probeNext();
        return;
      case 'probe':
        if (this.judge.better(w, this.home!, this.dir === this.prefer)) {
          this.i += this.dir;
          this.home = w;
          this.failures = 0;
          this.probeNext();
        } else {
          this.failures++;
          this.dir = this.dir === 1 ? -1 : 1;
          this.phase = 'home';
        }
        return;
      case 'dwell': {
        // one window out of line is noise; two in a row are a shift
        this.shiftedRun = this.judge.shifted(w, this.home!) ? this.shiftedRun + 1 : 0;
        const shifted = this.shiftedRun >= 2;
        if (shifted || --this.dwellLeft <= 0) {
          if (shifted) this.dwellNext = this.dwellWindows;
          this.home = w;
          this.failures = 0;
          this.cycleFrom = this.i;
          this.probeNext();
        }
      }
    }
  }

  /** Probes the neighbour in the current direction, turning at the ends of the ladder. */
  private probeNext(): void {
    for (let tries = 0; tries < 2; tries++) {
      const j = this.i + this.dir;
      if (j >= 0 && j < this.ladder.length) {
        this.phase = 'probe';
        return;
      }
      this.failures++;
      this.dir = this.dir === 1 ? -1 : 1;
    }
    this.phase = 'home';
  }
}

/** The judge described at the top: CPU per item while both windows have headroom, else tail latency. */
export function throughputJudge(o: { tolerance: number; drift: number; boundMs: number }): Judge {
  const onCpu = (a: WindowSample, b: WindowSample) =>
    a.cpuPerItemMs !== undefined && b.cpuPerItemMs !== undefined && Math.max(a.latencyMs, b.latencyMs) <= o.boundMs;
  const key = (w: WindowSample, cpu: boolean) => (cpu ? w.cpuPerItemMs! : w.latencyMs);
  return {
    better: (a, b, toward) => {
      const cpu = onCpu(a, b);
      // a tie toward the preferred side allows twice the tolerance: CPU per item is noisy over short windows
      return toward && cpu ? key(a, cpu) <= key(b, cpu) * (1 + 2 * o.tolerance) : key(a, cpu) < key(b, cpu) * (1 - o.tolerance);
    },
    shifted: (a, ref) => {
      if (a.latencyMs > o.boundMs !== ref.latencyMs > o.boundMs) return true;
      const cpu = onCpu(a, ref);
      return Math.abs(key(a, cpu) - key(ref, cpu)) > key(ref, cpu) * o.drift;
    },
  };
}

export interface Decision {
  /** Send the query whole to the accelerator. */
  accelerator: boolean;
  /** Parts of at most this many samples (CPU path). */
  batchSize: number;
}

export class Scheduler {
  private readonly batch: HillClimber;
  private readonly threshold?: HillClimber;
  private active: HillClimber;
  private hist: Histogram = newHistogram();
  private readonly sizes: Histogram = newHistogram();
  private thresholdStarted: boolean;
  private windowStart?: number;
  private windowItems = 0;
  private windowCpu?: number;
  private windows = 0;
  private last?: WindowSample;
  private readonly windowQueries: number;
  private readonly windowMs: number;

  constructor(private readonly o: SchedulerOptions) {
    const judge = throughputJudge({
      tolerance: o.tolerance ?? 0.05,
      drift: o.drift ?? 0.3,
      boundMs: o.targetMs !== undefined ? o.targetMs * (o.headroom ?? 0.8) : Infinity,
    });
    const dwell = o.dwellWindows ?? 16;
    // With headroom, larger parts win ties: they never cost more CPU, and the saving shows only under load.
    this.batch = new HillClimber(o.mode === 'fixed' ? [o.batchSize] : BATCH_LADDER, o.batchSize, judge, dwell, 1);
    if (o.accelerator)
      this.threshold = new HillClimber(o.mode === 'fixed' ? [o.threshold ?? 256] : BATCH_LADDER.filter((b) => b >= 8), o.threshold ?? 256, judge, dwell);
    this.active = this.batch;
    this.thresholdStarted = o.threshold !== undefined;
    this.windowQueries = o.windowQueries ?? 50;
    this.windowMs = o.windowMs ?? 500;
  }

  /** How to run a query of `items` samples. */
  decide(items: number): Decision {
    const batchSize = this.batch.value;
    return { accelerator: this.threshold !== undefined && items > this.threshold.value, batchSize };
  }

  /** Records a finished query; closes the window and takes a tuning step when it is full. */
  observe(latencyMs: number, nowMs: number, items = 1): void {
    if (this.windowStart === undefined) {
      this.windowStart = nowMs;
      this.windowCpu = this.o.cpuMs?.();
    }
    if (this.threshold) this.sizes.recordValue(Math.max(1, items));
    this.hist.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
    this.windowItems += items;
    if (this.hist.totalCount < this.windowQueries || nowMs - this.windowStart < this.windowMs) return;
    const cpu = this.o.cpuMs?.();
    const sample: WindowSample = {
      latencyMs: this.hist.getValueAtPercentile(this.o.percentile) / 1000,
      ...(cpu !== undefined && this.windowCpu !== undefined ? { cpuPerItemMs: (cpu - this.windowCpu) / Math.max(1, this.windowItems) } : {}),
    };
    this.hist.reset();
    this.windowStart = nowMs;
    this.windowCpu = cpu;
    this.windowItems = 0;
    this.windows++;
    this.last = sample;
    if (this.o.mode === 'fixed') return;
    this.active.step(sample);
    // Coordinate descent: once one parameter settles, the other one gets its turn.
    if (this.threshold && this.active.settled) {
      this.active = this.active === this.batch ? this.threshold : this.batch;
      // The threshold's landscape is flat above the largest query: start where a quarter of queries offload.
      if (this.active === this.threshold && !this.thresholdStarted) {
        this.threshold.reset(this.sizes.getValueAtPercentile(75));
        this.thresholdStarted = true;
      }
    }
  }

  state(): SchedulerInfo {
    return {
      mode: this.o.mode,
      batchSize: this.batch.value,
      ...(this.threshold ? { acceleratorThreshold: this.threshold.value } : {}),
      windows: this.windows,
      ...(this.last !== undefined ? { windowLatencyMs: Math.round(this.last.latencyMs * 1000) / 1000 } : {}),
      ...(this.last?.cpuPerItemMs !== undefined ? { windowCpuPerItemMs: Math.round(this.last.cpuPerItemMs * 1000) / 1000 } : {}),
    };
  }
}

function nearest(ladder: number[], v: number): number {
  let best = 0;
  for (let i = 1; i < ladder.length; i++) if (Math.abs(ladder[i]! - v) < Math.abs(ladder[best]! - v)) best = i;
  return best;
}

const newHistogram = (): Histogram => build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
