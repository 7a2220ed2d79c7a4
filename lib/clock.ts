// An injectable clock, so time-dependent code (queues, leases, conditions) is testable without sleeping.
export interface Clock {
  now(): Date;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => new Date(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** A time as Kubernetes writes metav1.Time: RFC 3339 in UTC, whole seconds. */
export const metaTime = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** One turn of the event loop: timers, I/O and probes run before the caller goes on (setImmediate, not a timer). */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
