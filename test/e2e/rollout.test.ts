// Zero-downtime re-sharding and model updates on real pods: under constant open-loop load through the main's
// Service (recshard load, inside the node's network namespace, recording every answer), the model switches
// load-balanced/4 -> net-specific -> singular -> load-balanced/2, then to an artifact with new weights. No request
// may fail or time out, and every answer must be exactly the old or the new model's scores for its query (both
// models served locally as references), never a mix. Each switch's peak extra pods and memory are reported
// (printed after the suite; the test asserts the surge stays within one extra version's shards and one main pod).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel, resolveLocal, serveLocal } from '../../cli/local.js';
import { modelPath, predictPath } from '../../contracts/endpoints.js';
import type { ModelInfo } from '../../contracts/model-info.js';
import { decodeScores, PREDICT_CONTENT_TYPE } from '../../contracts/wire/predict.js';
import { parseSizeSpec } from '../../loadgen/distributions.js';
import { buildQueries } from '../../loadgen/workload.js';
import type { RecModel } from '../../operator/api/v1alpha1/index.js';
import { createRealNamespace, modelVolume, realNode, serviceUrl } from './real-pods.js';
import { applyYaml, deleteNamespace, getRecModel, installCrd, kubectlJson, ROOT, startOperator, waitUntil, type OperatorProcess } from './support.js';

const NAME = 'rmc-roll';
const WORKLOAD = { sizes: 'fixed:4', seed: 5, pool: 24 };
const QPS = 25;
const base = (artifact: string, sharding: Record<string, unknown>): RecModel => ({
  apiVersion: 'recshard.io/v1alpha1',
  kind: 'RecModel',
  metadata: { name: NAME },
  spec: {
    model: {
      architecture: 'dlrm-rmc1',
      denseFeatures: 32,
      bottomMLP: [32, 16],
      topMLP: [64, 1],
      interaction: 'dot',
      tableGroups: [
        { namePrefix: 'user-', count: 4, rows: 4000, dim: 16, poolingFactor: 20, net: 'user' },
        { namePrefix: 'item-', count: 4, rows: 4000, dim: 16, poolingFactor: 20, net: 'item' },
      ],
    },
    artifact: { uri: `file:///models/${artifact}`, volume: { persistentVolumeClaim: { claimName: 'models', readOnly: true } } },
    sharding: { shardMemory: '64Mi', ...sharding },
    rollout: { drainPeriod: '3s', progressDeadline: '3m' },
    placement: {
      main: { resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } } },
      sparse: { resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } } },
    },
  } as RecModel['spec'],
});

interface Sample {
  t: number;
  pods: number;
  memoryBytes?: number;
}
interface SwitchReport {
  to: string;
  /** When the change was applied (ms since the epoch; answers carry their dueAt on the same clock). */
  appliedAt: number;
  seconds: number;
  basePods: number;
  /** Sparse shards of the new plan. */
  newShards: number;
  peakExtraPods: number;
  peakExtraMemoryMiB?: number;
  phases: string[];
}
interface Recorded {
  query: number;
  dueAt: number;
  status: number;
  scores?: number[];
  error?: string;
}

let ns: string;
let op: OperatorProcess | undefined;
let load: ChildProcess | undefined;
let dir: string;
const reference: Record<'a' | 'b', number[][]> = { a: [], b: [] };
const reports: SwitchReport[] = [];

/** Live pods of the model (terminating ones count: they still hold memory and may still answer). */
const podCount = () => kubectlJson<{ items: unknown[] }>(['get', 'pods', '-n', ns, '-l', `app.kubernetes.io/instance=${NAME}`]).items.length;
/** Memory in use by every pod on the node, from the kubelet's cgroup (cgroup v2), when this machine has it. */
function podsMemory(): number | undefined {
  const file = join('/sys/fs/cgroup', realNode().cgroupRoot, 'memory.current');
  return existsSync(file) ? Number(readFileSync(file, 'utf8')) : undefined;
}

/** Scores of every workload query from a model served locally (monolithic) out of `modelDir`. */
async function scoresOf(rm: RecModel, modelDir: string): Promise<number[][]> {
  const local = await serveLocal({ ...rm, spec: { ...rm.spec, sharding: { shardMemory: '64Mi', strategy: 'monolithic' } } }, { modelDir, scale: 1, seed: 1 });
  try {
    const info = (await (await fetch(`${local.mainUrl}${modelPath(NAME)}`)).json()) as ModelInfo;
    const queries = buildQueries(info, { sizes: parseSizeSpec(WORKLOAD.sizes, () => ''), zipf: 0, seed: WORKLOAD.seed, pool: WORKLOAD.pool });
    const out: number[][] = [];
    for (const q of queries) {
      const res = await fetch(`${local.mainUrl}${predictPath(NAME)}`, {
        method: 'POST',
        headers: { 'content-type': PREDICT_CONTENT_TYPE },
        body: q.body as unknown as BodyInit,
      });
      expect(res.status).toBe(200);
      out.push(Array.from(decodeScores(new Uint8Array(await res.arrayBuffer())).scores));
    }
    return out;
  } finally {
    await local.stop();
  }
}

const close = (x: number[], y: number[] | undefined) =>
  !!y && x.length === y.length && x.every((v, i) => Math.abs(v - y[i]!) <= 1e-5 * Math.max(1, Math.abs(v)));

/** Applies `rm` and waits until its rollout is complete: the new version alone, every old pod gone. */
async function switchTo(rm: RecModel, label: string): Promise<{ appliedAt: number; doneAt: number }> {
  const basePods = podCount();
  const baseMemory = podsMemory();
  const samples: Sample[] = [];
  const phases = new Set<string>();
  const appliedAt = Date.now();
  const generation = (getRecModel(ns, NAME).metadata.generation ?? 0) + 1;
  applyYaml(ns, [rm]);
  await waitUntil(
    `${label}: rollout complete`,
    () => {
      const m = getRecModel(ns, NAME);
      const mem = podsMemory();
      samples.push({ t: Date.now(), pods: podCount(), ...(mem !== undefined ? { memoryBytes: mem } : {}) });
      if (m.status?.rollout?.phase) phases.add(m.status.rollout.phase);
      const r = m.status?.rollout;
      const ready = m.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      if (m.status?.observedGeneration !== generation || r?.phase !== 'Complete' || !ready) return false;
      // every pod of the model is on the new version
      const pods = kubectlJson<{ items: { metadata: { labels: Record<string, string> } }[] }>([
        'get',
        'pods',
        '-n',
        ns,
        '-l',
        `app.kubernetes.io/instance=${NAME}`,
      ]).items;
      return pods.every((p) => p.metadata.labels['recshard.io/version'] === r.toVersion);
    },
    240_000,
    500,
  );
  const doneAt = Date.now();
  const newShards = getRecModel(ns, NAME).status?.plan?.shards ?? 0;
  const peakMem = Math.max(...samples.map((s) => s.memoryBytes ?? 0));
  reports.push({
    to: label,
    appliedAt,
    seconds: Math.round((doneAt - appliedAt) / 100) / 10,
    basePods,
    newShards,
    peakExtraPods: Math.max(...samples.map((s) => s.pods)) - basePods,
    ...(baseMemory !== undefined ? { peakExtraMemoryMiB: Math.round((peakMem - baseMemory) / 2 ** 20) } : {}),
    phases: [...phases],
  });
  return { appliedAt, doneAt };
}

beforeAll(async () => {
  installCrd();
  ns = createRealNamespace('rollout');
  dir = mkdtempSync(join(tmpdir(), 'recshard-rollout-'));
  const volume = await modelVolume(ns);
  // two artifacts of the same shapes: weights from seed 1 (a) and seed 2 (b)
  const rm = base('a', { strategy: 'load-balanced', shards: 4 });
  const { spec } = resolveLocal(rm);
  const dirs = { a: ensureModel(rm, spec, 1, 1, () => {}), b: ensureModel(rm, spec, 1, 2, () => {}) };
  for (const k of ['a', 'b'] as const) cpSync(dirs[k], join(volume, k), { recursive: true });
  reference.a = await scoresOf(rm, dirs.a);
  reference.b = await scoresOf(rm, dirs.b);
  op = await startOperator(ns, { extraArgs: ['--serving-poll=0'] });
  applyYaml(ns, [rm]);
  await waitUntil('the first version Ready', () => getRecModel(ns, NAME).status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True', 180_000, 500);
}, 400_000);

afterAll(async () => {
  load?.kill('SIGKILL');
  await op?.stop();
  if (ns) deleteNamespace(ns);
  console.log(`rollout switches (peak extra pods and memory beside the running version):\n${JSON.stringify(reports, null, 2)}`);
});

describe('switching plans and artifacts under load on real pods', () => {
  it('loses no request and never mixes two versions in one answer', async () => {
    // the two models disagree on every query, so an answer mixing them would match neither
    reference.a.forEach((s, q) => expect(close(s, reference.b[q])).toBe(false));
    const record = join(dir, 'answers.jsonl');
    const summary = join(dir, 'load.json');
    const loadArgs = (seconds: number, extra: string[]) => [
      `--net=${realNode().network.netns}`,
      '--',
      process.execPath,
      join(ROOT, 'dist', 'cli', 'recshard.js'),
      'load',
      `--url=${serviceUrl(ns, `${NAME}-main`)}`,
      `--model=${NAME}`,
      `--sizes=${WORKLOAD.sizes}`,
      `--seed=${WORKLOAD.seed}`,
      `--pool=${WORKLOAD.pool}`,
      `--qps=${QPS}`,
      `--duration=${seconds}`,
      '--timeout-ms=5000',
      // a budget two cores starved by pods starting beside the old set can meet: this test is about the switch
      '--deadline-ms=4000',
      ...extra,
    ];
    // a warm-up first, as before any measurement: the pods' first queries compile code and open connections
    execFileSync('nsenter', loadArgs(8, []), { stdio: 'ignore' });
    load = spawn('nsenter', loadArgs(1200, [`--record=${record}`, `--json=${summary}`]), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    load.stderr!.on('data', (c) => (stderr += c));
    const exited = new Promise<number | null>((r) => load!.once('exit', (code) => r(code)));
    await waitUntil('load flowing', () => existsSync(record) && readFileSync(record, 'utf8').split('\n').length > 20, 30_000, 200);

    await switchTo(base('a', { strategy: 'net-specific' }), 'net-specific');
    await switchTo(base('a', { strategy: 'singular' }), 'singular');
    await switchTo(base('a', { strategy: 'load-balanced', shards: 2 }), 'load-balanced/2');
    const artifact = await switchTo(base('b', { strategy: 'load-balanced', shards: 2 }), 'artifact b');
    await new Promise((r) => setTimeout(r, 2000));

    load.kill('SIGTERM');
    expect(await exited, stderr).toBe(0);
    const result = JSON.parse(readFileSync(summary, 'utf8')) as { sent: number; ok: number; errors: number; timeouts: number };
    const answers = readFileSync(record, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Recorded);
    const failed = answers.filter((a) => a.status !== 200);
    // one line per failure (the answer's time, status and error), so a CI log's tail shows them
    const failures = failed.slice(0, 5).map(({ scores: _, ...a }) => JSON.stringify(a));
    expect(failed.length, `failed answers (switches applied at ${reports.map((r) => `${r.to} at ${r.appliedAt}`).join(', ')}):\n${failures.join('\n')}`).toBe(
      0,
    );
    expect(result).toMatchObject({ errors: 0, timeouts: 0 });
    expect(result.ok).toBe(result.sent);
    expect(answers.length).toBe(result.sent);
    expect(result.sent).toBeGreaterThan(QPS * 60);

    const which = (a: Recorded) => (close(a.scores!, reference.a[a.query]) ? 'a' : close(a.scores!, reference.b[a.query]) ? 'b' : 'mixed');
    const mixed = answers.filter((a) => which(a) === 'mixed');
    expect(mixed.slice(0, 3), `${mixed.length} answers match neither model`).toEqual([]);
    // before the artifact changed every answer is the old model's; once its rollout finished, the new one's
    expect(answers.filter((a) => a.dueAt < artifact.appliedAt && which(a) !== 'a')).toEqual([]);
    expect(answers.filter((a) => a.dueAt > artifact.doneAt && which(a) !== 'b')).toEqual([]);
    expect(answers.some((a) => which(a) === 'b')).toBe(true);

    // one extra version's shards at most: a switch never holds more than its new shards and one main pod beside the old
    for (const r of reports) expect(r.peakExtraPods, JSON.stringify(r)).toBeLessThanOrEqual(r.newShards + 1);
    expect(reports.map((r) => r.phases.includes('StartingShards') || r.phases.includes('SwitchingMain'))).toEqual([true, true, true, true]);
  }, 1_200_000);
});
