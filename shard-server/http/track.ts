// Wraps a role's request handler in the request's life: its deadline (from arrival: the client's TIMEOUT_HEADER
// or the server's default), admission control (shed at once, before the body is read, when it cannot be served in
// time), an abort signal that fires when the deadline passes or the client goes away, the in-flight and queue
// gauges, and the end-to-end latency from arrival (the series the autoscaler reads). In the test lane, every
// request also holds one serial lane for the emulated service time.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_TIMEOUT_MS, TIMEOUT_HEADER } from '../../contracts/endpoints.js';
import { ErrorCode, ServeError } from '../../contracts/errors.js';
import { Shed, type Admission } from './admission.js';
import type { ServerMetrics } from './metrics.js';

/** What a handler knows of its request's life. */
export interface RequestScope {
  /** When the answer is due, in ms on the server's clock (TrackOptions.now). */
  deadline: number;
  /** Aborted, with a ServeError as its reason, once the deadline passes or the client closes the connection. */
  signal: AbortSignal;
}

/**
 * Plain node:http types, so the same life wraps the fast path (http/fast.ts) and express's routes; `next` gets
 * the error to reply with (express's next, or the fast path's own error reply).
 */
export type Handler<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> = (
  req: Req,
  res: Res,
  scope: RequestScope,
) => Promise<void>;
export type Track = <Req extends IncomingMessage, Res extends ServerResponse>(
  handler: Handler<Req, Res>,
) => (req: Req, res: Res, next: (e?: unknown) => void) => Promise<void>;

export interface TrackOptions {
  metrics: ServerMetrics;
  /** A sparse shard's own index ('' for the main): its series carry it, so one shard's can be selected. */
  shard: string;
  admission: Admission;
  /** The budget of a request that names none. */
  deadlineMs: number;
  now: () => number;
  /** Testing: the service time of the emulated serial lane; 0: off. */
  emulateServiceMs?: number;
}

/** Shed requests are told to come back after this many seconds. */
export const RETRY_AFTER_S = 1;

/**
 * Testing: with emulateServiceMs > 0, every request waits for one serial lane and holds it this long, so the
 * process behaves as a single server with this service time (latency grows with load, replicas add capacity)
 * while using no CPU: the autoscaling end-to-end test runs many replicas on a 2-core machine with it.
 */
function emulatedLane(emulateServiceMs: number): () => Promise<void> {
  let lane = Promise.resolve();
  return async () => {
    const before = lane;
    let release = () => {};
    lane = new Promise<void>((r) => (release = r));
    await before;
    await new Promise((r) => setTimeout(r, emulateServiceMs));
    release();
  };
}

/** The request's budget in ms: its TIMEOUT_HEADER, or the default; a malformed header is the client's error. */
export function budgetOf(req: IncomingMessage, defaultMs: number): number {
  const header = req.headers[TIMEOUT_HEADER.toLowerCase()];
  const raw = Array.isArray(header) ? header.join(', ') : header;
  if (raw === undefined) return defaultMs;
  const ms = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(ms) || ms <= 0 || ms > MAX_TIMEOUT_MS)
    throw new ServeError(
      ErrorCode.InvalidRequest,
      `header ${TIMEOUT_HEADER} must be a number of milliseconds in (0, ${MAX_TIMEOUT_MS}], got ${JSON.stringify(raw)}`,
    );
  return ms;
}

export function tracker(o: TrackOptions): Track {
  const m = o.metrics;
  const labels = m.labels;
  const emulated = o.emulateServiceMs ? emulatedLane(o.emulateServiceMs) : undefined;
  return (handler) => async (req, res, next) => {
    const arrived = performance.now();
    let budget: number;
    try {
      budget = budgetOf(req, o.deadlineMs);
    } catch (e) {
      return next(e);
    }
    const deadline = o.now() + budget;
    const abort = new AbortController();
    const gone = () => {
      if (!res.writableFinished) abort.abort(new ServeError(ErrorCode.ClientClosed, 'the client closed the connection before the answer'));
    };
    res.once('close', gone);
    let release: () => void;
    m.own.queued.inc();
    try {
      release = await o.admission.acquire(deadline, abort.signal);
    } catch (e) {
      if (!(e instanceof Shed)) return next(abort.signal.reason ?? e);
      m.shed.inc({ ...labels, reason: e.reason });
      res.once('finish', () => m.stage('shed', o.shard).observe((performance.now() - arrived) / 1000));
      res.setHeader('retry-after', String(RETRY_AFTER_S));
      return next(new ServeError(ErrorCode.Overloaded, `overloaded, retry later: ${e.message}`));
    } finally {
      m.own.queued.dec();
    }
    m.stage('admission', o.shard).observe((performance.now() - arrived) / 1000);
    m.own.inflight.inc();
    const timer = setTimeout(
      () => abort.abort(new ServeError(ErrorCode.DeadlineExceeded, `no answer within the request's ${budget} ms budget`)),
      Math.max(0, deadline - o.now()),
    );
    try {
      if (emulated) await emulated();
      await handler(req, res, { deadline, signal: abort.signal });
    } catch (e) {
      next(e);
    } finally {
      clearTimeout(timer);
      res.off('close', gone);
      release();
      m.own.inflight.dec();
      m.stage('end_to_end', o.shard).observe((performance.now() - arrived) / 1000);
    }
  };
}
