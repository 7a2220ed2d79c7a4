// The sparse role's one route: binary lookups (contracts/wire/lookup.ts) answered from this shard's tables.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Router } from 'express';
import { LOOKUP_PATH } from '../../../contracts/endpoints.js';
import { ErrorCode, ServeError } from '../../../contracts/errors.js';
import { LOOKUP_CONTENT_TYPE } from '../../../contracts/wire/lookup.js';
import { BufferPool } from '../../inference/buffer-pool.js';
import type { LookupService } from '../../inference/lookup-service.js';
import { readBody } from '../buffers.js';
import type { FastRoute } from '../fast.js';
import type { ServerMetrics } from '../metrics.js';
import type { RequestScope, Track } from '../track.js';

export interface SparseState {
  /** Set once the tables are loaded. */
  lookup?: LookupService;
  notReady(): string | undefined;
}

/** The lookup route on express, and the same as the fast route the server takes first (http/fast.ts). */
export function sparseRoutes(app: Router, state: SparseState, o: { shard: string; maxBodyBytes: number; metrics: ServerMetrics }, track: Track): FastRoute {
  const m = o.metrics;
  const buffers = new BufferPool();
  const lookupStage = m.stage('lookup', o.shard);
  const binary = (req: Request) => req.is(LOOKUP_CONTENT_TYPE);
  const handle = async (req: IncomingMessage, res: ServerResponse, scope: RequestScope) => {
    const svc = state.lookup;
    if (!svc) throw new ServeError(ErrorCode.NotReady, state.notReady() ?? 'not ready');
    const body = await readBody(req, buffers, o.maxBodyBytes, scope.signal);
    // the main has given up on a lookup whose budget is spent: no rows are pooled for nobody
    if (scope.signal.aborted) {
      buffers.release(body);
      throw scope.signal.reason;
    }
    const t = performance.now();
    let out: ReturnType<LookupService['handle']>;
    try {
      out = svc.handle(body, (bytes) => buffers.acquire(bytes));
    } finally {
      buffers.release(body);
    }
    lookupStage.observe((performance.now() - t) / 1000);
    m.own.batch.observe(out.batch);
    m.own.lookups.inc(out.lookups);
    // the response buffer goes back to the pool once the socket is done with it
    let released = false;
    const release = () => {
      if (!released) buffers.release(out.response);
      released = true;
    };
    res.once('finish', release);
    res.once('close', release);
    res.writeHead(200, { 'content-type': LOOKUP_CONTENT_TYPE, 'content-length': out.response.byteLength });
    res.end(Buffer.from(out.response.buffer, out.response.byteOffset, out.response.byteLength));
  };
  app.post(
    LOOKUP_PATH,
    (req, _res, next) => next(binary(req) ? undefined : new ServeError(ErrorCode.UnsupportedMediaType, `content-type must be ${LOOKUP_CONTENT_TYPE}`)),
    track(handle),
  );
  return { path: LOOKUP_PATH, contentType: LOOKUP_CONTENT_TYPE, handle: track(handle) };
}
