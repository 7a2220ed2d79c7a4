// The one place errors become replies: the catalogue's status and {"error": {"code", "message"}} body
// (contracts/errors.ts), for errors the routes throw, errors express's body parser raises, and anything else
// (a 500, logged as an error; 4xx are logged at debug). A reply sent before the request's body was read closes
// the connection, so a refused upload is not drained; a client that went away is counted and gets nothing.
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ErrorCode, ServeError } from '../../contracts/errors.js';
import type { Logger } from '../../lib/log.js';
import type { ServerMetrics } from './metrics.js';

/** Maps body-parser and unknown errors into the catalogue. */
export function toServeError(err: unknown): ServeError {
  if (err instanceof ServeError) return err;
  const type = (err as { type?: string }).type;
  if (type === 'entity.parse.failed') return new ServeError(ErrorCode.InvalidJson, `body is not valid JSON: ${(err as Error).message}`);
  if (type === 'entity.too.large') return new ServeError(ErrorCode.BodyTooLarge, `body exceeds the limit of ${(err as { limit?: number }).limit} bytes`);
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return new ServeError(ErrorCode.UnsupportedMediaType, (err as Error).message);
  if (type === 'request.aborted' || type === 'request.size.invalid' || (err as { status?: number }).status === 400)
    return new ServeError(ErrorCode.InvalidRequest, (err as Error).message);
  return new ServeError(ErrorCode.Internal, (err as Error)?.message ?? String(err));
}

/** Anything no route took. */
export const notFound: RequestHandler = (_req, _res, next) => next(new ServeError(ErrorCode.NotFound, 'no such endpoint'));

export function errorHandler(metrics: ServerMetrics, log: Logger): ErrorRequestHandler {
  // express tells error handlers by their four parameters
  return (err, req, res, _next) => {
    const e = toServeError(err);
    metrics.errors.inc({ ...metrics.labels, code: e.kind.code });
    if (e.kind === ErrorCode.ClientClosed || res.headersSent) {
      if (!res.writableEnded) res.destroy();
      return;
    }
    // a shed is policy, not a failure: thousands a second under overload would flood the log
    if (e.status >= 500 && e.kind !== ErrorCode.Overloaded) log.error('request failed', { code: e.kind.code, error: e.message });
    else log.debug('request rejected', { code: e.kind.code, error: e.message });
    // an unread body is not drained: the connection closes after this reply (a shed request's small body is)
    if (!req.complete && e.kind !== ErrorCode.Overloaded) res.setHeader('connection', 'close');
    res.status(e.status).json(e.body());
  };
}
