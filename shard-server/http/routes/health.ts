// Liveness, readiness (what the server waits for, or which file is bad) and the Prometheus scrape, in both roles.
import type { Router } from 'express';
import { HEALTH_PATH, METRICS_PATH, READY_PATH, VERSION_HEADER } from '../../../contracts/endpoints.js';
import type { ServerMetrics } from '../metrics.js';

/** notReady(expected): why the server is not ready, or not ready as the version a prober asks for (VERSION_HEADER). */
export function healthRoutes(app: Router, notReady: (expected?: string) => string | undefined, metrics: ServerMetrics): void {
  app.get(HEALTH_PATH, (_req, res) => void res.type('text/plain').send('ok\n'));
  app.get(READY_PATH, (req, res) => {
    const why = notReady(req.get(VERSION_HEADER));
    res
      .status(why ? 503 : 200)
      .type('text/plain')
      .send(why ? `${why}\n` : 'ok\n');
  });
  app.get(METRICS_PATH, async (_req, res) => void res.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
}
