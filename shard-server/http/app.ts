// The shard-server's HTTP layer: the role's hot endpoint straight on node:http (fast.ts), and express for
// /healthz, /readyz and /metrics, the main's predict API (routes/main.ts) or the sparse shard's lookup API
// (routes/sparse.ts), with one error handler that turns every failure into the catalogue's reply. Inference code
// lives in ../inference and imports no web framework.
import type { IncomingMessage, RequestListener } from 'node:http';
import type { TLSSocket } from 'node:tls';
import express from 'express';
import { HEALTH_PATH, METRICS_PATH, READY_PATH } from '../../contracts/endpoints.js';
import { ErrorCode, ServeError } from '../../contracts/errors.js';
import type { Role } from '../../contracts/shard-server-args.js';
import type { Logger } from '../../lib/log.js';
import type { Limits } from '../inference/request.js';
import { Admission } from './admission.js';
import { errorHandler, notFound, replyError } from './error-handler.js';
import { fastPath } from './fast.js';
import type { ServerMetrics } from './metrics.js';
import { healthRoutes } from './routes/health.js';
import { mainRoutes, type MainState } from './routes/main.js';
import { sparseRoutes, type SparseState } from './routes/sparse.js';
import { tracker } from './track.js';

export type ServerState = MainState &
  SparseState & {
    /** Shutting down: replies close their connections. */
    stopping: boolean;
    notReady(expectedVersion?: string): string | undefined;
    /** Each readiness check by name: undefined when it passes, else why not (/readyz?verbose). */
    checks(expectedVersion?: string): [string, string | undefined][];
  };

export interface AppOptions {
  model: string;
  role: Role;
  /** A sparse shard's index: its own stages carry it in the `shard` label, so one shard's series can be selected. */
  shard?: number;
  limits: Limits;
  maxBodyBytes: number;
  maxJsonBytes: number;
  /** Admission control: requests worked on at once, and waiting. */
  maxInflight: number;
  maxQueue: number;
  /** The budget of a request that names none (TIMEOUT_HEADER). */
  deadlineMs: number;
  /** The clock deadlines are on (ms). */
  now: () => number;
  metrics: ServerMetrics;
  log: Logger;
  /** Testing: the service time of the emulated serial lane (track.ts); 0: off. */
  emulateServiceMs?: number;
  /** /metrics is served on a port of its own (metricsListener): not here. */
  metricsApart?: boolean;
  /** Served over mutual TLS: everything but the probes and /metrics needs a client certificate the CA signed. */
  clientCertificates?: boolean;
}

/** Paths open to callers without a client certificate: the kubelet's probes and Prometheus present none. */
const OPEN_PATHS = new Set([HEALTH_PATH, READY_PATH, METRICS_PATH]);

/** The request's path, without its query. */
const pathOf = (req: IncomingMessage) => (req.url ?? '').split('?')[0]!;

/** Why a request may not be served without a client certificate; undefined when it may. */
function certificateRefusal(req: IncomingMessage): ServeError | undefined {
  if (OPEN_PATHS.has(pathOf(req))) return undefined;
  const socket = req.socket as TLSSocket;
  if (socket.authorized) return undefined;
  const presented = Object.keys(socket.getPeerCertificate?.() ?? {}).length > 0;
  const why = presented ? `: ${String(socket.authorizationError ?? 'not trusted')}` : ': none was presented';
  return new ServeError(ErrorCode.ClientCertificateRequired, `this shard serves only callers with a certificate its model's CA signed${why}`);
}

/** The listener of a metrics port: GET /metrics and nothing else. */
export function metricsListener(metrics: ServerMetrics): RequestListener {
  return (req, res) => {
    if (req.method !== 'GET' || pathOf(req) !== METRICS_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: this port serves ${METRICS_PATH} only\n`);
      return;
    }
    void metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text));
  };
}

/** The server's request listener: the role's fast route (http/fast.ts), then express for everything else. */
export function buildServerApp(state: ServerState, o: AppOptions): RequestListener {
  const app = express();
  app.disable('x-powered-by');
  // No ETags: every predict and lookup answer is fresh, and hashing a megabyte of pooled rows per call is waste.
  app.set('etag', false);
  const shard = o.role === 'sparse' && o.shard !== undefined ? String(o.shard) : '';
  const admission = new Admission({ maxInflight: o.maxInflight, maxQueue: o.maxQueue, now: o.now });
  const track = tracker({ metrics: o.metrics, shard, admission, deadlineMs: o.deadlineMs, now: o.now, emulateServiceMs: o.emulateServiceMs ?? 0 });
  // a server shutting down tells each client to reconnect (elsewhere, through the Service) after this reply
  app.use((_req, res, next) => {
    if (state.stopping) res.setHeader('connection', 'close');
    next();
  });
  // probes and scrapes pass no admission control: they answer within milliseconds under any load
  healthRoutes(app, state, o.metricsApart ? undefined : o.metrics);
  const route =
    o.role === 'main' ? mainRoutes(app, state, o, track) : sparseRoutes(app, state, { shard, maxBodyBytes: o.maxBodyBytes, metrics: o.metrics }, track);
  app.use(notFound);
  app.use(errorHandler(o.metrics, o.log));
  const fast = fastPath(route, state, (e, req, res) => replyError(o.metrics, o.log, e, req, res));
  return (req, res) => {
    const refused = o.clientCertificates ? certificateRefusal(req) : undefined;
    if (refused) return replyError(o.metrics, o.log, refused, req, res);
    if (!fast(req, res)) void app(req, res);
  };
}
