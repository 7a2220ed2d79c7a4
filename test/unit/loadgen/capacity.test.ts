import { describe, expect, it } from 'vitest';
import { findCapacity } from '../../../loadgen/capacity.js';

/** An M/M/1-like server: latency grows without bound as the load nears its capacity. */
const server = (capacityQps: number, baseMs: number) => async (qps: number) => ({
  latencyMs: qps >= capacityQps ? 1e9 : baseMs / (1 - qps / capacityQps),
  errors: 0,
});

describe('findCapacity', () => {
  it('finds the highest QPS under the target within the precision', async () => {
    // latency = 10 / (1 - q/500) <= 40  <=>  q <= 375
    const r = await findCapacity({ targetMs: 40, startQps: 10, precision: 1.05, maxLevels: 30, measure: server(500, 10) });
    expect(r.qps).toBeLessThanOrEqual(375);
    expect(r.qps).toBeGreaterThan(375 / 1.05);
    expect(r.levels.filter((l) => l.pass).every((l) => l.qps <= r.qps)).toBe(true);
    expect(r.levels.some((l) => !l.pass && l.qps <= 375 * 1.05)).toBe(true);
  });

  it('treats errors as failing the level', async () => {
    const r = await findCapacity({
      targetMs: 100,
      startQps: 8,
      precision: 1.1,
      maxLevels: 20,
      measure: async (q) => ({ latencyMs: 1, errors: q > 50 ? 1 : 0 }),
    });
    expect(r.qps).toBeLessThanOrEqual(50);
    expect(r.qps).toBeGreaterThan(45);
  });

  it('reports 0 when the first level already misses the target, and respects maxLevels', async () => {
    const r = await findCapacity({ targetMs: 1, startQps: 10, precision: 1.01, maxLevels: 4, measure: async () => ({ latencyMs: 5, errors: 0 }) });
    expect(r.qps).toBe(0);
    expect(r.levels).toHaveLength(4);
  });
});
