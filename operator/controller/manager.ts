// Runs the controller: caches, work queue, workers and periodic resync, started when this replica becomes
// leader and drained on shutdown.
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/log.js';
import type { OperatorMetrics } from '../server/metrics.js';
import type { Caches } from './informers.js';
import type { Reconciler } from './reconciler.js';
import { WorkQueue } from './workqueue.js';

export interface ManagerOptions {
  workers: number;
  resyncMs: number;
  /** A reconcile running longer than this means the loop is wedged: liveness fails and the kubelet restarts us. */
  wedgedAfterMs?: number;
}

export const DEFAULT_WEDGED_AFTER_MS = 5 * 60_000;

/**
 * A child's or a pod's event reconciles its model after this long at least, and at least twice as long as the
 * model's last reconcile took: a burst of events (a thousand Deployments being created) is one reconcile, and a
 * large model's reconciles take at most a third of the operator's time.
 */
export const COALESCE_MS = 250;

export class Manager {
  readonly queue: WorkQueue;
  private running = false;
  private workers: Promise<void>[] = [];
  private resyncTimer: unknown;
  /** Keys being reconciled, with when each started. */
  private readonly inFlight = new Map<string, number>();
  /** How long each key's last reconcile took. */
  private readonly lastMs = new Map<string, number>();

  constructor(
    private readonly caches: Caches,
    private readonly reconciler: Reconciler,
    private readonly opts: ManagerOptions,
    private readonly metrics: OperatorMetrics,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.queue = new WorkQueue({ baseMs: 200, maxMs: 5 * 60_000 }, clock, (d) => metrics.queueDepth.set(d));
  }

  /** Starts the workers and enqueues every RecModel; the caches must be synced. */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (let i = 0; i < this.opts.workers; i++) this.workers.push(this.work());
    this.resync();
  }

  private resync(): void {
    for (const key of this.caches.allRecModelKeys()) this.queue.add(key);
    this.resyncTimer = this.clock.setTimeout(() => this.resync(), this.opts.resyncMs);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const [namespace, name] = key.split('/') as [string, string];
      const end = this.metrics.reconcileDuration.startTimer();
      this.inFlight.set(key, this.clock.now().getTime());
      try {
        const result = await this.reconciler.reconcile(namespace, name);
        this.queue.forget(key);
        if (result.requeueAfterMs) this.queue.addAfter(key, result.requeueAfterMs);
        end({ result: result.requeueAfterMs ? 'requeue' : 'success' });
      } catch (e) {
        end({ result: 'error' });
        const reason = (e as { code?: number }).code ? `http_${(e as { code: number }).code}` : 'error';
        this.metrics.reconcileErrors.inc({ reason });
        const delay = this.queue.addRateLimited(key);
        this.log.error('reconcile failed; retrying', { recmodel: key, error: (e as Error).message, retryInMs: delay });
      } finally {
        this.lastMs.set(key, this.clock.now().getTime() - this.inFlight.get(key)!);
        this.inFlight.delete(key);
        this.queue.done(key);
      }
    }
  }

  /** Queues a model for an event of one of its children or pods, coalesced with the others of its burst. */
  childEvent(key: string): void {
    this.queue.addAfter(key, Math.max(COALESCE_MS, 2 * (this.lastMs.get(key) ?? 0)));
  }

  /** Not ok when a reconcile has run past wedgedAfterMs (a write that never returns, a loop that never ends). */
  health(): { ok: boolean; detail: string } {
    const limit = this.opts.wedgedAfterMs ?? DEFAULT_WEDGED_AFTER_MS;
    const now = this.clock.now().getTime();
    for (const [key, since] of this.inFlight) {
      if (now - since > limit) return { ok: false, detail: `reconcile of ${key} has run for ${Math.round((now - since) / 1000)} s` };
    }
    return { ok: true, detail: `${this.inFlight.size} reconciling, ${this.queue.length} queued` };
  }

  /** Stops handing out keys and waits for in-flight reconciles. */
  async stop(): Promise<void> {
    this.clock.clearTimeout(this.resyncTimer);
    await this.queue.shutdown();
    await Promise.all(this.workers);
  }
}
