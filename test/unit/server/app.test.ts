import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../operator/server/app.js';
import { OperatorMetrics } from '../../../operator/server/metrics.js';

let ready = false;
let live = { ok: true, detail: '' };
const metrics = new OperatorMetrics();
const app = buildApp({ live: () => live, ready: () => ({ ok: ready, detail: ready ? 'ok' : 'caches not synced' }) }, metrics.registry);
let server: ReturnType<typeof app.listen>;
let base = '';

beforeAll(async () => {
  await new Promise<void>((r) => {
    server = app.listen(0, '127.0.0.1', () => r());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => void server.close());

describe('operator HTTP endpoints', () => {
  it('/healthz answers ok, and 503 with the reason when the loop is wedged', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    live = { ok: false, detail: 'reconcile of ns/m has run for 301 s' };
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('unhealthy: reconcile of ns/m has run for 301 s\n');
    live = { ok: true, detail: '' };
  });

  it('/readyz follows cache sync', async () => {
    ready = false;
    let res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('caches not synced');
    ready = true;
    res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
  });

  it('/metrics exposes reconcile, queue and leader metrics with unit suffixes', async () => {
    metrics.reconcileDuration.observe({ result: 'success' }, 0.02);
    metrics.reconcileErrors.inc({ reason: 'http_409' });
    metrics.queueDepth.set(3);
    const body = await (await fetch(`${base}/metrics`)).text();
    expect(body).toMatch(/^recshard_operator_reconcile_duration_seconds_bucket\{le="0.025",result="success"\} 1$/m);
    expect(body).toMatch(/^recshard_operator_reconcile_errors_total\{reason="http_409"\} 1$/m);
    expect(body).toMatch(/^recshard_operator_workqueue_depth 3$/m);
    expect(body).toMatch(/^recshard_operator_leader 0$/m);
  });
});
