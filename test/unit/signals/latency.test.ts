import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mergeRates, parseBuckets, PrometheusSource, quantileMs, ScrapeSource, totalRate } from '../../../operator/signals/latency.js';
import { ServerMetrics } from '../../../shard-server/http/metrics.js';

describe('latency from histogram buckets', () => {
  const r = { le: [0.01, 0.025, 0.05, 0.1, Infinity], rate: [10, 30, 40, 50, 50] };
  it('interpolates within the bucket as histogram_quantile does', () => {
    expect(quantileMs(r, 0.5)).toBeCloseTo(21.25, 6);
    expect(quantileMs(r, 0.99)).toBeCloseTo(97.5, 6);
    expect(quantileMs({ le: r.le, rate: [0, 0, 0, 0, 10] }, 0.95)).toBe(100); // in +Inf: the last finite bound
    expect(quantileMs({ le: r.le, rate: [0, 0, 0, 0, 0] }, 0.95)).toBeUndefined();
  });

  it('merges pods by adding their rates', () => {
    const m = mergeRates([r, { le: r.le, rate: [0, 0, 0, 50, 50] }])!;
    expect(m.rate).toEqual([10, 30, 40, 100, 100]);
    expect(totalRate(m)).toBe(100);
    expect(mergeRates([])).toBeUndefined();
  });

  it("builds one PromQL query per component, by pod (and shard for the main's calls)", () => {
    const q = {
      namespace: 'ml',
      model: 'rmc2',
      role: 'main' as const,
      stage: 'shard_call' as const,
      windowMs: 60_000,
      port: 8080,
      pods: [{ name: 'rmc2-main-abc' }, { name: 'rmc2-main-def' }],
    };
    expect(PrometheusSource.promql(q)).toBe(
      'sum by (pod, shard, le) (rate(recshard_request_duration_seconds_bucket{' +
        'namespace="ml",model="rmc2",role="main",stage="shard_call",pod=~"rmc2-main-abc|rmc2-main-def"}[60s]))',
    );
  });
});

describe('the scrape fallback, against a shard-server metrics registry over HTTP', () => {
  const metrics = new ServerMetrics('rmc2', 'main');
  let server: Server;
  let port = 0;
  let now = 0;
  beforeAll(async () => {
    server = createServer(async (_req, res) => res.end(await metrics.registry.metrics()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('parses the exposition format by stage and shard', async () => {
    metrics.duration.observe({ model: 'rmc2', role: 'main', stage: 'end_to_end', shard: '' }, 0.03);
    metrics.duration.observe({ model: 'rmc2', role: 'main', stage: 'shard_call', shard: '1' }, 0.02);
    const text = await metrics.registry.metrics();
    const e2e = parseBuckets(text, { model: 'rmc2', role: 'main', stage: 'end_to_end' }).get('')!;
    expect(e2e.at(-1)).toEqual({ le: Infinity, count: 1 });
    expect(e2e.find((b) => b.le === 0.025)!.count).toBe(0);
    expect(e2e.find((b) => b.le === 0.05)!.count).toBe(1);
    expect([...parseBuckets(text, { model: 'rmc2', role: 'main', stage: 'shard_call' }).keys()]).toEqual(['1']);
    expect(parseBuckets(text, { model: 'other', role: 'main', stage: 'end_to_end' }).size).toBe(0);
  });

  it('differences two scrapes into per-second bucket rates; the first read has nothing to compare', async () => {
    const source = new ScrapeSource(() => now);
    const q = {
      namespace: 'ml',
      model: 'rmc2',
      role: 'main' as const,
      stage: 'end_to_end' as const,
      windowMs: 60_000,
      port,
      pods: [{ name: 'rmc2-main-0', ip: '127.0.0.1' }],
    };
    now = 0;
    expect(await source.read(q)).toBeUndefined();
    for (let i = 0; i < 20; i++) metrics.duration.observe({ model: 'rmc2', role: 'main', stage: 'end_to_end', shard: '' }, 0.15);
    now = 10_000;
    const r = (await source.read(q))!.get('rmc2-main-0')!;
    expect(totalRate(r)).toBeCloseTo(2, 6); // 20 requests in 10 s
    expect(quantileMs(r, 0.95)).toBeGreaterThan(100);
    expect(quantileMs(r, 0.95)).toBeLessThanOrEqual(200);
  });

  it('a pod that does not answer is missing, not zero', async () => {
    const source = new ScrapeSource(() => now);
    const q = {
      namespace: 'ml',
      model: 'rmc2',
      role: 'main' as const,
      stage: 'end_to_end' as const,
      windowMs: 60_000,
      port: 1,
      pods: [{ name: 'rmc2-main-0', ip: '127.0.0.1' }],
    };
    expect(await source.read(q)).toBeUndefined();
  });
});
