// The main's client for one sparse shard: binary lookups that carry their remaining budget (TIMEOUT_HEADER), a
// circuit breaker, one retry of a call its connection lost, and a background readiness probe so the main knows a
// shard is back even without traffic. Lookups go over node:http
// with keep-alive: the body is written as it is and the answer read into one buffer, with none of fetch's
// stream copies (a DLRM-RMC2 query moves megabytes of indices and pooled rows).
import { Agent, request, type AgentOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import { LOOKUP_PATH, READY_PATH, TIMEOUT_HEADER, VERSION_HEADER } from '../../contracts/endpoints.js';
import { ErrorCode, ServeError, type ErrorKind } from '../../contracts/errors.js';
import type { FailurePolicy } from '../../contracts/shard-server-args.js';
import { LOOKUP_CONTENT_TYPE, decodeResponse, encodeRequest, type LookupRequest, type LookupResult } from '../../contracts/wire/lookup.js';
import { describeVersion, versionToken, type LookupVersion } from '../../contracts/wire/versions.js';
import type { Clock } from '../../lib/clock.js';
import { BufferPool } from './buffer-pool.js';

/**
 * How long a kept-alive connection to a shard serves lookups. A shard's Service spreads connections, not requests,
 * over its pods (kube-proxy picks a pod when a connection opens): without an end, the connections opened before
 * a shard scaled out would keep every lookup on the old pods. One second costs a TCP handshake per socket per
 * second and lets new pods take their share within the next second.
 */
export const CONNECTION_LIFETIME_MS = 1000;

/** Keep-alive, but no socket outlives CONNECTION_LIFETIME_MS: an older one is closed when its request is done. */
export class RecyclingAgent extends Agent {
  private readonly born = new WeakMap<Duplex, number>();

  constructor(
    opts: AgentOptions,
    private readonly lifetimeMs: number,
    private readonly now: () => number,
  ) {
    super(opts);
  }

  /** Node's documented hook: a falsy return closes the socket instead of keeping it (the typings say void). */
  override keepSocketAlive(socket: Duplex): void {
    const born = this.born.get(socket);
    if (born === undefined) this.born.set(socket, this.now());
    else if (this.now() - born >= this.lifetimeMs) return false as unknown as void;
    return super.keepSocketAlive(socket);
  }
}

/**
 * Circuit breaker: CONSECUTIVE_FAILURES failed calls or probes in a row, or (under the zero policy) a call with
 * no answer after STALL_FLOOR_MS or STALL_FACTOR times the shard's usual latency, open the circuit. While it is
 * open, calls fail at once (the zero policy answers without the shard within a millisecond, and cuts the calls in
 * flight); after COOLDOWN_MS one trial call goes through (half-open), and its success, or a passing probe, closes it.
 */
export const CONSECUTIVE_FAILURES = 3;
export const STALL_FLOOR_MS = 100;
export const STALL_FACTOR = 10;
export const COOLDOWN_MS = 500;

export interface ShardClientOptions {
  shard: number;
  endpoint: string;
  /** The manifest indices of the tables it holds. */
  tables: number[];
  clock: Clock;
  /** The version every lookup and probe names: a shard of another version refuses the one, fails the other. */
  version: LookupVersion;
  /** Under 'zero' a stalled call is cut early (its rows become zeros anyway); under 'fail' only the deadline cuts. */
  policy?: FailurePolicy;
  onVersionMismatch?: () => void;
}

type Outcome = { ok: true } | { ok: false; error: ServeError; definite: boolean };

export class ShardClient {
  readonly shard: number;
  readonly endpoint: string;
  readonly tables: number[];
  readonly version: LookupVersion;
  private readonly clock: Clock;
  private reachable = false;
  private everUp = false;
  private failures = 0;
  /** While open: when the next trial call may go (clock ms); undefined while closed. */
  private openUntil?: number;
  private trial = false;
  private why?: string;
  /** What kind of failure opened the circuit: an open circuit refuses calls with it (skew stays SHARD_VERSION_MISMATCH). */
  private whyKind: ErrorKind = ErrorCode.ShardUnavailable;
  /** Typical answer time (moving average, ms) of successful calls: what a stall is measured against. */
  private typicalMs = 0;
  private timer: unknown;
  private readonly agent = new RecyclingAgent({ keepAlive: true, maxSockets: 256 }, CONNECTION_LIFETIME_MS, () => this.clock.now().getTime());
  private readonly buffers = new BufferPool();
  /** Bodies of requests destroyed mid-write (timeouts): never reused. */
  private readonly abandoned = new WeakSet<Uint8Array>();
  /** Calls in flight, cut when the circuit opens. */
  private readonly pending = new Set<(e: Error) => void>();
  private onChange: (up: boolean) => void = () => {};

  constructor(private readonly o: ShardClientOptions) {
    this.shard = o.shard;
    this.endpoint = o.endpoint;
    this.tables = o.tables;
    this.version = o.version;
    this.clock = o.clock;
  }

  /** Reachable as last seen (the circuit is closed). */
  get up(): boolean {
    return this.reachable;
  }
  /** Reached at the right version at least once since the main started. */
  get seenUp(): boolean {
    return this.everUp;
  }
  /** Why the shard was last marked down. */
  get lastError(): string | undefined {
    return this.why;
  }

  private now(): number {
    return this.clock.now().getTime();
  }

  /** Every observation (a lookup or a probe) goes through here, so watchers see each transition once. */
  private mark(up: boolean, why?: string, kind: ErrorKind = ErrorCode.ShardUnavailable): void {
    if (up) {
      this.failures = 0;
      this.openUntil = undefined;
      this.everUp = true;
    } else {
      this.why = why;
      this.whyKind = kind;
      this.openUntil = this.now() + COOLDOWN_MS;
      // under the zero policy the calls in flight are answered without the shard at once; under fail they run on
      if (this.o.policy === 'zero')
        for (const cut of [...this.pending]) cut(new ServeError(ErrorCode.ShardUnavailable, `shard ${this.shard} (${this.endpoint}): circuit opened: ${why}`));
    }
    if (up === this.reachable) return;
    this.reachable = up;
    this.onChange(up);
  }

  private record(o: Outcome): void {
    if (o.ok) return this.mark(true);
    if (o.definite || ++this.failures >= CONSECUTIVE_FAILURES) this.mark(false, o.error.message, o.error.kind);
  }

  private async call(req: Pick<LookupRequest, 'batch'>, body: Uint8Array, deadline: number, signal?: AbortSignal): Promise<LookupResult[]> {
    const left = Math.floor(deadline - this.now());
    if (left <= 0) throw new ServeError(ErrorCode.DeadlineExceeded, `shard ${this.shard}: deadline exceeded before the call`);
    const stallMs = this.o.policy === 'zero' ? Math.max(STALL_FLOOR_MS, STALL_FACTOR * this.typicalMs) : Infinity;
    const t0 = this.now();
    let res: { status: number; body: Uint8Array };
    try {
      res = await this.post(LOOKUP_PATH, body, left, stallMs, signal);
    } catch (e) {
      if (e instanceof ServeError) throw e;
      const timeout = (e as Error).name === 'TimeoutError';
      throw new ServeError(
        timeout ? ErrorCode.DeadlineExceeded : ErrorCode.ShardUnavailable,
        `shard ${this.shard} (${this.endpoint}): ${timeout ? `no answer within ${left} ms` : (e as Error).message}`,
      );
    }
    const text = () => Buffer.from(res.body).toString('utf8').slice(0, 200);
    if (res.status === ErrorCode.VersionMismatch.status) {
      this.o.onVersionMismatch?.();
      throw new ServeError(
        ErrorCode.ShardVersionMismatch,
        `shard ${this.shard} (${this.endpoint}) serves another version than this main (${describeVersion(this.version)}): ${text()}`,
      );
    }
    if (res.status >= 500) throw new ServeError(ErrorCode.ShardUnavailable, `shard ${this.shard} answered ${res.status}: ${text()}`);
    if (res.status !== 200) throw new ServeError(ErrorCode.ShardBadResponse, `shard ${this.shard} refused the lookup with ${res.status}: ${text()}`);
    let out: LookupResult[];
    try {
      out = decodeResponse(res.body, req.batch);
    } catch (e) {
      throw new ServeError(ErrorCode.ShardBadResponse, `shard ${this.shard} answered a malformed lookup response: ${(e as Error).message}`);
    }
    const took = this.now() - t0;
    this.typicalMs = this.typicalMs === 0 ? took : this.typicalMs + 0.05 * (took - this.typicalMs);
    return out;
  }

  /**
   * POSTs a body; the answer lands in one unpooled buffer (its pooled rows may move to a worker thread). Ends with
   * a TimeoutError after timeoutMs, with ShardUnavailable after stallMs (the circuit opens), or with the signal's
   * reason (the request is over).
   */
  private post(path: string, body: Uint8Array, timeoutMs: number, stallMs: number, signal?: AbortSignal): Promise<{ status: number; body: Uint8Array }> {
    return new Promise((resolve, reject) => {
      const headers = { 'content-type': LOOKUP_CONTENT_TYPE, 'content-length': body.byteLength, [TIMEOUT_HEADER]: timeoutMs };
      const r = request(`${this.endpoint}${path}`, { method: 'POST', agent: this.agent, headers }, (res) => {
        const length = Number(res.headers['content-length']);
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          n += c.length;
        });
        res.on('end', () => {
          settle();
          const out = Buffer.allocUnsafeSlow(Number.isFinite(length) ? Math.max(length, n) : n);
          let p = 0;
          for (const c of chunks) {
            out.set(c, p);
            p += c.length;
          }
          resolve({ status: res.statusCode ?? 0, body: out.subarray(0, n) });
        });
        res.on('error', fail);
      });
      const cut = (e: Error) => {
        this.abandoned.add(body);
        r.destroy(e);
      };
      const settle = () => {
        clearTimeout(timer);
        clearTimeout(stall);
        this.pending.delete(cut);
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (e: Error) => {
        settle();
        reject(e);
      };
      const onAbort = () => cut(signal!.reason as Error);
      const timer = setTimeout(() => cut(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' })), timeoutMs);
      const stall =
        stallMs < timeoutMs
          ? setTimeout(() => this.mark(false, `no answer within ${Math.round(stallMs)} ms (stalled; usually ${Math.round(this.typicalMs)} ms)`), stallMs)
          : undefined;
      this.pending.add(cut);
      signal?.addEventListener('abort', onAbort, { once: true });
      r.on('error', fail);
      r.end(body);
    });
  }

  /** Whether a call may go now: the circuit is closed, or it is this cooldown's one trial (half-open). */
  private admit(): boolean {
    if (this.openUntil === undefined) return true;
    if (this.trial || this.now() < this.openUntil) return false;
    this.trial = true;
    return true;
  }

  /**
   * One lookup by the request's deadline; refused at once while the circuit is open. A call whose connection
   * failed is retried once (a kept-alive socket the shard closed, a pod gone): not a timeout (no time is left), a
   * refusal or another version's answer (every pod of a shard's Service has one version).
   */
  async lookup(req: Omit<LookupRequest, 'version'>, deadline: number, signal?: AbortSignal): Promise<LookupResult[]> {
    if (!this.admit())
      throw new ServeError(this.whyKind, `shard ${this.shard} (${this.endpoint}) is marked down (circuit open): ${this.why ?? 'not reached yet'}`);
    const trial = this.trial;
    const body = encodeRequest({ ...req, version: this.version }, (n) => this.buffers.acquire(n));
    try {
      let r: LookupResult[];
      try {
        r = await this.call(req, body, deadline, signal);
      } catch (first) {
        if (signal?.aborted || !(first instanceof ServeError) || first.kind !== ErrorCode.ShardUnavailable || this.openUntil !== undefined) throw first;
        r = await this.call(req, body, deadline, signal);
      }
      this.record({ ok: true });
      return r;
    } catch (e) {
      if (!signal?.aborted && e instanceof ServeError) this.record({ ok: false, error: e, definite: trial || e.kind === ErrorCode.ShardVersionMismatch });
      throw e;
    } finally {
      if (trial) this.trial = false;
      // A call that was cut may still be writing the body: only a completed exchange returns the buffer.
      if (!this.abandoned.has(body)) this.buffers.release(body);
    }
  }

  /** Polls the shard's /readyz every intervalMs until stopped. */
  startProbe(intervalMs: number, onChange: (up: boolean) => void): void {
    this.onChange = onChange;
    const probe = async () => {
      let failure: ServeError | undefined;
      try {
        const headers = { [VERSION_HEADER]: versionToken(this.version) };
        const res = await fetch(`${this.endpoint}${READY_PATH}`, { headers, signal: AbortSignal.timeout(Math.max(200, intervalMs)) });
        const text = res.ok ? '' : (await res.text()).trim().slice(0, 200);
        if (res.status === 409)
          failure = new ServeError(
            ErrorCode.ShardVersionMismatch,
            `shard ${this.shard} (${this.endpoint}) serves another version than this main (${describeVersion(this.version)}): ${text}`,
          );
        else if (!res.ok) failure = new ServeError(ErrorCode.ShardUnavailable, `readiness ${res.status}: ${text}`);
      } catch (e) {
        const err = e as Error & { cause?: Error };
        failure = new ServeError(ErrorCode.ShardUnavailable, `readiness probe failed: ${err.cause?.message ?? err.message}`);
      }
      // a failed probe counts as one failure (through a Service it may have met the one pod shutting down); skew opens the circuit
      if (!failure) this.mark(true);
      else this.record({ ok: false, error: failure, definite: failure.kind === ErrorCode.ShardVersionMismatch });
      this.timer = this.clock.setTimeout(() => void probe(), intervalMs);
    };
    void probe();
  }

  stop(): void {
    this.clock.clearTimeout(this.timer);
    this.agent.destroy();
  }
}
