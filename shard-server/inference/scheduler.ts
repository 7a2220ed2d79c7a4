// DeepRecSched's online tuning, pure (latencies and times in, decisions out). With `fixed`, every query is split
// into parts of the configured batch size B. With `auto`, B is tuned by hill climbing on the tail latency that
// each window of queries observed: measure at home, probe a neighbour on the ladder, keep it if it is better by
// more than the noise tolerance, otherwise go home and try the other side; with both sides worse, dwell at home
// and watch for a load shift (the home latency moving by more than `drift`), then probe again. With an
// accelerator, a second climber tunes the query size above which a query goes whole to it; the two climbers
// take turns, each until it settles.
import { build, type Histogram } from 'hdr-histogram-js';

export type SchedulerMode = 'auto' | 'fixed';

export interface SchedulerOptions {
  mode: SchedulerMode;
  /** Fixed B, or where auto starts. */
  batchSize: number;
  /** The percentile of the latency target (e.g. 95). */
  percentile: number;
  /** An accelerator executor exists: also tune the whole-query threshold. */
  accelerator?: boolean;
  /** Where the accelerator threshold starts (default: the 75th percentile of the query sizes seen so far). */
  threshold?: number;
  /** A window closes when it has at least this many queries ... (default 100) */
  windowQueries?: number;
  /** ... and spans at least this many milliseconds (default 1000). */
  windowMs?: number;
  /** Relative latency change treated as noise (default 0.05). */
  tolerance?: number;
  /** Windows to stay at a settled point before probing again (default 8). */
  dwellWindows?: number;
  /** Relative change of the settled latency that counts as a load shift (default 0.3). */
  drift?: number;
}

/** Batch sizes auto may choose: steps of about sqrt(2), up to the largest request the server accepts. */
export const BATCH_LADDER = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024];

type Phase = 'home' | 'probe' | 'dwell';

/** One tuned parameter on a ladder of values. */
export class HillClimber {
  private i: number;
  private dir: 1 | -1 = 1;
  private phase: Phase = 'home';
  private failures = 0;
  private home = Infinity;
  private dwellLeft = 0;
  /** Probes that moved the setting (for tests and metrics). */
  moves = 0;

  constructor(
    readonly ladder: number[],
    start: number,
    private readonly o: { tolerance: number; dwellWindows: number; drift: number },
  ) {
    this.i = nearest(ladder, start);
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
  }

  /** The latency the window just run with `value` observed. */
  step(score: number): void {
    const { tolerance, drift } = this.o;
    switch (this.phase) {
      case 'home':
        this.home = score;
        if (this.failures >= 2) {
          this.phase = 'dwell';
          this.dwellLeft = this.o.dwellWindows;
        } else this.probeNext();
        return;
      case 'probe':
        if (score < this.home * (1 - tolerance)) {
          this.i += this.dir;
          this.moves++;
          this.home = score;
          this.failures = 0;
          this.probeNext();
        } else {
          this.failures++;
          this.dir = this.dir === 1 ? -1 : 1;
          this.phase = 'home';
        }
        return;
      case 'dwell':
        if (Math.abs(score - this.home) > this.home * drift || --this.dwellLeft <= 0) {
          this.home = score;
          this.failures = 0;
          this.probeNext();
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

export interface Decision {
  /** Send the query whole to the accelerator. */
  accelerator: boolean;
  /** Parts of at most this many samples (CPU path). */
  batchSize: number;
}

export interface SchedulerState {
  mode: SchedulerMode;
  batchSize: number;
  /** Queries larger than this go whole to the accelerator; absent without one. */
  acceleratorThreshold?: number;
  windows: number;
  /** The latency at the target percentile in the last closed window, in ms. */
  windowLatencyMs?: number;
}

export class Scheduler {
  private readonly batch: HillClimber;
  private readonly threshold?: HillClimber;
  private active: HillClimber;
  private hist: Histogram = newHistogram();
  private readonly sizes: Histogram = newHistogram();
  private thresholdStarted: boolean;
  private windowStart?: number;
  private windows = 0;
  private last?: number;
  private readonly windowQueries: number;
  private readonly windowMs: number;

  constructor(private readonly o: SchedulerOptions) {
    const climb = { tolerance: o.tolerance ?? 0.05, dwellWindows: o.dwellWindows ?? 8, drift: o.drift ?? 0.3 };
    this.batch = new HillClimber(o.mode === 'fixed' ? [o.batchSize] : BATCH_LADDER, o.batchSize, climb);
    if (o.accelerator) this.threshold = new HillClimber(o.mode === 'fixed' ? [o.threshold ?? 256] : BATCH_LADDER.filter((b) => b >= 8), o.threshold ?? 256, climb);
    this.active = this.batch;
    this.thresholdStarted = o.threshold !== undefined;
    this.windowQueries = o.windowQueries ?? 100;
    this.windowMs = o.windowMs ?? 1000;
  }

  /** How to run a query of `items` samples. */
  decide(items: number): Decision {
    const batchSize = this.batch.value;
    return { accelerator: this.threshold !== undefined && items > this.threshold.value, batchSize };
  }

  /** Records a finished query; closes the window and takes a tuning step when it is full. */
  observe(latencyMs: number, nowMs: number, items = 1): void {
    this.windowStart ??= nowMs;
    if (this.threshold) this.sizes.recordValue(Math.max(1, items));
    this.hist.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
    if (this.hist.totalCount < this.windowQueries || nowMs - this.windowStart < this.windowMs) return;
    const score = this.hist.getValueAtPercentile(this.o.percentile) / 1000;
    this.hist.reset();
    this.windowStart = nowMs;
    this.windows++;
    this.last = score;
    if (this.o.mode === 'fixed') return;
    this.active.step(score);
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

  state(): SchedulerState {
    return {
      mode: this.o.mode,
      batchSize: this.batch.value,
      ...(this.threshold ? { acceleratorThreshold: this.threshold.value } : {}),
      windows: this.windows,
      ...(this.last !== undefined ? { windowLatencyMs: Math.round(this.last * 1000) / 1000 } : {}),
    };
  }
}

function nearest(ladder: number[], v: number): number {
  let best = 0;
  for (let i = 1; i < ladder.length; i++) if (Math.abs(ladder[i]! - v) < Math.abs(ladder[best]! - v)) best = i;
  return best;
}

const newHistogram = (): Histogram => build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
