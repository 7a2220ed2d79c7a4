// Hedged shard calls (Dean and Barroso, "The Tail at Scale"): a call without an answer after the shard's recent
// p95 is re-sent to another replica and the first answer wins. The threshold comes from a window of recent
// exchanges; a token bucket keeps the extra calls at most HEDGE_BUDGET of all calls, so that a slow shard is
// never sent twice its load (gRPC's hedging throttle does the same).

/** Exchanges (answered calls) the threshold is computed over. */
export const HEDGE_WINDOW = 256;
/** No hedging before this many exchanges: a percentile of fewer says little. */
export const HEDGE_MIN_SAMPLES = 32;
/** At most this many hedges per call, over time. */
export const HEDGE_BUDGET = 0.05;
/** Hedges that may go at once after a quiet spell. */
export const HEDGE_BURST = 5;

/** The latencies of the last HEDGE_WINDOW exchanges and a percentile of them, recomputed every 16 new ones. */
export class LatencyWindow {
  private readonly ring = new Float64Array(HEDGE_WINDOW);
  private count = 0;
  private stale = 0;
  private cached?: number;

  constructor(private readonly percentile: number) {}

  add(ms: number): void {
    this.ring[this.count % HEDGE_WINDOW] = ms;
    this.count++;
    if (++this.stale >= 16) this.cached = undefined;
  }

  /** The percentile in ms, or undefined while fewer than HEDGE_MIN_SAMPLES exchanges are known. */
  threshold(): number | undefined {
    if (this.count < HEDGE_MIN_SAMPLES) return undefined;
    if (this.cached === undefined) {
      const sorted = this.ring.slice(0, Math.min(this.count, HEDGE_WINDOW)).sort();
      this.cached = sorted[Math.min(sorted.length - 1, Math.ceil((this.percentile / 100) * sorted.length) - 1)]!;
      this.stale = 0;
    }
    return this.cached;
  }
}

/** Each call earns HEDGE_BUDGET of a hedge (up to HEDGE_BURST); a hedge spends one. */
export class HedgeBudget {
  private tokens = 0;

  earn(): void {
    this.tokens = Math.min(HEDGE_BURST, this.tokens + HEDGE_BUDGET);
  }

  take(): boolean {
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
