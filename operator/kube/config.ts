// The operator's KubeConfig: the client library makes a new https.Agent for every API request (so every request
// opens a TCP connection and does a TLS handshake: a third of the operator's CPU while it writes a large model).
// Requests here share one keep-alive agent per set of TLS options instead; a rotated certificate (new options)
// gets a new agent. Watches keep their own connections.
import { Agent } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

type RequestContext = Parameters<KubeConfig['applySecurityAuthentication']>[0];

export class PooledKubeConfig extends KubeConfig {
  private pooled?: { key: string; agent: Agent };

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getAgent();
    // proxies and plain http keep what the library made
    if (!(fresh instanceof Agent) || fresh.constructor !== Agent) return;
    const o = fresh.options;
    const key = [o.ca, o.cert, o.key, o.pfx, o.passphrase, o.rejectUnauthorized, o.servername].map((v) => String(v ?? '')).join('\0');
    if (this.pooled?.key !== key) {
      this.pooled?.agent.destroy();
      this.pooled = { key, agent: new Agent({ ...o, keepAlive: true }) };
    }
    context.setAgent(this.pooled.agent);
  }

  /** Closes the pooled connections (at shutdown). */
  close(): void {
    this.pooled?.agent.destroy();
    this.pooled = undefined;
  }
}
