// Request bodies of the binary endpoints, read into pooled buffers (see ../inference/buffer-pool.ts).
import type { IncomingMessage } from 'node:http';
import { ErrorCode, ServeError } from '../../contracts/errors.js';
import { MIN_CLASS, type BufferPool } from '../inference/buffer-pool.js';

/**
 * Reads a request body into a pooled buffer, enforcing the size limit from Content-Length (at once, before a byte
 * is read) and as it streams. An aborted signal (the request's deadline, a client gone) ends the read: a body that
 * has not arrived in time is a 408.
 */
export function readBody(req: IncomingMessage, pool: BufferPool, limit: number, signal?: AbortSignal): Promise<Uint8Array> {
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  if (declared !== undefined && (!Number.isFinite(declared) || declared < 0))
    return Promise.reject(new ServeError(ErrorCode.InvalidRequest, 'invalid Content-Length'));
  if (declared !== undefined && declared > limit) return Promise.reject(new ServeError(ErrorCode.BodyTooLarge, `body exceeds the limit of ${limit} bytes`));
  return new Promise((resolve, reject) => {
    let out = pool.acquire(declared ?? MIN_CLASS);
    let n = 0;
    const fail = (e: Error) => {
      pool.release(out);
      req.resume(); // drain what is left so the connection can be reused
      reject(e);
    };
    const onData = (chunk: Buffer) => {
      if (n + chunk.length > limit) return done(new ServeError(ErrorCode.BodyTooLarge, `body exceeds the limit of ${limit} bytes`));
      if (declared !== undefined && n + chunk.length > declared)
        return done(new ServeError(ErrorCode.InvalidRequest, 'body is longer than its Content-Length'));
      if (n + chunk.length > out.byteLength) {
        const bigger = pool.acquire(Math.max(out.byteLength * 2, n + chunk.length));
        bigger.set(out.subarray(0, n));
        pool.release(out);
        out = bigger;
      }
      out.set(chunk, n);
      n += chunk.length;
    };
    const onEnd = () => {
      if (declared !== undefined && n !== declared) return done(new ServeError(ErrorCode.InvalidRequest, `body ended after ${n} of ${declared} bytes`));
      done(undefined);
    };
    const onAbort = () => done(new ServeError(ErrorCode.InvalidRequest, 'request aborted'));
    const onSignal = () => {
      const why = signal!.reason as ServeError | undefined;
      done(
        why?.kind === ErrorCode.DeadlineExceeded
          ? new ServeError(ErrorCode.RequestTimeout, `the body did not arrive within the request's deadline (${n} bytes read)`)
          : (why ?? new ServeError(ErrorCode.InvalidRequest, 'request aborted')),
      );
    };
    const done = (e: Error | undefined) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('aborted', onAbort);
      signal?.removeEventListener('abort', onSignal);
      if (e) fail(e);
      else resolve(out.subarray(0, n));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('aborted', onAbort);
    if (signal?.aborted) return onSignal();
    signal?.addEventListener('abort', onSignal, { once: true });
  });
}
