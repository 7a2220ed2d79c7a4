// Benchmark 6: a re-shard under load on real pods. The local cluster (local-cluster/: control plane plus a real
// node; root), the chart's operator (helm install), a model large enough that each shard takes seconds to load, and
// open-loop load through the main's Service from inside the node's network namespace, recording every answer. At a
// steady point the RecModel is re-applied with another strategy; measured: the time from that apply to the last
// old pod gone, the requests served meanwhile (and any that failed), their p99 against the steady state before it,
// each new shard's start-up (pod created to Ready) and the peak extra pods.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { resolveLocal } from '../cli/local.js';
import { findRepoFile } from '../lib/paths.js';
import { kubectl, realPodNamespace, startCluster } from '../local-cluster/harness.js';
import { generateModel } from '../models/generate.js';
import type { RecModel } from '../operator/api/v1alpha1/index.js';
import { log, round } from './lib.js';

export interface RolloutOptions {
  /** Rows of each of the 8 tables (dim 64, fp32). */
  rows: number;
  qps: number;
  /** Seconds of steady load before and after the switch. */
  steadyS: number;
}

export interface RolloutSecond {
  /** Seconds since the load began. */
  t: number;
  p99Ms: number;
  answered: number;
  failed: number;
}

export interface RolloutResult {
  command: string;
  startedAt: string;
  model: { tables: number; totalMiB: number };
  from: string;
  to: string;
  qps: number;
  /** kubectl apply of the new plan to the last old pod gone. */
  switchS: number;
  /** Each new shard pod: created to Ready. */
  shardStartupS: number[];
  during: { answered: number; failed: number; timeouts: number; p50Ms: number; p99Ms: number };
  steady: { answered: number; p50Ms: number; p99Ms: number };
  peakExtraPods: number;
  phases: { phase: string; atS: number }[];
  /** Per second of the run, for the chart; the switch's window in the same seconds. */
  timeline: RolloutSecond[];
  window: { fromS: number; toS: number };
}

const NAME = 'rmc-bench';
const NS = 'rollout-bench';

function model(rows: number, sharding: Record<string, unknown>): RecModel {
  return {
    apiVersion: 'recshard.io/v1alpha1',
    kind: 'RecModel',
    metadata: { name: NAME },
    spec: {
      model: {
        architecture: 'dlrm-rmc1',
        denseFeatures: 64,
        bottomMLP: [64],
        topMLP: [64, 1],
        interaction: 'dot',
        tableGroups: [
          { namePrefix: 'user-', count: 4, rows, dim: 64, poolingFactor: 20, net: 'user' },
          { namePrefix: 'item-', count: 4, rows, dim: 64, poolingFactor: 20, net: 'item' },
        ],
      },
      artifact: { uri: 'file:///models/bench', volume: { persistentVolumeClaim: { claimName: 'models', readOnly: true } } },
      sharding: { shardMemory: '8Gi', ...sharding },
      rollout: { drainPeriod: '5s' },
      placement: { main: { resources: { requests: { cpu: '200m' } } }, sparse: { resources: { requests: { cpu: '100m' } } } },
    } as RecModel['spec'],
  };
}

const percentile = (xs: number[], p: number) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!, 1);
};
/** Answered requests of `as` and their p50 and p99. */
const summary = (as: Answer[]) => {
  const ms = as.filter((a) => a.status === 200).map((a) => a.latencyMs);
  return { answered: ms.length, p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99) };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  dueAt: number;
  atMs: number;
  latencyMs: number;
  status: number;
}

export async function benchRollout(o: RolloutOptions, command: string): Promise<RolloutResult> {
  const startedAt = new Date().toISOString();
  const cluster = await startCluster({ log });
  const k = (args: string[], input?: string) => kubectl(cluster.kubeconfig, args, input);
  const helm = (args: string[]) => execFileSync(join(cluster.binDir, 'helm'), [`--kubeconfig=${cluster.kubeconfig}`, ...args], { stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'recshard-bench-rollout-'));
  try {
    k(['apply', '--server-side', '-f', findRepoFile('crds')]);
    for (const ns of ['recshard-system', NS]) {
      k(['create', 'namespace', ns]);
      k(['annotate', 'namespace', ns, ...Object.entries(realPodNamespace()).map(([a, v]) => `${a}=${v}`)]);
    }
    helm([
      'install',
      'recshard',
      findRepoFile('charts', 'recshard'),
      '-n',
      'recshard-system',
      '--set',
      'networkPolicies.enabled=false',
      '--wait',
      '--timeout',
      '180s',
    ]);
    const apply = (doc: object) => k(['apply', '-n', NS, '-f', '-'], stringify(doc));
    apply({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'models' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '8Gi' } } },
    });
    let pv = '';
    for (let i = 0; i < 100 && !pv; i++, await sleep(200)) pv = k(['get', 'pvc', 'models', '-n', NS, '-o', 'jsonpath={.spec.volumeName}']);
    const volume = k(['get', 'pv', pv, '-o', 'jsonpath={.spec.hostPath.path}']);
    const first = model(o.rows, { strategy: 'load-balanced', shards: 4 });
    const { spec, plan } = resolveLocal(first);
    log(`  generating ${round(plan.totalBytes / 2 ** 20, 0)} MiB of tables into the node's volume`);
    generateModel({ name: NAME, model: spec.model, seed: 1, scale: 1, outDir: join(volume, 'bench') });

    apply(first);
    k(['wait', '-n', NS, '--for=condition=Ready', `recmodel/${NAME}`, '--timeout=600s']);
    const url = `http://${k(['get', 'service', `${NAME}-main`, '-n', NS, '-o', 'jsonpath={.spec.clusterIP}'])}:8080`;
    const loadArgs = (seconds: number, extra: string[]) => [
      `--net=${cluster.node!.network.netns}`,
      '--',
      process.execPath,
      findRepoFile('dist', 'cli', 'recshard.js'),
      'load',
      `--url=${url}`,
      `--model=${NAME}`,
      '--sizes=production',
      `--qps=${o.qps}`,
      `--duration=${seconds}`,
      '--timeout-ms=5000',
      // the budget of each query: what is measured is the switch, not the old pods' share of two cores
      '--deadline-ms=4000',
      ...extra,
    ];
    execFileSync('nsenter', loadArgs(5, []), { stdio: 'ignore' });
    const record = join(dir, 'answers.jsonl');
    const load = spawn('nsenter', loadArgs(3600, [`--record=${record}`]), { stdio: 'ignore' });
    const exited = new Promise((r) => load.once('exit', r));
    const t0 = Date.now();
    await sleep(o.steadyS * 1000);

    const pods = () =>
      JSON.parse(k(['get', 'pods', '-n', NS, '-l', `app.kubernetes.io/instance=${NAME}`, '-o', 'json'])) as {
        items: {
          metadata: { labels: Record<string, string>; creationTimestamp: string };
          status: { conditions?: { type: string; status: string; lastTransitionTime: string }[] };
        }[];
      };
    const basePods = pods().items.length;
    const to = { strategy: 'net-specific' };
    const generation = Number(k(['get', 'recmodel', NAME, '-n', NS, '-o', 'jsonpath={.metadata.generation}'])) + 1;
    const tApply = Date.now();
    apply(model(o.rows, to));
    let peak = basePods;
    const phases: { phase: string; atS: number }[] = [];
    let version = '';
    for (;;) {
      await sleep(250);
      const rm = JSON.parse(k(['get', 'recmodel', NAME, '-n', NS, '-o', 'json'])) as RecModel;
      const r = rm.status?.rollout;
      if (rm.status?.observedGeneration !== generation || !r) continue;
      if (phases.at(-1)?.phase !== r.phase) phases.push({ phase: r.phase!, atS: round((Date.now() - tApply) / 1000, 1) });
      version = r.toVersion!;
      const p = pods().items;
      peak = Math.max(peak, p.length);
      if (r.phase === 'Complete' && p.every((x) => x.metadata.labels['recshard.io/version'] === version)) break;
      if (Date.now() - tApply > 900_000) throw new Error(`the rollout did not finish in 15 min (phase ${r.phase})`);
    }
    const tDone = Date.now();
    const startup = pods()
      .items.filter((p) => p.metadata.labels['app.kubernetes.io/component'] === 'sparse')
      .map((p) => {
        const ready = p.status.conditions?.find((c) => c.type === 'Ready' && c.status === 'True');
        return ready ? round((Date.parse(ready.lastTransitionTime) - Date.parse(p.metadata.creationTimestamp)) / 1000, 0) : NaN;
      });
    await sleep(o.steadyS * 500);
    load.kill('SIGTERM');
    await exited;

    const answers = readFileSync(record, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Answer);
    const ok = (a: Answer) => a.status === 200;
    const steady = answers.filter((a) => a.dueAt >= t0 && a.dueAt < tApply);
    const during = answers.filter((a) => a.dueAt >= tApply && a.dueAt <= tDone);
    const start = Math.min(...answers.map((a) => a.dueAt - a.atMs));
    const seconds = new Map<number, Answer[]>();
    for (const a of answers) {
      const s = Math.floor((a.dueAt - start) / 1000);
      seconds.set(s, [...(seconds.get(s) ?? []), a]);
    }
    return {
      command,
      startedAt,
      model: { tables: plan.tables.length, totalMiB: round(plan.totalBytes / 2 ** 20, 0) },
      from: 'load-balanced/4',
      to: 'net-specific',
      qps: o.qps,
      switchS: round((tDone - tApply) / 1000, 1),
      shardStartupS: startup,
      during: {
        ...summary(during),
        failed: during.filter((a) => !ok(a) && a.status !== -1).length,
        timeouts: during.filter((a) => a.status === -1).length,
      },
      steady: summary(steady),
      peakExtraPods: peak - basePods,
      phases,
      timeline: [...seconds.entries()]
        .sort(([a], [b]) => a - b)
        .map(([t, as]) => ({
          t,
          p99Ms: percentile(
            as.filter(ok).map((a) => a.latencyMs),
            99,
          ),
          answered: as.filter(ok).length,
          failed: as.filter((a) => !ok(a)).length,
        })),
      window: { fromS: round((tApply - start) / 1000, 1), toS: round((tDone - start) / 1000, 1) },
    };
  } finally {
    try {
      helm(['uninstall', 'recshard', '-n', 'recshard-system', '--wait', '--timeout', '60s']);
    } catch {
      // the cluster goes next in any case
    }
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
