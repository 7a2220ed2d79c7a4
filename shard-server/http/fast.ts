// The hot endpoint of each role (the main's binary predict, a shard's lookup) served straight from node:http,
// before express: the same handler under the same request life (track.ts) and the same error replies, without
// express's per-request routing, request/response decoration and middleware stack (about a tenth of a request's
// CPU on the main). Anything else, including the same path with another method, content type or a query
// string, goes on to express, which serves it as before.
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface FastRoute {
  /** The exact request path (no query string). */
  path: string;
  /** The exact content-type (parameters send the request on to express). */
  contentType: string;
  /** The tracked handler; `next` gets the error to reply with. */
  handle(req: IncomingMessage, res: ServerResponse, next: (e?: unknown) => void): Promise<void>;
}

/** A request listener that takes the route's requests and says which ones it did not take. */
export function fastPath(
  route: FastRoute,
  state: { stopping: boolean },
  fail: (e: unknown, req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== route.path || req.headers['content-type'] !== route.contentType) return false;
    // a server shutting down tells each client to reconnect (elsewhere, through the Service) after this reply
    if (state.stopping) res.setHeader('connection', 'close');
    void route.handle(req, res, (e) => {
      if (e !== undefined) fail(e, req, res);
    });
    return true;
  };
}
