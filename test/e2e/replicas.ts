// Makes the pods KWOK fakes really serve: one local shard-server process per ready pod of a RecModel, started
// and stopped as the Deployments' replicas change, behind one HTTP front per component that spreads requests
// over that component's processes (a Service, request by request), and a Prometheus file_sd target per pod
// labelled with its namespace and pod name, as a PodMonitor would label it. So the autoscaler's loop closes:
// the replicas it asks for are the processes that serve, and latency falls when it adds the right ones.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { resolveLocal, waitReady, writeServingFiles } from '../../cli/local.js';
import { shardServerArgs } from '../../contracts/shard-server-args.js';
import { freePort } from '../../lib/net.js';
import type { RecModel } from '../../operator/api/v1alpha1/index.js';
import { LABEL_COMPONENT, LABEL_INSTANCE, LABEL_SHARD } from '../../operator/builders/labels.js';
import type { KubeClient } from '../../operator/kube/client.js';
import { ROOT } from './support.js';

interface Replica {
  pod: string;
  component: string;
  port: number;
  proc: ChildProcess;
  ready: boolean;
}

/** A component's Service: each request goes to the next ready process, round robin. */
class Front {
  readonly backends: Replica[] = [];
  private next = 0;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64, noDelay: true } as ConstructorParameters<typeof Agent>[0]);
  server?: Server;
  port = 0;

  async start(): Promise<void> {
    this.port = await freePort();
    this.server = createServer((req, res) => {
      const ready = this.backends.filter((b) => b.ready);
      if (!ready.length) {
        res.writeHead(503).end('no ready endpoints');
        return;
      }
      const b = ready[this.next++ % ready.length]!;
      const up = request({ host: '127.0.0.1', port: b.port, path: req.url, method: req.method, headers: req.headers, agent: this.agent }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', (e) => {
        if (!res.headersSent) res.writeHead(502);
        res.end(String(e));
      });
      req.pipe(up);
    });
    this.server.keepAliveTimeout = 65_000;
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }

  async stop(): Promise<void> {
    this.agent.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

export interface RunnerOptions {
  namespace: string;
  rm: RecModel;
  modelDir: string;
  dir: string;
  client: KubeClient;
  /** Emulated service time (ms) of each component's processes (--emulate-service-ms). */
  emulateMs: (role: 'main' | 'sparse', shard?: number) => number;
}

export class ReplicaRunner {
  readonly targetsFile: string;
  private readonly fronts = new Map<string, Front>();
  private readonly replicas = new Map<string, Replica>();
  private timer?: NodeJS.Timeout;
  private planFile = '';
  private modelConfig = '';
  private syncing = false;

  constructor(private readonly o: RunnerOptions) {
    this.targetsFile = join(o.dir, 'targets.json');
  }

  /** The main's front: where clients send predictions. */
  get mainUrl(): string {
    return `http://127.0.0.1:${this.fronts.get('main')!.port}`;
  }

  /** Processes serving each component now. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.replicas.values()) out[r.component] = (out[r.component] ?? 0) + (r.ready ? 1 : 0);
    return out;
  }

  async start(): Promise<void> {
    mkdirSync(this.o.dir, { recursive: true });
    const { spec, plan } = resolveLocal(this.o.rm);
    const components = ['main', ...plan.shards.map((s) => `shard-${s.index}`)];
    for (const c of components) {
      const f = new Front();
      await f.start();
      this.fronts.set(c, f);
    }
    const files = writeServingFiles(
      this.o.dir,
      this.o.rm.metadata.name,
      spec,
      plan,
      this.o.modelDir,
      plan.shards.map((s) => this.fronts.get(`shard-${s.index}`)!.port),
    );
    this.planFile = files.plan;
    this.modelConfig = files.modelConfig;
    this.writeTargets();
    this.timer = setInterval(() => void this.sync(), 500);
    await this.sync();
  }

  private async sync(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      const pods = ((await this.o.client.core.listNamespacedPod({ namespace: this.o.namespace, labelSelector: `${LABEL_INSTANCE}=${this.o.rm.metadata.name}` }))
        .items ?? []) as V1Pod[];
      const live = new Set<string>();
      for (const p of pods) {
        const ready = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && !p.metadata?.deletionTimestamp;
        if (!ready) continue;
        const name = p.metadata!.name!;
        live.add(name);
        if (!this.replicas.has(name)) await this.launch(p);
      }
      for (const [name, r] of this.replicas) {
        if (live.has(name)) continue;
        this.replicas.delete(name);
        const front = this.fronts.get(r.component)!;
        front.backends.splice(front.backends.indexOf(r), 1);
        r.proc.kill('SIGTERM');
      }
      this.writeTargets();
    } catch {
      // the API server restarting or the namespace going away: the next tick tries again
    } finally {
      this.syncing = false;
    }
  }

  private async launch(p: V1Pod): Promise<void> {
    const labels = p.metadata!.labels ?? {};
    const role = labels[LABEL_COMPONENT] === 'sparse' ? 'sparse' : 'main';
    const shard = labels[LABEL_SHARD] !== undefined ? Number(labels[LABEL_SHARD]) : undefined;
    const component = role === 'main' ? 'main' : `shard-${shard}`;
    const port = await freePort();
    const args = [
      join(ROOT, 'dist', 'shard-server', 'main.js'),
      ...shardServerArgs({
        role,
        shard,
        plan: this.planFile,
        modelConfig: this.modelConfig,
        model: this.o.modelDir,
        host: '127.0.0.1',
        port,
        probeMs: 250,
        emulateServiceMs: this.o.emulateMs(role, shard),
        ...(role === 'main' ? { scheduler: 'fixed', batchSize: 1024, workers: 0 } : {}),
      }),
    ];
    const out = openSync(join(this.o.dir, `${p.metadata!.name}.log`), 'a');
    const proc = spawn(process.execPath, args, { stdio: ['ignore', out, out], env: { ...process.env, RECSHARD_LOG_LEVEL: 'warn' } });
    const r: Replica = { pod: p.metadata!.name!, component, port, proc, ready: false };
    this.replicas.set(r.pod, r);
    this.fronts.get(component)!.backends.push(r);
    void this.whenReady(r);
  }

  private async whenReady(r: Replica): Promise<void> {
    try {
      await waitReady(`http://127.0.0.1:${r.port}`, 60_000, [{ name: r.pod, port: r.port, args: [], proc: r.proc }]);
      r.ready = true;
    } catch {
      // exited or never ready: it takes no requests, and the test's assertions say what is missing
    }
  }

  /** Prometheus file_sd: one target per pod, labelled as a PodMonitor labels it; written atomically. */
  private writeTargets(): void {
    const targets = [...this.replicas.values()].map((r) => ({ targets: [`127.0.0.1:${r.port}`], labels: { namespace: this.o.namespace, pod: r.pod } }));
    const tmp = `${this.targetsFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(targets));
    renameSync(tmp, this.targetsFile);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(
      [...this.replicas.values()].map(
        (r) =>
          new Promise<void>((res) => {
            if (r.proc.exitCode !== null || r.proc.signalCode !== null) return res();
            r.proc.once('exit', () => res());
            r.proc.kill('SIGTERM');
            setTimeout(() => r.proc.kill('SIGKILL'), 3000).unref();
          }),
      ),
    );
    await Promise.all([...this.fronts.values()].map((f) => f.stop()));
  }
}
