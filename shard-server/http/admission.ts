// Admission control in front of a role's work: at most maxInflight requests are worked on at once and at most
// maxQueue wait, first come first served, for a slot. A request is shed at arrival (before its body is read) when
// the queue is full, or when the wait the queue predicts is over half its budget or, with one service time, would
// overrun its deadline; a waiter
// whose deadline can no longer be met is shed when its turn comes or its deadline passes. The service time is a
// moving average of the time admitted requests hold a slot, so the prediction follows the load.
export type ShedReason = 'queue_full' | 'deadline';

export class Shed extends Error {
  constructor(
    readonly reason: ShedReason,
    message: string,
  ) {
    super(message);
    this.name = 'Shed';
  }
}

export interface AdmissionOptions {
  maxInflight: number;
  maxQueue: number;
  /** Milliseconds on the clock deadlines are given in. */
  now: () => number;
}

interface Waiter {
  deadline: number;
  resolve: (release: () => void) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** The share of a request's remaining budget it may be predicted to wait in the queue. */
export const MAX_WAIT_SHARE = 0.5;
/** Weight of the newest service time in the moving average. */
const ALPHA = 0.1;

export class Admission {
  private held = 0;
  private readonly waiting: Waiter[] = [];
  private serviceMs = 0;

  constructor(private readonly o: AdmissionOptions) {
    if (o.maxInflight < 1) throw new Error(`maxInflight must be at least 1, got ${o.maxInflight}`);
    if (o.maxQueue < 0) throw new Error(`maxQueue must be at least 0, got ${o.maxQueue}`);
  }

  /** Requests holding a slot, and waiting for one. */
  get inflight(): number {
    return this.held;
  }
  get queued(): number {
    return this.waiting.length;
  }
  /** The moving average of a slot's holding time (0 before the first request finished). */
  get averageServiceMs(): number {
    return this.serviceMs;
  }

  /**
   * Resolves with the slot's release once one is held; rejects with Shed at once when the request cannot be
   * admitted, or later when its deadline passes in the queue. An aborted signal (the client left) drops a waiter
   * with the signal's reason.
   */
  acquire(deadline: number, signal?: AbortSignal): Promise<() => void> {
    const now = this.o.now();
    if (this.held < this.o.maxInflight && !this.waiting.length) return Promise.resolve(this.grant(now));
    if (this.waiting.length >= this.o.maxQueue)
      return Promise.reject(new Shed('queue_full', `${this.held} requests in flight and ${this.waiting.length} queued (the limits)`));
    const wait = ((this.waiting.length + 1) / this.o.maxInflight) * this.serviceMs;
    // half the budget at most in the queue: what is admitted is answered well before its deadline, and a
    // prediction off by a factor of two still meets it
    if (wait > (deadline - now) * MAX_WAIT_SHARE || now + wait + this.serviceMs > deadline)
      return Promise.reject(
        new Shed('deadline', `a predicted ${Math.round(wait)} ms in the queue and ${Math.round(this.serviceMs)} ms of work would overrun the deadline`),
      );
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        deadline,
        resolve,
        reject,
        signal,
        timer: setTimeout(() => this.drop(w, new Shed('deadline', 'the deadline passed in the admission queue')), Math.max(0, deadline - now)),
      };
      if (signal) {
        w.onAbort = () => this.drop(w, signal.reason instanceof Error ? signal.reason : new Error('aborted'));
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiting.push(w);
    });
  }

  private grant(now: number): () => void {
    this.held++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.held--;
      const took = this.o.now() - now;
      this.serviceMs = this.serviceMs === 0 ? took : this.serviceMs + ALPHA * (took - this.serviceMs);
      this.next();
    };
  }

  /** Hands free slots to waiters in order, shedding those whose deadline their work would overrun. */
  private next(): void {
    while (this.held < this.o.maxInflight && this.waiting.length) {
      const w = this.waiting.shift()!;
      this.settle(w);
      const now = this.o.now();
      if (now + this.serviceMs > w.deadline) w.reject(new Shed('deadline', 'the deadline would pass before the work is done'));
      else w.resolve(this.grant(now));
    }
  }

  private drop(w: Waiter, e: Error): void {
    const i = this.waiting.indexOf(w);
    if (i < 0) return;
    this.waiting.splice(i, 1);
    this.settle(w);
    w.reject(e);
  }

  private settle(w: Waiter): void {
    clearTimeout(w.timer);
    if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort);
  }
}
