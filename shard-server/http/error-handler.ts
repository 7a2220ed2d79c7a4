// The one place errors become replies: the catalogue's status and {"error": {"code", "message"}} body
// (contracts/errors.ts), for errors the routes throw, errors express's body parser raises, and anything else
// (a 500, logged as an error; 4xx are logged at debug). A reply sent before the request's body was read is
// followed by a bounded linger: what the client still sends is discarded (never buffered) for at most LINGER_MS
// and LINGER_BYTES, and a body that needs more costs its connection. Closing at once would reset a connection
// whose unread bytes are still arriving, and the client would lose the reply. A client that went away is counted
// and gets nothing.
import type { IncomingMessage, ServerResponse } from 'node:http';
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

export const LINGER_MS = 1000;
export const LINGER_BYTES = 64 * 2 ** 20;

/** Discards the rest of a refused body, within bounds; a body that takes longer or is larger costs its connection. */
function linger(req: IncomingMessage): void {
  let left = LINGER_BYTES;
  const cut = () => req.socket.destroy();
  const timer = setTimeout(cut, LINGER_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    left -= chunk.length;
    if (left < 0) cut();
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.resume();
}

/** Anything no route took. */
export const notFound: RequestHandler = (_req, _res, next) => next(new ServeError(ErrorCode.NotFound, 'no such endpoint'));

/** The error's reply on a plain node:http response (the fast path's, and express's through errorHandler). */
export function replyError(metrics: ServerMetrics, log: Logger, err: unknown, req: IncomingMessage, res: ServerResponse): void {
  const e = toServeError(err);
  metrics.errors.inc({ ...metrics.labels, code: e.kind.code });
  if (e.kind === ErrorCode.ClientClosed || res.headersSent) {
    if (!res.writableEnded) res.destroy();
    return;
  }
  // a shed is policy, not a failure: thousands a second under overload would flood the log
  if (e.status >= 500 && e.kind !== ErrorCode.Overloaded) log.error('request failed', { code: e.kind.code, error: e.message });
  else log.debug('request rejected', { code: e.kind.code, error: e.message });
  if (!req.complete) linger(req);
  const body = Buffer.from(JSON.stringify(e.body()));
  res.writeHead(e.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
  res.end(body);
}

export function errorHandler(metrics: ServerMetrics, log: Logger): ErrorRequestHandler {
  // express tells error handlers by their four parameters
  return (err, req, res, _next) => replyError(metrics, log, err, req, res);
}
