// Wraps a role's request handler: counts it in flight and times it end to end (the series the autoscaler reads),
// and, in the test lane, holds one serial lane for the emulated service time first.
import type { NextFunction, Request, Response } from 'express';
import type { ServerMetrics } from './metrics.js';

export type Handler = (req: Request, res: Response) => Promise<void>;
export type Track = (handler: Handler) => (req: Request, res: Response, next: NextFunction) => Promise<void>;

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

/** `shard` is a sparse shard's own index ('' for the main): its series carry it, so one shard's can be selected. */
export function tracker(metrics: ServerMetrics, shard: string, emulateServiceMs = 0): Track {
  const labels = metrics.labels;
  const emulated = emulateServiceMs > 0 ? emulatedLane(emulateServiceMs) : undefined;
  return (handler) => async (req, res, next) => {
    metrics.inflight.inc(labels);
    const end = metrics.duration.startTimer({ ...labels, stage: 'end_to_end', shard });
    try {
      if (emulated) await emulated();
      await handler(req, res);
    } catch (e) {
      next(e);
    } finally {
      end();
      metrics.inflight.dec(labels);
    }
  };
}
