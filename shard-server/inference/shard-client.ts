// The main's client for one sparse shard: binary lookups with a per-call deadline and one retry, plus a
// background readiness probe so the main knows a shard is back even without traffic.
import type { Clock } from '../../operator/lib/clock.js';
import { ErrorCode, ServeError } from '../http/errors.js';
import { CONTENT_TYPE, decodeResponse, encodeRequest, type LookupRequest, type LookupResult } from './protocol.js';

export class ShardClient {
  private reachable = false;
  private timer: unknown;
  private onChange: (up: boolean) => void = () => {};

  constructor(
    readonly shard: number,
    readonly endpoint: string,
    readonly tables: number[],
    private readonly clock: Clock,
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

  private async call(req: LookupRequest, body: Uint8Array, deadline: number): Promise<LookupResult[]> {
    const left = deadline - this.clock.now().getTime();
    if (left <= 0) throw new ServeError(ErrorCode.DeadlineExceeded, `shard ${this.shard}: deadline exceeded before the call`);
    let res: Response;
    try {
      res = await fetch(`${this.endpoint}/v1/lookup`, { method: 'POST', headers: { 'content-type': CONTENT_TYPE }, body: body as unknown as BodyInit, signal: AbortSignal.timeout(left) });
    } catch (e) {
      const timeout = (e as Error).name === 'TimeoutError';
      throw new ServeError(timeout ? ErrorCode.DeadlineExceeded : ErrorCode.ShardUnavailable, `shard ${this.shard} (${this.endpoint}): ${timeout ? `no answer within ${left} ms` : (e as Error).message}`);
    }
    if (!res.ok) throw new ServeError(res.status >= 500 ? ErrorCode.ShardUnavailable : ErrorCode.Internal, `shard ${this.shard} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    return decodeResponse(new Uint8Array(await res.arrayBuffer()), req.batch);
  }

  /** One lookup, retried once on failure while the deadline allows. */
  async lookup(req: LookupRequest, deadline: number): Promise<LookupResult[]> {
    const body = encodeRequest(req);
    try {
      const r = await this.call(req, body, deadline);
      this.mark(true);
      return r;
    } catch (first) {
      try {
        const r = await this.call(req, body, deadline);
        this.mark(true);
        return r;
      } catch {
        this.mark(false);
        throw first;
      }
    }
  }

  /** Polls the shard's /readyz every intervalMs until stopped. */
  startProbe(intervalMs: number, onChange: (up: boolean) => void): void {
    this.onChange = onChange;
    const probe = async () => {
      let ok = false;
      try {
        ok = (await fetch(`${this.endpoint}/readyz`, { signal: AbortSignal.timeout(Math.max(200, intervalMs)) })).ok;
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
  }
}
