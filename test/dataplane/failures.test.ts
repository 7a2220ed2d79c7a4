// A sparse shard killed or frozen mid-traffic: the main answers every request within its deadline (an error or
// zero embeddings, per policy; never a hang), stays ready itself, reports the shard on /readyz?verbose and in
// metrics, and recovers by itself when the shard returns.
import { afterEach, describe, expect, it } from 'vitest';
import { serveLocal, type LocalDeployment } from '../../cli/local.js';
import { readManifest, modelSource } from '../../shard-server/model/load.js';
import { randomRequest, zooRecModel } from './helpers.js';

const DEADLINE_MS = 1000;
let d: LocalDeployment | undefined;

afterEach(async () => {
  await d?.stop();
  d = undefined;
});

async function timed(url: string, body: unknown) {
  const t = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as any, ms: performance.now() - t };
}

const readyz = async (url: string, query = '') => {
  const res = await fetch(`${url}/readyz${query}`);
  return { status: res.status, text: await res.text() };
};

async function until<T>(what: string, fn: () => Promise<T | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function deploy(policy: 'fail' | 'zero') {
  d = await serveLocal(zooRecModel('wide-and-deep', `wnd-${policy}`, { strategy: 'load-balanced', shards: 2 }), {
    scale: 0.001,
    seed: 5,
    failurePolicy: policy,
    deadlineMs: DEADLINE_MS,
  });
  const m = await readManifest(modelSource(d.modelDir));
  return { d, request: randomRequest(m, 8, 99) };
}

describe('a sparse shard dies', () => {
  it('fail policy: every request gets a prompt 503, /readyz and metrics say which shard, and it recovers', async () => {
    const { d, request } = await deploy('fail');
    const ok = await timed(d.predictUrl, request);
    expect(ok.status).toBe(200);

    const restart = await d.kill('shard-1');
    for (let i = 0; i < 20; i++) {
      const r = await timed(d.predictUrl, request);
      expect(r.status).toBe(503);
      expect(r.json.error.code).toBe('SHARD_UNAVAILABLE');
      expect(r.json.error.message).toContain('shard 1');
      expect(r.ms).toBeLessThan(DEADLINE_MS); // prompt: it never waits for the deadline
    }
    // the main stays ready (its own readiness: one shard down must not empty its Service); the detail says which
    const down = await until('shard 1 reported down', async () => {
      const r = await readyz(d.mainUrl, '?verbose');
      return r.text.includes('[-]shard-1 failed') && r;
    });
    expect(down.status).toBe(200);
    expect(down.text).toMatch(/^\[\+\]shard-0 ok$/m);
    expect(down.text).toMatch(/^\[-\]shard-1 failed: http:\/\/127\.0\.0\.1:\d+ unreachable: .+ \(answers degrade; the main stays ready\)$/m);
    expect(down.text).toMatch(/readyz check passed\n$/);
    const metrics = await (await fetch(`${d.mainUrl}/metrics`)).text();
    expect(metrics).toMatch(/^recshard_shard_up\{model="wnd-fail",shard="1"\} 0$/m);
    expect(metrics).toMatch(/^recshard_shard_up\{model="wnd-fail",shard="0"\} 1$/m);
    expect(metrics).toMatch(/^recshard_errors_total\{model="wnd-fail",role="main",code="SHARD_UNAVAILABLE"\} 20$/m);

    await restart();
    await until('shard 1 back', async () => (await readyz(d.mainUrl, '?verbose')).text.includes('[+]shard-1 ok'));
    const back = await timed(d.predictUrl, request);
    expect(back.status).toBe(200);
    expect(back.json.scores).toEqual(ok.json.scores);
  });

  it('zero policy: requests succeed with zero embeddings for the lost shard and are counted', async () => {
    const { d, request } = await deploy('zero');
    const ok = await timed(d.predictUrl, request);
    await d.kill('shard-0');
    const r = await timed(d.predictUrl, request);
    expect(r.status).toBe(200);
    expect(r.json.degraded).toEqual({ zeroEmbeddingShards: [0] });
    expect(r.json.scores).not.toEqual(ok.json.scores);
    expect(r.ms).toBeLessThan(DEADLINE_MS); // prompt: it never waits for the deadline
    expect(await (await fetch(`${d.mainUrl}/metrics`)).text()).toMatch(/^recshard_fallbacks_total\{model="wnd-zero",shard="0"\} 1$/m);
  });
});

describe('a sparse shard hangs', () => {
  it('a frozen shard costs at most the deadline, then answers resume when it thaws', async () => {
    const { d, request } = await deploy('fail');
    const shard = d.processes.find((p) => p.name === 'shard-1')!;
    shard.proc.kill('SIGSTOP');
    try {
      const rs = await Promise.all(Array.from({ length: 5 }, () => timed(d.predictUrl, request)));
      for (const r of rs) {
        expect(r.status).toBe(504);
        expect(r.json.error.code).toBe('DEADLINE_EXCEEDED');
        // the main waited for the deadline and no longer: the bound leaves room for a loaded CI machine
        // (five concurrent requests, other test files running) yet is far from a hang
        expect(r.ms).toBeGreaterThanOrEqual(DEADLINE_MS - 5);
        expect(r.ms).toBeLessThan(DEADLINE_MS * 2);
      }
    } finally {
      shard.proc.kill('SIGCONT');
    }
    await until('answers resume', async () => (await timed(d.predictUrl, request)).status === 200);
  });
});

describe('shutdown', () => {
  it('SIGTERM drains the request in flight before the main exits', async () => {
    const { d, request } = await deploy('fail');
    const shard = d.processes.find((p) => p.name === 'shard-0')!;
    const main = d.processes.find((p) => p.name === 'main')!;
    const exited = new Promise<number | null>((r) => main.proc.once('exit', (code) => r(code)));
    shard.proc.kill('SIGSTOP');
    const inFlight = timed(d.predictUrl, request);
    await new Promise((r) => setTimeout(r, 100));
    main.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    shard.proc.kill('SIGCONT');
    const r = await inFlight;
    expect(r.status).toBe(200);
    expect(await exited).toBe(0);
  });
});

describe('fan-out', () => {
  it('calls only the shards that hold the tables a request names', async () => {
    const { d, request } = await deploy('fail');
    const onShard0 = d.plan.shards[0]!.tables;
    const only0 = { dense: request.dense, sparse: Object.fromEntries(Object.entries(request.sparse).filter(([name]) => onShard0.includes(name))) };
    // with shard 1 gone, a request that needs only shard 0 still succeeds: shard 1 is never called
    await d.kill('shard-1');
    const r = await timed(d.predictUrl, only0);
    expect(r.status).toBe(200);
    const metrics = await (await fetch(`${d.mainUrl}/metrics`)).text();
    expect(metrics).toMatch(/^recshard_request_duration_seconds_count\{model="wnd-fail",role="main",stage="shard_call",shard="0"\} 1$/m);
    expect(metrics).not.toMatch(/stage="shard_call",shard="1"/);
    expect((await timed(d.predictUrl, request)).status).toBe(503);
  });
});
