// The main's client for one sparse shard: binary lookups that carry their remaining budget (TIMEOUT_HEADER), a
// circuit breaker, one retry of a call its connection lost, and a background readiness probe so the main knows a
// shard is back even without traffic. Where the shard has several replicas, each is reached on its own: calls go to
// the one with the fewest in flight, a failed one is avoided for a cooldown, and a slow call is hedged (hedging.ts).
// Lookups go over node:http (node:https under mutual TLS, ../tls.ts) with keep-alive: the body is written as it is
// and the answer read into one buffer, with none of fetch's stream copies (a DLRM-RMC2 query moves megabytes of
// indices and pooled rows).
import { Agent, request as httpRequest, type AgentOptions, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkServerIdentity } from 'node:tls';
import { LOOKUP_PATH, READY_PATH, TIMEOUT_HEADER, VERSION_HEADER } from '../../contracts/endpoints.js';
import { ErrorCode, ServeError, type ErrorKind } from '../../contracts/errors.js';
import type { FailurePolicy } from '../../contracts/shard-server-args.js';
import { LOOKUP_CONTENT_TYPE, decodeResponse, encodeRequest, type LookupRequest, type LookupResult } from '../../contracts/wire/lookup.js';
import { describeVersion, versionToken, type LookupVersion } from '../../contracts/wire/versions.js';
import type { Clock } from '../../lib/clock.js';
import { MIN_TLS_VERSION, type TlsMaterial } from '../tls.js';
import { BufferPool } from './buffer-pool.js';
import { HedgeBudget, LatencyWindow } from './hedging.js';

/**
 * How long a kept-alive connection to a shard serves lookups. A shard's Service spreads connections, not requests,
 * over its pods (kube-proxy picks a pod when a connection opens): without an end, the connections opened before
 * a shard scaled out would keep every lookup on the old pods. One second costs a TCP handshake per socket per
 * second and lets new pods take their share within the next second.
 */
export const CONNECTION_LIFETIME_MS = 1000;

/**
 * Keep-alive, but no socket outlives lifetimeMs: an older one is closed when its request is done (Node's documented
 * keepSocketAlive hook: a falsy return closes the socket instead of keeping it; the typings say void). Its first
 * request's end is a socket's birth.
 */
export function recycle<A extends Agent>(agent: A, lifetimeMs: number, now: () => number): A {
  const born = new WeakMap<Duplex, number>();
  const keep = agent.keepSocketAlive.bind(agent);
  agent.keepSocketAlive = (socket: Duplex): void => {
    const b = born.get(socket);
    if (b === undefined) born.set(socket, now());
    else if (now() - b >= lifetimeMs) return false as unknown as void;
    return keep(socket);
  };
  return agent;
}

/** An http.Agent whose sockets live at most CONNECTION_LIFETIME_MS (recycle). */
export class RecyclingAgent extends Agent {
  constructor(opts: AgentOptions, lifetimeMs: number, now: () => number) {
    super(opts);
    recycle(this, lifetimeMs, now);
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
  /** Base URLs of the shard's replicas, each reached on its own (default: the endpoint's addresses, see resolve). */
  replicas?: string[];
  /**
   * Without replicas, the endpoint's host name is resolved before each probe and every address is a replica: a
   * headless Service's name gives the addresses of its Ready pods (a ClusterIP Service's, its one virtual IP).
   */
  resolve?: (host: string) => Promise<string[]>;
  onReplicas?: (count: number) => void;
  /** With several replicas, a call without an answer after this percentile of recent exchanges is hedged; 0: never. */
  hedgePercentile?: number;
  onHedge?: (event: 'sent' | 'won') => void;
  /** The manifest indices of the tables it holds. */
  tables: number[];
  clock: Clock;
  /** The version every lookup and probe names: a shard of another version refuses the one, fails the other. */
  version: LookupVersion;
  /** Under 'zero' a stalled call is cut early (its rows become zeros anyway); under 'fail' only the deadline cuts. */
  policy?: FailurePolicy;
  /** For an https:// endpoint: this main's certificate (the shard requires it) and the CA the shard's must chain to. */
  tls?: TlsMaterial;
  onVersionMismatch?: () => void;
}

type Outcome = { ok: true } | { ok: false; error: ServeError; definite: boolean };

/** A replica's distance from the shard's usual latency halves every this many ms without a sample: one left alone is tried again. */
export const LATENCY_HALF_LIFE_MS = 100;
/** A replica no longer among the endpoint's addresses keeps its connections this long, for the calls in flight. */
export const RETIRED_REPLICA_MS = 30_000;
/** A replica this many times slower than the fastest (plus 1 ms) takes proportionally fewer calls. */
export const SLOWER_THAN = 2;

/** One replica of a shard: its own connections, its calls in flight, its recent latency, until when calls avoid it. */
class Replica {
  /** When each call in flight started (clock ms), oldest first. */
  readonly inflight: number[] = [];
  avoidUntil = 0;
  /** Moving average of its calls' times (a cut hedge loser counts with the time it had taken so far), and when last updated. */
  latencyMs = 0;
  sampledAt = -Infinity;
  agent: Agent;
  /** The TLS material's generation the agent was made with. */
  private tlsGeneration = -1;
  constructor(
    readonly url: string,
    private readonly now: () => number,
    /** With TLS: the material, and the name the shard's certificate must carry (the endpoint's host, not the pod's address). */
    private readonly tls?: { material: TlsMaterial; servername: string },
  ) {
    this.agent = this.makeAgent();
  }

  private makeAgent(): Agent {
    const opts = { keepAlive: true, maxSockets: 256 };
    if (!this.tls) return new RecyclingAgent(opts, CONNECTION_LIFETIME_MS, this.now);
    const { material, servername } = this.tls;
    this.tlsGeneration = material.generation;
    const agent = new HttpsAgent({
      ...opts,
      ...material.options,
      minVersion: MIN_TLS_VERSION,
      servername,
      checkServerIdentity: (_host, cert) => checkServerIdentity(servername, cert),
    });
    return recycle(agent, CONNECTION_LIFETIME_MS, this.now);
  }

  /** A request on this replica's connections; after the TLS files changed, new connections use the new ones. */
  request(path: string, o: RequestOptions, onResponse: (res: IncomingMessage) => void): ClientRequest {
    if (this.tls && this.tlsGeneration !== this.tls.material.generation) {
      const old = this.agent;
      this.agent = this.makeAgent();
      setTimeout(() => old.destroy(), RETIRED_REPLICA_MS).unref();
    }
    return (this.tls ? httpsRequest : httpRequest)(`${this.url}${path}`, { ...o, agent: this.agent }, onResponse);
  }

  /** A GET and its whole answer as text, within timeoutMs. */
  get(path: string, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => q.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' })), timeoutMs);
      const fail = (e: Error) => {
        clearTimeout(timer);
        reject(e);
      };
      const q = this.request(path, { method: 'GET', headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text });
        });
        res.on('error', fail);
      });
      q.on('error', fail);
      q.end();
    });
  }
}

/** The reason a hedged call's loser is cut with. */
const HEDGE_LOST = Object.assign(new Error('another replica answered first'), { name: 'HedgeLost' });

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
  private replicas: Replica[];
  private nextReplica = 0;
  private readonly latency?: LatencyWindow;
  private readonly budget = new HedgeBudget();
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
    this.replicas = (o.replicas?.length ? o.replicas : [o.endpoint]).map((url) => this.replica(url));
    if ((o.hedgePercentile ?? 0) > 0) this.latency = new LatencyWindow(o.hedgePercentile!);
  }

  /** A replica at `url`; over TLS when the endpoint is https:// (its certificate checked against the endpoint's host). */
  private replica(url: string): Replica {
    const endpoint = new URL(this.o.endpoint);
    if (endpoint.protocol !== 'https:') return new Replica(url, () => this.now());
    if (!this.o.tls) throw new TypeError(`shard ${this.shard}: ${this.o.endpoint} is https:// but the client was given no TLS material`);
    return new Replica(url, () => this.now(), { material: this.o.tls, servername: endpoint.hostname });
  }

  /** Reachable as last seen (the circuit is closed). */
  get up(): boolean {
    return this.reachable;
  }
  /** Reached at the right version at least once since the main started. */
  get seenUp(): boolean {
    return this.everUp;
  }
  /** The replicas calls are spread over. */
  get replicaCount(): number {
    return this.replicas.length;
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

  /**
   * The replica a call goes to: the fewest calls in flight among those not avoided, each call weighing as much more
   * as the replica is slower than the fastest (EWMA balancers such as Finagle's and Linkerd's, except that within
   * SLOWER_THAN of the fastest replicas count as equal, so that noise does not pull the load onto one), round robin
   * among equals.
   */
  private pick(exclude?: Replica): Replica | undefined {
    const n = this.replicas.length;
    if (n === 1) return this.replicas[0] === exclude ? undefined : this.replicas[0];
    const now = this.now();
    const fastest = this.fastest(now);
    let best: Replica | undefined;
    let bestScore = Infinity;
    for (let k = 0; k < n; k++) {
      const r = this.replicas[(this.nextReplica + k) % n]!;
      if (r === exclude) continue;
      const slowdown = this.latencyNow(r, now) / (fastest + 1);
      const score = (r.avoidUntil > now ? 1e9 : 0) + (r.inflight.length + 1) * (slowdown >= SLOWER_THAN ? slowdown : 1);
      if (score < bestScore) [best, bestScore] = [r, score];
    }
    this.nextReplica = (this.nextReplica + 1) % n;
    return best;
  }

  /** A replica failed a call or a probe, or stalled: calls avoid it for a cooldown; with none left the circuit opens. */
  private avoid(r: Replica, why: string): void {
    const now = this.now();
    r.avoidUntil = now + COOLDOWN_MS;
    if (this.replicas.every((x) => x.avoidUntil > now)) this.mark(false, why);
  }

  /**
   * Under the zero policy, a call with no answer after stallMs: its replica is avoided, and the call is cut so that
   * it is re-sent to another replica; with none left the circuit opens (which answers the calls in flight with zeros).
   */
  private stalled(r: Replica, stallMs: number, cut: (e: Error) => void): void {
    const why = `${r.url}: no answer within ${Math.round(stallMs)} ms (stalled; usually ${Math.round(this.typicalMs)} ms)`;
    this.avoid(r, why);
    if (this.openUntil === undefined) cut(new ServeError(ErrorCode.ShardUnavailable, `shard ${this.shard} (${why})`));
  }

  /**
   * How many times slower than the fastest replica (plus 1 ms) this one has recently been, or is being: a call in
   * flight for longer than its recent latency counts as that latency (a frozen replica is slow before it answers,
   * and never the fastest).
   */
  private slowdown(r: Replica, now: number): number {
    return this.latencyNow(r, now) / (this.fastest(now) + 1);
  }

  /** The lowest latency of the replicas that have one (Infinity while none has). */
  private fastest(now: number): number {
    let min = Infinity;
    for (const x of this.replicas) {
      const l = this.latencyNow(x, now);
      if (l > 0 && l < min) min = l;
    }
    return min;
  }

  private latencyNow(r: Replica, now: number): number {
    return Math.max(this.recentLatency(r, now), r.inflight.length ? now - r.inflight[0]! : 0);
  }

  /** The replica's latency average, drifting back to the shard's usual latency as it ages (never below it to 0). */
  private recentLatency(r: Replica, now: number): number {
    if (r.sampledAt === -Infinity) return 0;
    return this.typicalMs + (r.latencyMs - this.typicalMs) * 2 ** (-(now - r.sampledAt) / LATENCY_HALF_LIFE_MS);
  }

  private sample(r: Replica, ms: number): void {
    const now = this.now();
    const prev = this.recentLatency(r, now);
    r.latencyMs = r.sampledAt === -Infinity ? ms : prev + 0.3 * (ms - prev);
    r.sampledAt = now;
  }

  /** One call to one replica, by the deadline. */
  private async call(
    r: Replica,
    req: Pick<LookupRequest, 'batch' | 'lookups'>,
    body: Uint8Array,
    deadline: number,
    signal: AbortSignal,
  ): Promise<LookupResult[]> {
    const left = Math.floor(deadline - this.now());
    if (left <= 0) throw new ServeError(ErrorCode.DeadlineExceeded, `shard ${this.shard}: deadline exceeded before the call`);
    const stallMs = this.o.policy === 'zero' ? Math.max(STALL_FLOOR_MS, STALL_FACTOR * this.typicalMs) : Infinity;
    const t0 = this.now();
    let res: { status: number; body: Uint8Array };
    r.inflight.push(t0);
    try {
      res = await this.post(r, LOOKUP_PATH, body, left, stallMs, signal);
      this.sample(r, this.now() - t0);
    } catch (e) {
      if (signal.aborted && signal.reason === HEDGE_LOST) this.sample(r, this.now() - t0);
      if (e instanceof ServeError) throw e;
      const timeout = (e as Error).name === 'TimeoutError';
      if (!timeout && !signal.aborted) r.avoidUntil = this.now() + COOLDOWN_MS;
      throw new ServeError(
        timeout ? ErrorCode.DeadlineExceeded : ErrorCode.ShardUnavailable,
        `shard ${this.shard} (${r.url}): ${timeout ? `no answer within ${left} ms` : (e as Error).message}`,
      );
    } finally {
      r.inflight.splice(r.inflight.indexOf(t0), 1);
    }
    const text = () => Buffer.from(res.body).toString('utf8').slice(0, 200);
    if (res.status === ErrorCode.VersionMismatch.status) {
      this.o.onVersionMismatch?.();
      throw new ServeError(
        ErrorCode.ShardVersionMismatch,
        `shard ${this.shard} (${r.url}) serves another version than this main (${describeVersion(this.version)}): ${text()}`,
      );
    }
    if (res.status >= 500) {
      r.avoidUntil = this.now() + COOLDOWN_MS;
      throw new ServeError(ErrorCode.ShardUnavailable, `shard ${this.shard} (${r.url}) answered ${res.status}: ${text()}`);
    }
    if (res.status !== 200) throw new ServeError(ErrorCode.ShardBadResponse, `shard ${this.shard} (${r.url}) refused the lookup with ${res.status}: ${text()}`);
    let out: LookupResult[];
    try {
      out = decodeResponse(res.body, req);
    } catch (e) {
      throw new ServeError(ErrorCode.ShardBadResponse, `shard ${this.shard} (${r.url}) answered a malformed lookup response: ${(e as Error).message}`);
    }
    const took = this.now() - t0;
    this.typicalMs = this.typicalMs === 0 ? took : this.typicalMs + 0.05 * (took - this.typicalMs);
    return out;
  }

  /**
   * POSTs a body; the answer lands in one unpooled buffer (its pooled rows may move to a worker thread). Ends with
   * a TimeoutError after timeoutMs, with ShardUnavailable after stallMs (the replica is avoided), or with the
   * signal's reason (the request is over, or another replica answered first).
   */
  private post(
    r: Replica,
    path: string,
    body: Uint8Array,
    timeoutMs: number,
    stallMs: number,
    signal: AbortSignal,
  ): Promise<{ status: number; body: Uint8Array }> {
    return new Promise((resolve, reject) => {
      const headers = { 'content-type': LOOKUP_CONTENT_TYPE, 'content-length': body.byteLength, [TIMEOUT_HEADER]: timeoutMs };
      const q = r.request(path, { method: 'POST', headers }, (res) => {
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
        q.destroy(e);
      };
      const settle = () => {
        clearTimeout(timer);
        clearTimeout(stall);
        this.pending.delete(cut);
        signal.removeEventListener('abort', onAbort);
      };
      const fail = (e: Error) => {
        settle();
        reject(e);
      };
      const onAbort = () => cut(signal.reason as Error);
      const timer = setTimeout(() => cut(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' })), timeoutMs);
      const stall = stallMs < timeoutMs ? setTimeout(() => this.stalled(r, stallMs, cut), stallMs) : undefined;
      this.pending.add(cut);
      if (signal.aborted) return cut(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      q.on('error', fail);
      q.end(body);
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
   * A call and, where the shard has several replicas, its hedge: the first answer wins and the other call is cut.
   * A call whose connection failed is retried once, on another replica where there is one: not a timeout (no time
   * is left), a refusal or another version's answer (every pod of a shard has one version).
   */
  private exchange(req: Pick<LookupRequest, 'batch' | 'lookups'>, body: Uint8Array, deadline: number, signal?: AbortSignal): Promise<LookupResult[]> {
    const t0 = this.now();
    const hedging = this.latency && this.replicas.length > 1;
    const hedgeAfter = hedging ? this.latency!.threshold() : undefined;
    if (hedging) this.budget.earn();
    return new Promise((resolve, reject) => {
      const calls = new Set<AbortController>();
      let retried = false;
      let done = false;
      const end = () => {
        done = true;
        clearTimeout(hedge);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        for (const c of calls) c.abort(signal!.reason);
      };
      const start = (r: Replica, hedged: boolean) => {
        const c = new AbortController();
        calls.add(c);
        this.call(r, req, body, deadline, c.signal).then(
          (out) => {
            calls.delete(c);
            if (done) return;
            end();
            for (const other of calls) other.abort(HEDGE_LOST);
            if (hedged) this.o.onHedge?.('won');
            this.latency?.add(this.now() - t0);
            resolve(out);
          },
          (e: unknown) => {
            calls.delete(c);
            if (done) return;
            const retry =
              !retried && !signal?.aborted && e instanceof ServeError && e.kind === ErrorCode.ShardUnavailable && this.openUntil === undefined && !calls.size;
            if (retry) {
              retried = true;
              return start(this.pick(r) ?? r, false);
            }
            if (calls.size) return; // the other call may still answer
            end();
            reject(e);
          },
        );
      };
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      const first = this.pick()!;
      start(first, false);
      // (the calls settle later, so end() never meets this before it is set)
      const hedge =
        hedgeAfter === undefined || t0 + hedgeAfter >= deadline
          ? undefined
          : setTimeout(() => {
              const now = this.now();
              const other = this.pick(first);
              // only to a replica that is up and not slow (else the first call answers sooner)
              if (done || !other || other.avoidUntil > now || this.slowdown(other, now) >= SLOWER_THAN || !this.budget.take()) return;
              this.o.onHedge?.('sent');
              start(other, true);
            }, hedgeAfter);
    });
  }

  /** One lookup by the request's deadline; refused at once while the circuit is open. */
  async lookup(req: Omit<LookupRequest, 'version'>, deadline: number, signal?: AbortSignal): Promise<LookupResult[]> {
    if (!this.admit())
      throw new ServeError(this.whyKind, `shard ${this.shard} (${this.endpoint}) is marked down (circuit open): ${this.why ?? 'not reached yet'}`);
    const trial = this.trial;
    const body = encodeRequest({ ...req, version: this.version }, (n) => this.buffers.acquire(n));
    try {
      const r = await this.exchange(req, body, deadline, signal);
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

  /** One replica's /readyz at this main's version: undefined when it passes, else why not. */
  private async probeReplica(r: Replica, timeoutMs: number): Promise<ServeError | undefined> {
    try {
      const headers = { [VERSION_HEADER]: versionToken(this.version) };
      const res = await r.get(READY_PATH, headers, timeoutMs);
      if (res.status >= 200 && res.status < 300) return undefined;
      const text = res.text.trim().slice(0, 200);
      if (res.status === 409)
        return new ServeError(
          ErrorCode.ShardVersionMismatch,
          `shard ${this.shard} (${r.url}) serves another version than this main (${describeVersion(this.version)}): ${text}`,
        );
      return new ServeError(ErrorCode.ShardUnavailable, `${r.url}: readiness ${res.status}: ${text}`);
    } catch (e) {
      const err = e as Error & { cause?: Error; code?: string };
      return new ServeError(
        ErrorCode.ShardUnavailable,
        `${r.url}: readiness probe failed: ${err.cause?.message ?? err.message}${err.code ? ` (${err.code})` : ''}`,
      );
    }
  }

  /**
   * The replicas become the endpoint host's addresses (when it is a name, no replicas were given, and it resolves):
   * those still there keep their connections and history; those gone are closed once their calls had time to end.
   */
  private async discover(): Promise<void> {
    if (this.o.replicas?.length || !this.o.resolve) return;
    const url = new URL(this.endpoint);
    if (isIP(url.hostname) || url.hostname === 'localhost') return;
    let addresses: string[];
    try {
      addresses = await this.o.resolve(url.hostname);
    } catch {
      return; // a failed lookup keeps what was known
    }
    if (!addresses.length) return;
    const urls = [...new Set(addresses)].sort().map((a) => `${url.protocol}//${isIP(a) === 6 ? `[${a}]` : a}${url.port ? `:${url.port}` : ''}`);
    const known = new Map(this.replicas.map((r) => [r.url, r]));
    const next = urls.map((u) => known.get(u) ?? this.replica(u));
    for (const r of this.replicas) if (!next.includes(r)) setTimeout(() => r.agent.destroy(), RETIRED_REPLICA_MS).unref();
    const changed = next.length !== this.replicas.length || next.some((r, i) => r !== this.replicas[i]);
    this.replicas = next;
    if (changed) this.o.onReplicas?.(next.length);
  }

  /** Polls every replica's /readyz every intervalMs until stopped; the shard is up while one of them passes. */
  startProbe(intervalMs: number, onChange: (up: boolean) => void): void {
    this.onChange = onChange;
    const probe = async () => {
      await this.discover();
      const replicas = this.replicas;
      const failures = await Promise.all(replicas.map((r) => this.probeReplica(r, Math.max(200, intervalMs))));
      const now = this.now();
      failures.forEach((f, i) => {
        const r = replicas[i]!;
        if (!f) r.avoidUntil = Math.min(r.avoidUntil, now);
        else r.avoidUntil = Math.max(r.avoidUntil, now + Math.max(COOLDOWN_MS, intervalMs)); // until a probe passes
      });
      const failure = failures.every((f) => f) ? failures[0] : undefined;
      // a failed probe counts as one failure (through a Service it may have met the one pod shutting down); skew opens the circuit
      if (!failure) this.mark(true);
      else this.record({ ok: false, error: failure, definite: failure.kind === ErrorCode.ShardVersionMismatch });
      this.timer = this.clock.setTimeout(() => void probe(), intervalMs);
    };
    void probe();
  }

  stop(): void {
    this.clock.clearTimeout(this.timer);
    for (const r of this.replicas) r.agent.destroy();
  }
}
