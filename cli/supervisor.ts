// Supervision of local processes, as a kubelet does for a pod's containers (restartPolicy Always): a process that
// exits when nobody asked it to is started again, after an exponential backoff (CrashLoopBackOff) that resets once it
// has run long enough. A deliberate stop suspends a process's supervision until it is resumed. The clock and the
// timer are injected, so the policy is tested without waiting.

/** What the supervisor needs of a process (a ChildProcess has all of it). */
export interface Child {
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | string | null;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
}

/** A supervised process: the supervisor replaces `proc` at each start and keeps the counts. */
export interface Unit<C extends Child = Child> {
  readonly name: string;
  /** The current process. */
  proc: C;
  /** How many times the supervisor has restarted it (a deliberate kill and resume is not counted). */
  restarts: number;
  /** The backoff the latest restart waited, ms (absent before the first). */
  backoffMs?: number;
}

export interface BackoffPolicy {
  /** The delay before the first restart. */
  initialMs: number;
  /** Each further delay doubles, up to this. */
  maxMs: number;
  /** A process that ran this long before it exited starts over at initialMs. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 10_000, resetAfterMs: 30_000 };

/** The delay before the next restart of a process that ran `ranMs`, the previous restart having waited `previousMs`. */
export function nextDelay(policy: BackoffPolicy, previousMs: number | undefined, ranMs: number): number {
  if (previousMs === undefined || ranMs >= policy.resetAfterMs) return policy.initialMs;
  return Math.min(previousMs * 2, policy.maxMs);
}

export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface SupervisorOptions {
  /** Restart processes that exit (default true); false only records exits (kill and resume still work). */
  restart?: boolean;
  backoff?: Partial<BackoffPolicy>;
  timers?: Timers;
  log?: (line: string) => void;
}

interface State<U extends Unit> {
  unit: U;
  running: boolean;
  startedAt: number;
  /** The delay of the latest restart, the base of the next (reset by a deliberate start). */
  lastDelayMs?: number;
  timer?: unknown;
  /** Deliberately stopped: an exit is not restarted until resume(). */
  suspended: boolean;
}

/** "code 1" or "signal SIGKILL". */
export function describeExit(code: number | null, signal: string | null): string {
  return signal ? `signal ${signal}` : `code ${code}`;
}

export class Supervisor<U extends Unit> {
  private readonly states = new Map<string, State<U>>();
  private readonly policy: BackoffPolicy;
  private readonly timers: Timers;
  private readonly log: (line: string) => void;
  private readonly restart: boolean;
  private stopped = false;

  /** `start` starts a unit's process anew (same command, same port) and returns it. */
  constructor(
    private readonly start: (unit: U) => U['proc'],
    o: SupervisorOptions = {},
  ) {
    this.policy = { ...DEFAULT_BACKOFF, ...o.backoff };
    this.timers = o.timers ?? realTimers;
    this.log = o.log ?? (() => {});
    this.restart = o.restart ?? true;
  }

  /** Supervises a unit whose process is already started (one that has already exited counts as exiting now). */
  watch(unit: U): void {
    const s: State<U> = { unit, running: true, startedAt: this.timers.now(), suspended: false };
    this.states.set(unit.name, s);
    if (unit.proc.exitCode !== null || unit.proc.signalCode !== null) this.exited(s, unit.proc, unit.proc.exitCode, unit.proc.signalCode);
    else this.listen(s, unit.proc);
  }

  /** Whether the unit's current process is running (false while it waits for a restart or is suspended after exiting). */
  running(name: string): boolean {
    return this.state(name).running;
  }

  /** The delay a restart would wait if the unit's process exited now. */
  nextDelayMs(name: string): number {
    const s = this.state(name);
    return nextDelay(this.policy, s.lastDelayMs, this.timers.now() - s.startedAt);
  }

  /** A deliberate stop is coming: its exit is not restarted, and a restart already waiting is cancelled. */
  suspend(name: string): void {
    const s = this.state(name);
    s.suspended = true;
    this.cancel(s);
  }

  /** Supervises the unit again and starts it now unless it is running; true when it was started. */
  resume(name: string): boolean {
    const s = this.state(name);
    if (this.stopped) throw new Error(`${name}: supervision has stopped`);
    s.suspended = false;
    if (s.running) return false;
    this.cancel(s);
    s.lastDelayMs = undefined; // a deliberate start is a fresh one
    this.launch(s);
    return true;
  }

  /** Ends supervision: nothing is restarted from now on (the processes themselves are left to the caller). */
  stop(): void {
    this.stopped = true;
    for (const s of this.states.values()) this.cancel(s);
  }

  private state(name: string): State<U> {
    const s = this.states.get(name);
    if (!s) throw new Error(`no process named ${name}`);
    return s;
  }

  private cancel(s: State<U>): void {
    if (s.timer !== undefined) this.timers.clearTimeout(s.timer);
    s.timer = undefined;
  }

  private listen(s: State<U>, proc: U['proc']): void {
    proc.once('exit', (code, signal) => this.exited(s, proc, code, signal));
  }

  /** Starts the unit's process; a start that throws counts as an exit. */
  private launch(s: State<U>): void {
    s.startedAt = this.timers.now();
    try {
      s.unit.proc = this.start(s.unit);
    } catch (e) {
      s.running = false;
      return this.schedule(s, `could not be started (${(e as Error).message})`);
    }
    s.running = true;
    this.listen(s, s.unit.proc);
  }

  private exited(s: State<U>, proc: U['proc'], code: number | null, signal: string | null): void {
    if (s.unit.proc !== proc) return; // an earlier process of the unit
    s.running = false;
    if (this.stopped || s.suspended) return;
    this.schedule(s, `exited (${describeExit(code, signal)}) after ${((this.timers.now() - s.startedAt) / 1000).toFixed(1)} s`);
  }

  /** The unit is down by itself: a restart after the backoff, unless restarting is off. */
  private schedule(s: State<U>, why: string): void {
    if (!this.restart) return this.log(`${s.unit.name} ${why}; supervision is off, so it stays down`);
    const delay = nextDelay(this.policy, s.lastDelayMs, this.timers.now() - s.startedAt);
    s.lastDelayMs = delay;
    this.log(`${s.unit.name} ${why}; restart ${s.unit.restarts + 1} in ${delay} ms`);
    s.timer = this.timers.setTimeout(() => {
      s.timer = undefined;
      if (this.stopped || s.suspended) return;
      s.unit.restarts++;
      s.unit.backoffMs = delay;
      this.launch(s);
    }, delay);
  }
}
