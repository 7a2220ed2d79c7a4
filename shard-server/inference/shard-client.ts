// The main's client for one sparse shard: binary lookups with a per-call deadline and one retry, plus a
// background readiness probe so the main knows a shard is back even without traffic. Lookups go over node:http
// with keep-alive: the body is written as it is and the answer read into one buffer, with none of fetch's
// stream copies (a DLRM-RMC2 query moves megabytes of indices and pooled rows).
import { Agent, request, type AgentOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import { VERSION_HEADER } from '../../contracts/endpoints.js';
import { ErrorCode, ServeError } from '../../contracts/errors.js';
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

export class ShardClient {
  private reachable = false;
  private timer: unknown;
  private readonly agent = new RecyclingAgent({ keepAlive: true, maxSockets: 256 }, CONNECTION_LIFETIME_MS, () => this.clock.now().getTime());
  private readonly buffers = new BufferPool();
  /** Bodies of requests destroyed mid-write (timeouts): never reused. */
  private readonly abandoned = new WeakSet<Uint8Array>();
  private onChange: (up: boolean) => void = () => {};

  constructor(
    readonly shard: number,
    readonly endpoint: string,
    readonly tables: number[],
    private readonly clock: Clock,
    /** The version every lookup and probe names: a shard of another version refuses the one, fails the other. */
    readonly version: LookupVersion,
    private readonly onVersionMismatch: () => void = () => {},
  ) {}

  get up(): boolean {
    return this.reachable;
  }

  /** Every observation (a lookup or a probe) goes through here, so watchers see each transition once. */
  private mark(up: boolean): void {
    if (up === this.reachable) return;
    this.reachable = up;
    this.onChange(up);
  }

  private async call(req: Pick<LookupRequest, 'batch'>, body: Uint8Array, deadline: number): Promise<LookupResult[]> {
    const left = deadline - this.clock.now().getTime();
    if (left <= 0) throw new ServeError(ErrorCode.DeadlineExceeded, `shard ${this.shard}: deadline exceeded before the call`);
    let res: { status: number; body: Uint8Array };
    try {
      res = await this.post('/v1/lookup', body, left);
    } catch (e) {
      const timeout = (e as Error).name === 'TimeoutError';
      throw new ServeError(
        timeout ? ErrorCode.DeadlineExceeded : ErrorCode.ShardUnavailable,
        `shard ${this.shard} (${this.endpoint}): ${timeout ? `no answer within ${left} ms` : (e as Error).message}`,
      );
    }
    if (res.status === ErrorCode.VersionMismatch.status) {
      this.onVersionMismatch();
      throw new ServeError(
        ErrorCode.ShardVersionMismatch,
        `shard ${this.shard} (${this.endpoint}) serves another version than this main (${describeVersion(this.version)}): ` +
          Buffer.from(res.body).toString('utf8').slice(0, 200),
      );
    }
    if (res.status !== 200)
      throw new ServeError(
        res.status >= 500 ? ErrorCode.ShardUnavailable : ErrorCode.Internal,
        `shard ${this.shard} answered ${res.status}: ${Buffer.from(res.body).toString('utf8').slice(0, 200)}`,
      );
    return decodeResponse(res.body, req.batch);
  }

  /** POSTs a body; the answer lands in one unpooled buffer (its pooled rows may move to a worker thread). */
  private post(path: string, body: Uint8Array, timeoutMs: number): Promise<{ status: number; body: Uint8Array }> {
    return new Promise((resolve, reject) => {
      const r = request(
        `${this.endpoint}${path}`,
        { method: 'POST', agent: this.agent, headers: { 'content-type': LOOKUP_CONTENT_TYPE, 'content-length': body.byteLength } },
        (res) => {
          const length = Number(res.headers['content-length']);
          const chunks: Buffer[] = [];
          let n = 0;
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            n += c.length;
          });
          res.on('end', () => {
            clearTimeout(timer);
            const out = Buffer.allocUnsafeSlow(Number.isFinite(length) ? Math.max(length, n) : n);
            let p = 0;
            for (const c of chunks) {
              out.set(c, p);
              p += c.length;
            }
            resolve({ status: res.statusCode ?? 0, body: out.subarray(0, n) });
          });
          res.on('error', fail);
        },
      );
      const fail = (e: Error) => {
        clearTimeout(timer);
        reject(e);
      };
      const timer = setTimeout(() => {
        this.abandoned.add(body);
        r.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' }));
      }, timeoutMs);
      r.on('error', fail);
      r.end(body);
    });
  }

  /** One lookup, retried once on failure while the deadline allows (not a version mismatch: every pod of a shard's Service has one version). */
  async lookup(req: Omit<LookupRequest, 'version'>, deadline: number): Promise<LookupResult[]> {
    const body = encodeRequest({ ...req, version: this.version }, (n) => this.buffers.acquire(n));
    try {
      const r = await this.call(req, body, deadline);
      this.mark(true);
      return r;
    } catch (first) {
      if ((first as ServeError).kind === ErrorCode.ShardVersionMismatch) {
        this.mark(false);
        throw first;
      }
      try {
        const r = await this.call(req, body, deadline);
        this.mark(true);
        return r;
      } catch {
        this.mark(false);
        throw first;
      }
    } finally {
      // A call that timed out may still be writing the body: only a completed exchange returns the buffer.
      if (!this.abandoned.has(body)) this.buffers.release(body);
    }
  }

  /** Polls the shard's /readyz every intervalMs until stopped. */
  startProbe(intervalMs: number, onChange: (up: boolean) => void): void {
    this.onChange = onChange;
    const probe = async () => {
      let ok = false;
      try {
        const headers = { [VERSION_HEADER]: versionToken(this.version) };
        ok = (await fetch(`${this.endpoint}/readyz`, { headers, signal: AbortSignal.timeout(Math.max(200, intervalMs)) })).ok;
      } catch {
        ok = false;
      }
      this.mark(ok);
      this.timer = this.clock.setTimeout(() => void probe(), intervalMs);
    };
    void probe();
  }

  stop(): void {
    this.clock.clearTimeout(this.timer);
    this.agent.destroy();
  }
}
