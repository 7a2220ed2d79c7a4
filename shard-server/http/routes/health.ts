// Liveness, readiness (what the server waits for, or which file is bad) and the Prometheus scrape, in both roles.
// `/readyz?verbose` lists every check, passing or not, in the Kubernetes API server's format ([+]name ok,
// [-]name failed: why): the main's shards are reported there without making the main itself unready.
import type { Router } from 'express';
import { HEALTH_PATH, METRICS_PATH, READY_PATH, VERSION_HEADER } from '../../../contracts/endpoints.js';
import type { ServerMetrics } from '../metrics.js';

export interface Readiness {
  /** Why the server is not ready, or not ready as the version a prober asks for (VERSION_HEADER). */
  notReady(expectedVersion?: string): string | undefined;
  /** Every check by name: undefined when it passes, else why not. */
  checks(expectedVersion?: string): [string, string | undefined][];
}

/** `metrics` absent: the scrape is served on a port of its own (http/app.ts metricsListener). */
export function healthRoutes(app: Router, state: Readiness, metrics: ServerMetrics | undefined): void {
  app.get(HEALTH_PATH, (_req, res) => void res.type('text/plain').send('ok\n'));
  app.get(READY_PATH, (req, res) => {
    const expected = req.get(VERSION_HEADER);
    const why = state.notReady(expected);
    // ready, but as another version than the prober needs: 409, so a main tells skew from a shard that is down
    const skewed = why !== undefined && state.checks(expected).some(([name, fault]) => name === 'version' && fault !== undefined);
    res.status(why ? (skewed ? 409 : 503) : 200).type('text/plain');
    if (req.query.verbose === undefined) return void res.send(why ? `${why}\n` : 'ok\n');
    const lines = state.checks(expected).map(([name, fault]) => (fault ? `[-]${name} failed: ${fault}` : `[+]${name} ok`));
    res.send(`${lines.join('\n')}\n${why ? `readyz check failed: ${why}` : 'readyz check passed'}\n`);
  });
  if (metrics) app.get(METRICS_PATH, async (_req, res) => void res.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
}
