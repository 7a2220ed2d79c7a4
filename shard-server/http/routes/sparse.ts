// The sparse role's one route: binary lookups (contracts/wire/lookup.ts) answered from this shard's tables.
import type { Request, Router } from 'express';
import { LOOKUP_PATH } from '../../../contracts/endpoints.js';
import { ErrorCode, ServeError } from '../../../contracts/errors.js';
import { LOOKUP_CONTENT_TYPE } from '../../../contracts/wire/lookup.js';
import { BufferPool } from '../../inference/buffer-pool.js';
import type { LookupService } from '../../inference/lookup-service.js';
import { readBody } from '../buffers.js';
import type { ServerMetrics } from '../metrics.js';
import type { Track } from '../track.js';

export interface SparseState {
  /** Set once the tables are loaded. */
  lookup?: LookupService;
  notReady(): string | undefined;
}

export function sparseRoutes(app: Router, state: SparseState, o: { shard: string; maxBodyBytes: number; metrics: ServerMetrics }, track: Track): void {
  const m = o.metrics;
  const buffers = new BufferPool();
  const binary = (req: Request) => req.is(LOOKUP_CONTENT_TYPE);
  app.post(
    LOOKUP_PATH,
    (req, _res, next) => next(binary(req) ? undefined : new ServeError(ErrorCode.UnsupportedMediaType, `content-type must be ${LOOKUP_CONTENT_TYPE}`)),
    track(async (req, res, scope) => {
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
      m.duration.observe({ ...m.labels, stage: 'lookup', shard: o.shard }, (performance.now() - t) / 1000);
      m.batch.observe(m.labels, out.batch);
      m.lookups.inc(m.labels, out.lookups);
      // the response buffer goes back to the pool once the socket is done with it
      let released = false;
      const release = () => {
        if (!released) buffers.release(out.response);
        released = true;
      };
      res.once('finish', release);
      res.once('close', release);
      res.type(LOOKUP_CONTENT_TYPE).send(Buffer.from(out.response.buffer, out.response.byteOffset, out.response.byteLength));
    }),
  );
}
