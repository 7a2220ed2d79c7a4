// Leader election on a coordination.k8s.io Lease, after client-go's leaderelection: acquire when the lease is
// free or its holder has not renewed for leaseDuration (measured on our own clock, so skew does not matter),
// renew every retryPeriod, and give up leadership when renewals fail for renewDeadline. Writes use the
// lease's resourceVersion, so two candidates can never both win.
import type { V1Lease } from '@kubernetes/client-node';
import { realClock, type Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/log.js';
import { apiErrorMessage, type KubeClient } from '../kube/client.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** Lease times are MicroTime (six fractional digits); the client passes strings through unchanged. */
const microTime = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

type LeaseClient = Pick<KubeClient, 'getLease' | 'createLease' | 'replaceLease'>;

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private observed?: { holder: string; renewTime: string; at: number };
  private lastRenew = 0;
  private timer: unknown;

  constructor(
    private readonly client: LeaseClient,
    private readonly opts: LeaderElectionOptions,
    private readonly callbacks: { onStartedLeading: () => void; onStoppedLeading: () => void },
    private readonly log: Logger,
    private readonly clock: Clock = realClock,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  private schedule(): void {
    if (!this.stopped) this.timer = this.clock.setTimeout(() => void this.tick(), this.opts.retryPeriodMs);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const now = this.clock.now().getTime();
    try {
      const ok = await this.tryAcquireOrRenew(now);
      if (ok) {
        this.lastRenew = now;
        if (!this.leading) {
          this.leading = true;
          this.log.info('became leader', { lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.opts.identity });
          this.callbacks.onStartedLeading();
        }
      }
    } catch (e) {
      this.log.warn('lease update failed', { error: apiErrorMessage(e) });
    }
    if (this.leading && this.clock.now().getTime() - this.lastRenew > this.opts.renewDeadlineMs) {
      this.leading = false;
      this.log.error('lost leadership: could not renew the lease within the renew deadline');
      this.callbacks.onStoppedLeading();
    }
    this.schedule();
  }

  private leaseBody(existing: V1Lease | undefined, now: Date, acquiring: boolean): V1Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...existing?.metadata, name: this.opts.name, namespace: this.opts.namespace },
      spec: {
        holderIdentity: this.opts.identity,
        leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000),
        acquireTime: (acquiring ? microTime(now) : (existing?.spec?.acquireTime ?? microTime(now))) as unknown as Date,
        renewTime: microTime(now) as unknown as Date,
        leaseTransitions: (existing?.spec?.leaseTransitions ?? 0) + (acquiring && existing ? 1 : 0),
      },
    };
  }

  /** One attempt; true when we hold the lease afterwards. A 409 (someone else wrote first) is a plain false. */
  private async tryAcquireOrRenew(now: number): Promise<boolean> {
    const nowDate = new Date(now);
    const lease = await this.client.getLease(this.opts.namespace, this.opts.name);
    if (!lease) {
      await this.client.createLease(this.leaseBody(undefined, nowDate, true)).catch((e) => {
        if ((e as { code?: number }).code === 409) return undefined;
        throw e;
      });
      return (await this.client.getLease(this.opts.namespace, this.opts.name))?.spec?.holderIdentity === this.opts.identity;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const rt = lease.spec?.renewTime as unknown;
    const renewTime = rt instanceof Date ? rt.toISOString() : String(rt ?? '');
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: now };
    }
    const ours = holder === this.opts.identity;
    const expired = holder === '' || now - this.observed.at > this.opts.leaseDurationMs;
    if (!ours && !expired) return false;
    try {
      await this.client.replaceLease(this.leaseBody(lease, nowDate, !ours));
      return true;
    } catch (e) {
      if ((e as { code?: number }).code === 409) return false;
      throw e;
    }
  }

  /** Stops renewing and, if leading, frees the lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.client.getLease(this.opts.namespace, this.opts.name);
      if (lease?.spec?.holderIdentity === this.opts.identity) {
        await this.client.replaceLease({ ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } });
      }
    } catch (e) {
      this.log.warn('could not release the lease', { error: apiErrorMessage(e) });
    }
  }
}
