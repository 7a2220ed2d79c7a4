import { describe, expect, it } from 'vitest';
import { BATCH_LADDER, HillClimber, Scheduler, throughputJudge, type SchedulerOptions } from '../../../shard-server/inference/scheduler.js';

/** Runs `windows` windows of 20 queries, 100 ms apart, each with the latency `latency(B)` of the chosen B. */
function drive(s: Scheduler, windows: number, latency: (b: number, items: number) => number, items = 100, start = 0): { chosen: number[]; t: number } {
  const chosen: number[] = [];
  let t = start;
  for (let w = 0; w < windows; w++) {
    for (let q = 0; q < 20; q++) {
      t += 5;
      const d = s.decide(items);
      s.observe(latency(d.accelerator ? -1 : d.batchSize, items), t, items);
    }
    chosen.push(s.state().batchSize);
  }
  return { chosen, t };
}

const opts = { percentile: 95, windowQueries: 20, windowMs: 50 };
// A U-shaped tail latency: splitting overhead grows as B shrinks, serial work as B grows; best at sqrt(k).
const bowl = (k: number) => (b: number) => k / b + b;

describe('the hill-climbing scheduler', () => {
  /** The batch size the scheduler spent most of the last `n` windows at (probes are brief excursions). */
  const settledAt = (chosen: number[], n: number) => {
    const counts = new Map<number, number>();
    for (const b of chosen.slice(-n)) counts.set(b, (counts.get(b) ?? 0) + 1);
    const [best, count] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
    return { best, share: count / n };
  };

  it('climbs from the start to within the noise tolerance of the best batch size and settles there', () => {
    const s = new Scheduler({ mode: 'auto', batchSize: 256, ...opts });
    const { chosen } = drive(s, 60, bowl(144)); // best B = 12 (latency 24); 16 gives 25, within 5%
    const { best, share } = settledAt(chosen, 30);
    expect([12, 16]).toContain(best);
    expect(share).toBeGreaterThanOrEqual(0.7); // probing costs at most 3 windows in 10
    expect(s.state().windows).toBe(60);
  });

  it('finds the exact optimum with a tolerance below the gap to its neighbours', () => {
    const s = new Scheduler({ mode: 'auto', batchSize: 256, ...opts, tolerance: 0.01 });
    expect(settledAt(drive(s, 60, bowl(144)).chosen, 30).best).toBe(12);
  });

  it('re-tunes when the load shifts the optimum, and settles again', () => {
    const s = new Scheduler({ mode: 'auto', batchSize: 64, ...opts, tolerance: 0.01 });
    const first = drive(s, 60, bowl(144));
    expect(settledAt(first.chosen, 20).best).toBe(12);
    const second = drive(s, 60, bowl(9216), 100, first.t); // best B = 96; latency at B = 12 jumps 6x
    expect(settledAt(second.chosen, 20).best).toBe(96);
  });

  it('does not wander on a flat landscape within the noise tolerance', () => {
    const s = new Scheduler({ mode: 'auto', batchSize: 32, ...opts, tolerance: 0.05 });
    let n = 0;
    const { chosen } = drive(s, 40, () => 50 * (1 + 0.02 * Math.sin(n++)));
    expect(new Set(chosen)).toEqual(new Set([24, 32, 48])); // home and its two probes, nothing further
    expect(settledAt(chosen, 30)).toMatchObject({ best: 32 });
  });

  it('fixed never moves', () => {
    const s = new Scheduler({ mode: 'fixed', batchSize: 7, ...opts });
    const { chosen } = drive(s, 30, bowl(144));
    expect(new Set(chosen)).toEqual(new Set([7]));
    expect(s.decide(5000)).toEqual({ accelerator: false, batchSize: 7 });
  });

  it('closes a window only with enough queries and enough time', () => {
    const s = new Scheduler({ mode: 'auto', batchSize: 64, percentile: 95, windowQueries: 10, windowMs: 1000 });
    for (let i = 0; i < 50; i++) s.observe(10, i); // 50 queries in 50 ms
    expect(s.state().windows).toBe(0);
    s.observe(10, 1000);
    expect(s.state().windows).toBe(1);
    expect(s.state().windowLatencyMs).toBeCloseTo(10, 1);
  });

  it('with an accelerator, tunes the whole-query threshold too', () => {
    const s = new Scheduler({ mode: 'auto', batchSize: 16, ...opts, accelerator: true });
    // queries of 100 items: the accelerator (B = -1) is much faster, so the threshold must fall below 100
    const { chosen } = drive(s, 120, (b) => (b === -1 ? 5 : 40));
    expect(chosen.length).toBe(120);
    expect(s.state().acceleratorThreshold).toBeLessThan(100);
    expect(s.decide(100).accelerator).toBe(true);
    expect(s.decide(1).accelerator).toBe(false);
  });
});

describe('HillClimber', () => {
  const judge = throughputJudge({ tolerance: 0.05, drift: 0.3, boundMs: Infinity });
  /** Steps the climber with latency f(value) and returns the values it ran. */
  const walk = (h: HillClimber, windows: number, f: (v: number) => number) =>
    Array.from({ length: windows }, () => {
      const v = h.value;
      h.step({ latencyMs: f(v) });
      return v;
    });
  /** Indices of the windows spent away from `home` (probes). */
  const probes = (values: number[], home: number) => values.flatMap((v, i) => (v === home ? [] : [i]));

  it('turns at the ends of the ladder', () => {
    const h = new HillClimber(BATCH_LADDER, 1024, throughputJudge({ tolerance: 0.05, drift: 0.3, boundMs: Infinity }), 3);
    expect(h.value).toBe(1024);
    h.step({ latencyMs: 10 }); // home measured; probing up is impossible, so it probes down
    expect(h.value).toBe(768);
  });

  it('waits twice as long before each probe cycle that confirms the same home, up to 8x the dwell', () => {
    const h = new HillClimber([1, 2, 3], 2, judge, 4);
    const at = probes(
      walk(h, 120, (v) => (v === 2 ? 10 : 20)),
      2,
    ); // 2 is best: every cycle comes home
    const gaps = at.filter((_, k) => k % 2 === 0).map((i, k, a) => (k ? i - a[k - 1]! : i)); // one probe pair per cycle
    // windows between cycles: home + probe + home + probe + home, then 4, 8, 16, 32, 32 dwell windows
    expect(gaps.slice(1)).toEqual([4 + 4, 8 + 4, 16 + 4, 32 + 4, 32 + 4]);
  });

  it('ignores a single window out of line; two in a row start a new probe cycle at the base dwell', () => {
    const h = new HillClimber([1, 2, 3], 2, judge, 4);
    walk(h, 4, (v) => (v === 2 ? 10 : 20)); // home, probe up, home, probe down
    expect(h.settled).toBe(false);
    walk(h, 1, () => 10); // home again: settled
    expect(h.settled).toBe(true);
    walk(h, 1, () => 30); // one noisy window
    expect(h.settled).toBe(true);
    walk(h, 1, () => 10);
    walk(h, 2, () => 30); // a shift that persists
    expect(h.settled).toBe(false);
  });
});

describe('with a latency target and CPU time', () => {
  /** Each query of 100 items costs cpu(B) ms of CPU per item and takes latency(B) ms. */
  function run(o: Partial<SchedulerOptions>, windows: number, latency: (b: number) => number, cpuPerItem: (b: number) => number) {
    let cpu = 0;
    const s = new Scheduler({ mode: 'auto', batchSize: 16, percentile: 95, windowQueries: 20, windowMs: 50, targetMs: 100, cpuMs: () => cpu, ...o });
    const chosen: number[] = [];
    let t = 0;
    for (let w = 0; w < windows; w++) {
      for (let q = 0; q < 20; q++) {
        const b = s.decide(100).batchSize;
        cpu += cpuPerItem(b) * 100;
        t += 5;
        s.observe(latency(b), t, 100);
      }
      chosen.push(s.state().batchSize);
    }
    return { s, chosen };
  }
  // splitting costs a fixed 0.5 ms of CPU per part; small parts finish a query sooner on more cores
  const cpuPerItem = (b: number) => 1 + 0.5 / Math.min(b, 100);
  const latency = (scale: number) => (b: number) => scale * (Math.min(b, 100) / 100 + 0.2) + 0.5 * Math.ceil(100 / b);

  it('with headroom under the target, spends the least CPU per item: climbs to whole queries', () => {
    const { chosen, s } = run({}, 60, latency(30), cpuPerItem); // at most 36 ms + overheads: far under 100 ms
    expect(chosen.slice(-20).filter((b) => b >= 96).length).toBeGreaterThanOrEqual(14);
    expect(s.state().windowCpuPerItemMs).toBeGreaterThan(1);
  });

  it('when the tail nears the target, trades CPU for latency and settles at smaller parts', () => {
    const { chosen } = run({}, 80, latency(150), cpuPerItem); // whole queries take 180 ms: over the target
    const tail = chosen.slice(-20);
    expect(tail.filter((b) => b <= 48).length).toBeGreaterThanOrEqual(14);
  });
});
