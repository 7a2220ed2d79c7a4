// The main's client of a shard with several replicas: balancing, hedging of slow calls (first answer wins, at
// most HEDGE_BUDGET extra calls), failover of a replica that is down. The replicas are real HTTP servers in this
// process serving the sparse role's app over tables in memory; one can be told to hold its answers.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { versionWord, type LookupVersion } from '../../../contracts/wire/versions.js';
import { realClock } from '../../../lib/clock.js';
import { silentLogger } from '../../../lib/log.js';
import { buildServerApp, type ServerState } from '../../../shard-server/http/app.js';
import { ServerMetrics } from '../../../shard-server/http/metrics.js';
import { HEDGE_BUDGET, HEDGE_BURST, HEDGE_MIN_SAMPLES, HedgeBudget, LatencyWindow } from '../../../shard-server/inference/hedging.js';
import { LookupService } from '../../../shard-server/inference/lookup-service.js';
import { ShardClient } from '../../../shard-server/inference/shard-client.js';
import type { EmbeddingTable } from '../../../shard-server/model/load.js';

const version: LookupVersion = { plan: versionWord('0a1b2c3d'), artifact: versionWord('5eed0f00') };
const limits = { maxBatch: 64, maxIndicesPerSample: 16 };
const serving = { maxJsonBytes: 1 << 16, maxInflight: 64, maxQueue: 64, deadlineMs: 5000, now: () => Date.now() };
const lookups = [{ table: 3, pooling: 'sum' as const, offsets: Uint32Array.of(0, 1), indices: Uint32Array.of(2) }];

function table(rows: number, dim: number): EmbeddingTable {
  const data = Float32Array.from({ length: rows * dim }, (_, i) => 3000 + i);
  return { index: 3, meta: { name: 't3', rows, dim, dtype: 'fp32', net: 'n', poolingFactor: 1, file: '', sha256: '', bytes: rows * dim * 4 }, data };
}

/** A replica of shard 0: counts its lookups; while holdMs > 0 it answers each that late. */
interface Replica {
  url: string;
  served: number;
  holdMs: number;
  server: Server;
}

async function replica(host = '127.0.0.1', port = 0): Promise<Replica> {
  const state: ServerState = { stopping: false, notReady: () => undefined, checks: () => [] };
  state.lookup = new LookupService(new Map([['t3', table(10, 4)]]), limits.maxBatch, version, limits.maxIndicesPerSample);
  const app = buildServerApp(state, {
    model: 'm',
    role: 'sparse',
    shard: 0,
    limits,
    maxBodyBytes: 1 << 16,
    ...serving,
    metrics: new ServerMetrics('m', 'sparse'),
    log: silentLogger,
  });
  const r = { url: '', served: 0, holdMs: 0 } as Replica;
  r.server = createServer((req, res) => {
    if (req.url !== '/v1/lookup') return app(req, res);
    r.served++;
    if (r.holdMs > 0) setTimeout(() => app(req, res), r.holdMs);
    else app(req, res);
  });
  await new Promise<void>((done) => r.server.listen(port, host, () => done()));
  r.url = `http://${host}:${(r.server.address() as AddressInfo).port}`;
  return r;
}

describe('the hedge threshold and budget', () => {
  it('is the percentile of the recent window, unknown before HEDGE_MIN_SAMPLES', () => {
    const w = new LatencyWindow(95);
    for (let i = 1; i < HEDGE_MIN_SAMPLES; i++) w.add(i);
    expect(w.threshold()).toBeUndefined();
    for (let i = HEDGE_MIN_SAMPLES; i <= 100; i++) w.add(i);
    expect(w.threshold()).toBe(95);
    // numbers sort as numbers (10 after 9), and the window forgets the oldest
    for (let i = 0; i < 512; i++) w.add(i % 2 ? 10 : 9);
    expect(w.threshold()).toBe(10);
  });

  it('allows at most HEDGE_BUDGET hedges per call, HEDGE_BURST at once', () => {
    const b = new HedgeBudget();
    let taken = 0;
    for (let i = 0; i < 10_000; i++) {
      b.earn();
      if (b.take()) taken++;
    }
    expect(taken).toBe(Math.floor(10_000 * HEDGE_BUDGET));
    const idle = new HedgeBudget();
    for (let i = 0; i < 10_000; i++) idle.earn();
    let burst = 0;
    while (idle.take()) burst++;
    expect(burst).toBe(HEDGE_BURST);
  });
});

describe('a shard with two replicas', () => {
  let a: Replica;
  let b: Replica;
  const deadline = () => Date.now() + 5_000;
  const client = (hedgePercentile: number, events: string[] = []) =>
    new ShardClient({
      shard: 0,
      endpoint: a.url,
      replicas: [a.url, b.url],
      tables: [3],
      clock: realClock,
      version,
      hedgePercentile,
      onHedge: (e) => events.push(e),
    });

  beforeAll(async () => {
    [a, b] = await Promise.all([replica(), replica()]);
  });
  afterAll(async () => {
    await Promise.all([a, b].map((r) => new Promise((done) => r.server.close(done))));
  });
  const reset = () => {
    for (const r of [a, b]) [r.served, r.holdMs] = [0, 0];
  };

  it('spreads concurrent calls over both and answers the rows', async () => {
    reset();
    const c = client(95);
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all(Array.from({ length: 8 }, () => c.lookup({ batch: 1, lookups }, deadline())));
      for (const [out] of answers) expect(Array.from(out!.values)).toEqual([3008, 3009, 3010, 3011]);
    }
    c.stop();
    expect(a.served + b.served).toBeGreaterThanOrEqual(80);
    expect(Math.min(a.served, b.served)).toBeGreaterThanOrEqual(20);
  });

  it('re-sends a call the slow replica holds to the other, which wins; no more than the budget', async () => {
    reset();
    const events: string[] = [];
    const c = client(95, events);
    for (let i = 0; i < 100; i++) await c.lookup({ batch: 1, lookups }, deadline());
    // replica a now holds every answer 400 ms: calls that go there are hedged to b after the p95 of ~1 ms
    a.holdMs = 400;
    const before = { a: a.served, b: b.served };
    const took: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t0 = Date.now();
      await Promise.all([0, 1].map(() => c.lookup({ batch: 1, lookups }, deadline())));
      took.push(Date.now() - t0);
      // spread over a second and more, so that the balancer tries the slow replica again as its memory fades
      await new Promise((r) => setTimeout(r, 30));
    }
    c.stop();
    const sent = events.filter((e) => e === 'sent').length;
    const won = events.filter((e) => e === 'won').length;
    // 180 calls earn 9 hedges at most (HEDGE_BUDGET); a hedge can lose (a slow call of b's re-sent to a)
    expect(sent).toBeLessThanOrEqual(Math.floor(180 * HEDGE_BUDGET));
    expect(won).toBeGreaterThan(0);
    // the balancer leaves the slow replica alone once it has seen it: most pairs never wait for it
    expect(took.filter((t) => t >= 400).length).toBeLessThan(10);
    expect(b.served - before.b).toBeGreaterThan(5 * (a.served - before.a));
  });

  it('never hedges with hedging off', async () => {
    reset();
    const events: string[] = [];
    const c = client(0, events);
    for (let i = 0; i < 60; i++) await c.lookup({ batch: 1, lookups }, deadline());
    a.holdMs = 200;
    await Promise.all([0, 1, 2, 3].map(() => c.lookup({ batch: 1, lookups }, deadline())));
    c.stop();
    expect(events).toEqual([]);
  });

  it('fails over from a replica that is gone, and the shard stays up', async () => {
    reset();
    const gone = await replica();
    await new Promise((done) => gone.server.close(done));
    const c = new ShardClient({ shard: 0, endpoint: gone.url, replicas: [gone.url, b.url], tables: [3], clock: realClock, version, hedgePercentile: 95 });
    for (let i = 0; i < 20; i++) await c.lookup({ batch: 1, lookups }, deadline());
    expect(c.up).toBe(true);
    expect(b.served).toBe(20);
    c.stop();
  });
});

describe('a shard whose endpoint names several addresses (a headless Service)', () => {
  it('spreads calls over the addresses its name resolves to, and follows them as they change', async () => {
    const one = await replica('127.0.0.1');
    const port = Number(new URL(one.url).port);
    const two = await replica('127.0.0.2', port);
    let addresses = ['127.0.0.2', '127.0.0.1'];
    const seen: number[] = [];
    const c = new ShardClient({
      shard: 0,
      endpoint: `http://shard-0.ns.svc:${port}`,
      tables: [3],
      clock: realClock,
      version,
      resolve: async (host) => (host === 'shard-0.ns.svc' ? addresses : []),
      onReplicas: (n) => seen.push(n),
    });
    c.startProbe(50, () => {});
    await expect.poll(() => c.replicaCount).toBe(2);
    const round = () => Promise.all(Array.from({ length: 8 }, () => c.lookup({ batch: 1, lookups }, Date.now() + 5000)));
    for (let i = 0; i < 10; i++) await round();
    expect(Math.min(one.served, two.served)).toBeGreaterThanOrEqual(20);
    // a pod leaves the Service: its address leaves the name, and the calls follow within a probe
    addresses = ['127.0.0.2'];
    await expect.poll(() => c.replicaCount).toBe(1);
    const before = one.served;
    for (let i = 0; i < 5; i++) await round();
    expect(one.served).toBe(before);
    // a failed or empty lookup keeps what was known
    addresses = [];
    await new Promise((r) => setTimeout(r, 150));
    expect(c.replicaCount).toBe(1);
    expect(seen).toEqual([2, 1]);
    c.stop();
    await Promise.all([one, two].map((r) => new Promise((done) => r.server.close(done))));
  });
});
