// The operator's HTTP endpoints: liveness, readiness and metrics. Built apart from listening so tests drive it.
import express, { type Express } from 'express';
import type { Registry } from 'prom-client';

export interface HealthSource {
  /** Alive: the process can serve and its loops are not wedged (detail says which when not). */
  live(): { ok: boolean; detail: string };
  /** Ready: caches are synced (a standby replica that is not leading is still ready). */
  ready(): { ok: boolean; detail: string };
}

export function buildApp(health: HealthSource, registry: Registry): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    const l = health.live();
    res
      .status(l.ok ? 200 : 503)
      .type('text/plain')
      .send(l.ok ? 'ok\n' : `unhealthy: ${l.detail}\n`);
  });
  app.get('/readyz', (_req, res) => {
    const r = health.ready();
    res
      .status(r.ok ? 200 : 503)
      .type('text/plain')
      .send(`${r.detail}\n`);
  });
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return app;
}
