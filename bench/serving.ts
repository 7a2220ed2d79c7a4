// Benchmark 7, serving speed against what a user would try first: the same model directory served by recshard's
// main (monolithic), by PyTorch eager (nn.EmbeddingBag sum + nn.Linear, inference_mode, one thread) behind
// Python's http.server (bench/torch/dlrm.py), and a node:http server that reads the body and answers a reply of
// the same size without computing anything (the floor any HTTP server on this machine pays). One client on one
// keep-alive connection per server, the three interleaved query by query so that noise hits them alike; the same
// binary predict bodies to both models, whose scores must agree within 1e-5 relative.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { build } from 'hdr-histogram-js';
import type { LocalOptions } from '../cli/local.js';
import type { Manifest } from '../contracts/model-format.js';
import { decodeScores, PREDICT_CONTENT_TYPE } from '../contracts/wire/predict.js';
import type { RecModel } from '../operator/api/v1alpha1/index.js';
import { example, log, queries, round, serve, stageSums } from './lib.js';
import { startTorchServer, torchVersions } from './torch.js';

export interface Percentiles {
  p50Us: number;
  p99Us: number;
}

export interface ServingRow {
  batch: number;
  recshard: Percentiles;
  torch: Percentiles;
  echo: Percentiles;
  /** recshard p50 / torch p50. */
  vsTorch: number;
  /** The model's own compute in recshard (mean of the server's embeddings, interaction and MLP stages, us). */
  computeUs: number;
  /** recshard p50 minus its compute, and that over the echo floor's p50. */
  overheadUs: number;
  overheadVsEcho: number;
  /** CPU per query of each server process (ms), the client excluded. */
  cpuMs: { recshard: number; torch: number };
}

export interface ServingResult {
  model: string;
  file: string;
  queriesPerBatch: number;
  versions: Record<string, string>;
  /** Largest relative difference between recshard's and torch's scores over every query sent. */
  maxRelDiff: number;
  rows: ServingRow[];
  /** Resident memory of each process over the bytes of the tables it holds (MiB), unloaded after the run. */
  memory: { role: 'main' | 'shard'; rssMiB: number; tableMiB: number; overheadMiB: number }[];
}

const CLOCK_TICKS = 100;
const BLOCK = 20;
const cpuSeconds = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
};
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/** A node:http server in its own process: reads the body, answers `replyBytes` bytes. Resolves with its port. */
async function startEcho(replyBytes: number): Promise<{ port: number; child: ChildProcess }> {
  const code = `
    const http = require('node:http');
    const reply = Buffer.alloc(${replyBytes});
    const s = http.createServer((req, res) => {
      req.on('data', () => {});
      req.on('end', () => { res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': reply.length }); res.end(reply); });
    });
    s.keepAliveTimeout = 60000;
    s.listen(0, '127.0.0.1', () => process.stdout.write('listening ' + s.address().port + '\\n'));
    process.stdin.on('close', () => process.exit(0));
    process.stdin.resume();`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.once('exit', (c) => reject(new Error(`echo server exited with code ${c}`)));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
  });
  return { port, child };
}

/** One POST on a keep-alive agent; resolves with the reply and the microseconds it took. */
function post(agent: Agent, url: URL, body: Uint8Array): Promise<{ us: number; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': PREDICT_CONTENT_TYPE, 'content-length': body.byteLength } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const us = (performance.now() - t) * 1000;
        if (res.statusCode !== 200) return reject(new Error(`${url.href} answered ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)}`));
        resolve({ us, bytes: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const percentiles = (us: number[]): Percentiles => {
  const h = build({ lowestDiscernibleValue: 1, highestTrackableValue: 1e9, numberOfSignificantValueDigits: 3 });
  for (const x of us) h.recordValue(Math.max(1, Math.round(x)));
  return { p50Us: h.getValueAtPercentile(50), p99Us: h.getValueAtPercentile(99) };
};

function maxRel(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(b[i]!), 1e-6));
  return worst;
}

/** MiB of the named tables as the model directory stores them. */
function tableMiB(modelDir: string, names: string[]): number {
  const manifest = JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8')) as Manifest;
  const bytes = new Map(manifest.tables.map((t) => [t.name, t.bytes]));
  return names.reduce((n, t) => n + (bytes.get(t) ?? 0), 0) / 2 ** 20;
}

export interface ServingOptions {
  file: string;
  model: string;
  batches: number[];
  /** Measured queries per batch size and server (after `warmup`). */
  queries: number;
  warmup: number;
  /** The PyTorch venv's python (torchPython()). */
  python: string;
  /** How recshard's main runs (default: whole queries, its other defaults). */
  recshard?: Partial<LocalOptions>;
}

export async function benchServing(o: ServingOptions): Promise<ServingResult> {
  const { python } = o;
  const versions = torchVersions(python);
  const rm: RecModel = example(o.file, { strategy: 'monolithic' }, `bench-serving-${o.file.replace('.yaml', '')}`);
  const name = rm.metadata.name;
  // whole queries on one thread at a time, as PyTorch runs them (set_num_threads(1)): the same compute resources
  const { d, info } = await serve(rm, { scheduler: 'fixed', batchSize: 1024, ...o.recshard });
  const stops: (() => Promise<void> | void)[] = [() => d.stop()];
  try {
    const torch = await startTorchServer(python, d.modelDir, name);
    stops.push(() => torch.stop());
    const mainPid = d.processes.find((p) => p.name === 'main')!.proc.pid!;
    const rows: ServingRow[] = [];
    let worstRel = 0;
    for (const batch of o.batches) {
      const qs = queries(info, `fixed:${batch}`, 64);
      const replyBytes = (await post(new Agent({ keepAlive: false }), new URL(d.predictUrl), qs[0]!.body)).bytes.length;
      const echo = await startEcho(replyBytes);
      stops.push(() => void echo.child.kill());
      const targets = [
        { key: 'recshard' as const, url: new URL(d.predictUrl), pid: mainPid },
        { key: 'torch' as const, url: new URL(torch.predictUrl), pid: torch.pid },
        { key: 'echo' as const, url: new URL(`http://127.0.0.1:${echo.port}/`), pid: echo.child.pid! },
      ];
      const agents = targets.map(() => new Agent({ keepAlive: true, maxSockets: 1 }));
      const us = targets.map(() => [] as number[]);
      const cpu = targets.map(() => 0);
      // warm-up: every server, then the stage means the measured queries start from
      for (let i = 0; i < o.warmup; i++) for (let j = 0; j < targets.length; j++) await post(agents[j]!, targets[j]!.url, qs[i % qs.length]!.body);
      const before = await stageSums(d.mainUrl);
      // blocks of BLOCK queries per server, in a rotating order: noise hits all three alike, and each server runs
      // warm (query by query, every server would wake cold after the others' turns)
      const answers: Buffer[][] = targets.map(() => []);
      for (let start = 0, round = 0; start < o.queries; start += BLOCK, round++) {
        for (let k = 0; k < targets.length; k++) {
          const j = (round + k) % targets.length;
          const t = targets[j]!;
          const c0 = cpuSeconds(t.pid);
          for (let i = start; i < Math.min(start + BLOCK, o.queries); i++) {
            const r = await post(agents[j]!, t.url, qs[i % qs.length]!.body);
            us[j]!.push(r.us);
            if (i < qs.length) answers[j]![i] = r.bytes;
          }
          cpu[j]! += cpuSeconds(t.pid) - c0;
        }
      }
      for (let i = 0; i < answers[0]!.length; i++)
        worstRel = Math.max(worstRel, maxRel(decodeScores(answers[0]![i]!).scores, decodeScores(answers[1]![i]!).scores));
      const after = await stageSums(d.mainUrl);
      // stage means over the measured queries only
      const stage = (k: string) => (((after.sums[k] ?? 0) - (before.sums[k] ?? 0)) / (after.count - before.count)) * 1e6;
      agents.forEach((a) => a.destroy());
      echo.child.kill();
      const [rec, tor, ech] = us.map(percentiles) as [Percentiles, Percentiles, Percentiles];
      const computeUs = Math.round(stage('embeddings') + stage('interaction') + stage('bottom_mlp') + stage('top_mlp'));
      const overheadUs = rec.p50Us - computeUs;
      const row: ServingRow = {
        batch,
        recshard: rec,
        torch: tor,
        echo: ech,
        vsTorch: round(rec.p50Us / tor.p50Us, 3),
        computeUs,
        overheadUs,
        overheadVsEcho: round(overheadUs / ech.p50Us, 3),
        cpuMs: { recshard: round((cpu[0]! / o.queries) * 1000, 2), torch: round((cpu[1]! / o.queries) * 1000, 2) },
      };
      log(
        `serving: batch ${batch}: p50 recshard ${rec.p50Us} us, torch ${tor.p50Us} us (${row.vsTorch}x), echo ${ech.p50Us} us; ` +
          `compute ${computeUs} us, overhead ${overheadUs} us = ${row.overheadVsEcho}x echo`,
      );
      rows.push(row);
    }
    // a baseline that computes something else would make every ratio meaningless
    if (!(worstRel <= 1e-5)) throw new Error(`recshard's and torch's scores differ by ${worstRel} relative (over 1e-5): the baseline is not the same model`);
    // memory: the main above, and a shard of the same model served singular
    const memory: ServingResult['memory'] = [];
    const mainTables = tableMiB(d.modelDir, d.plan.mainTables);
    memory.push({ role: 'main', rssMiB: round(rssMiB(mainPid), 1), tableMiB: round(mainTables, 1), overheadMiB: round(rssMiB(mainPid) - mainTables, 1) });
    const sing = await serve(example(o.file, { strategy: 'singular' }, `${name}-singular`));
    try {
      const shard = sing.d.processes.find((p) => p.name !== 'main')!;
      const shardTables = tableMiB(sing.d.modelDir, sing.d.plan.shards[0]!.tables);
      const rss = rssMiB(shard.proc.pid!);
      memory.push({ role: 'shard', rssMiB: round(rss, 1), tableMiB: round(shardTables, 1), overheadMiB: round(rss - shardTables, 1) });
    } finally {
      await sing.d.stop();
    }
    return { model: o.model, file: o.file, queriesPerBatch: o.queries, versions, maxRelDiff: worstRel, rows, memory };
  } finally {
    for (const s of stops.reverse()) await s();
  }
}
