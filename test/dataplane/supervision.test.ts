// `serve --local` supervises its processes as a kubelet would, on real shard-server processes: a process that dies by
// itself is restarted on its port with exponential backoff, a deliberate kill() leaves it down until its restart,
// stop() restarts nothing and leaves no process behind, the children exit when `recshard serve` itself is SIGKILLed
// (their IPC channel closes), and --shard-replicas N runs N processes per shard, all listed in plan.json.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { serveLocal, waitReady, type LocalDeployment, type LocalOptions } from '../../cli/local.js';
import { findRepoFile } from '../../lib/paths.js';
import { modelSource, readManifest } from '../../shard-server/model/load.js';
import { predict, randomRequest, zooRecModel } from './helpers.js';

const NAME = 'rmc1-sup';
const rm = zooRecModel('dlrm-rmc1', NAME, { strategy: 'load-balanced', shards: 2 });
const SCALE = 0.0005;
let d: LocalDeployment | undefined;
/** Processes a test started outside a deployment, SIGKILLed after it whatever happened. */
const strays: number[] = [];

afterEach(async () => {
  await d?.stop();
  d = undefined;
  for (const pid of strays.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

async function deploy(o: Partial<LocalOptions> = {}) {
  const lines: string[] = [];
  d = await serveLocal(rm, { scale: SCALE, seed: 1, log: (l) => lines.push(l), ...o });
  const request = randomRequest(await readManifest(modelSource(d.modelDir)), 4, 7);
  return { d, lines, request };
}

async function until<T>(what: string, fn: () => T | false | Promise<T | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Whether a process exists and is not a zombie (an orphan's zombie waits for whoever adopted it to reap it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The children of a process (every thread's), from /proc. */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (text) out.push(...text.split(/\s+/).map(Number));
  }
  return out;
}

const isShardServer = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(join('shard-server', 'main.js'));
  } catch {
    return false;
  }
};

const answers = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.status;

describe('supervision', () => {
  it('a sparse shard that dies is restarted on its port, with a backoff that doubles, and predictions recover', async () => {
    const { d, lines, request } = await deploy();
    const ok = await predict(d.predictUrl, request);
    expect(ok.status).toBe(200);
    // one process per shard: plan.json is what it always was, without replicas
    const plan = JSON.parse(readFileSync(join(d.runDir, 'plan.json'), 'utf8'));
    expect(plan.shards.map((s: object) => Object.keys(s).includes('replicas'))).toEqual([false, false]);

    const shard = d.processes.find((p) => p.name === 'shard-1')!;
    const { port, args } = shard;
    const first = shard.proc.pid!;
    process.kill(first, 'SIGKILL'); // behind the deployment's back
    await until('shard-1 restarted', () => shard.restarts === 1);
    expect(shard.proc.pid).not.toBe(first);
    expect(shard.port).toBe(port);
    expect(shard.args).toEqual(args);
    expect(shard.backoffMs).toBe(250);
    expect(lines).toContainEqual(expect.stringMatching(/^shard-1 exited \(signal SIGKILL\) after \d+\.\d s; restart 1 in 250 ms$/));
    await waitReady(`http://127.0.0.1:${port}`, 30_000, [shard]);
    // the main calls it again at the same URL: the same answers as before
    const back = await until('predictions answered again', async () => {
      const r = await predict(d.predictUrl, request);
      return r.status === 200 && r;
    });
    expect(back.json.scores).toEqual(ok.json.scores);

    // killed twice more, each soon after its restart: each restart waits twice as long as the one before
    const gaps: number[] = [];
    for (const n of [2, 3]) {
      const pid = shard.proc.pid!;
      const t = performance.now();
      process.kill(pid, 'SIGKILL');
      await until(`restart ${n}`, () => shard.restarts === n && shard.proc.pid !== pid);
      gaps.push(performance.now() - t);
      expect(alive(pid)).toBe(false);
    }
    expect(shard.backoffMs).toBe(1000);
    expect(lines.filter((l) => l.startsWith('shard-1 exited')).map((l) => l.replace(/.*; /, ''))).toEqual([
      'restart 1 in 250 ms',
      'restart 2 in 500 ms',
      'restart 3 in 1000 ms',
    ]);
    // the restarts really waited (timers may fire a millisecond early)
    expect(gaps[0]).toBeGreaterThanOrEqual(495);
    expect(gaps[1]).toBeGreaterThanOrEqual(995);
    expect(gaps[1]).toBeGreaterThan(gaps[0]!);
    // nothing else was restarted, and all of it serves again
    expect(d.processes.filter((p) => p.name !== 'shard-1').map((p) => p.restarts)).toEqual([0, 0]);
    await waitReady(`http://127.0.0.1:${port}`, 30_000, [shard]);
    await until('predictions answered again', async () => (await predict(d.predictUrl, request)).status === 200);
  });

  it('the main is supervised too', async () => {
    const { d } = await deploy();
    const main = d.processes.find((p) => p.name === 'main')!;
    const first = main.proc.pid!;
    process.kill(first, 'SIGKILL');
    await until('main restarted', () => main.restarts === 1);
    await waitReady(d.mainUrl, 30_000, [main]);
    expect(main.proc.pid).not.toBe(first);
  });

  it('a deliberate kill() stays down until its restart function, which starts it once', async () => {
    const { d, request } = await deploy();
    const shard = d.processes.find((p) => p.name === 'shard-0')!;
    const restart = await d.kill('shard-0');
    const killed = shard.proc;
    await new Promise((r) => setTimeout(r, 1500)); // well past the first backoff
    expect(shard.proc).toBe(killed);
    expect(await answers(`http://127.0.0.1:${shard.port}/healthz`)).toBeUndefined();
    await Promise.all([restart(), restart()]);
    const started = shard.proc;
    expect(started).not.toBe(killed);
    await restart();
    expect(shard.proc).toBe(started);
    expect(shard.restarts).toBe(0);
    expect(childPids(process.pid).filter(isShardServer)).toHaveLength(3);
    await until('predictions answered again', async () => (await predict(d.predictUrl, request)).status === 200);
    // and supervised again afterwards
    process.kill(shard.proc.pid!, 'SIGKILL');
    await until('shard-0 restarted', () => shard.restarts === 1);
  });

  it('stop() restarts nothing and leaves no process alive', async () => {
    const { d: dep } = await deploy();
    const pids = dep.processes.map((p) => p.proc.pid!);
    expect(childPids(process.pid).filter(isShardServer).sort()).toEqual([...pids].sort());
    const shard = dep.processes.find((p) => p.name === 'shard-0')!;
    process.kill(shard.proc.pid!, 'SIGKILL'); // its restart is waiting when stop() comes
    await until('shard-0 down', () => shard.proc.signalCode === 'SIGKILL');
    await dep.stop();
    d = undefined;
    for (const pid of pids) expect(alive(pid)).toBe(false);
    await new Promise((r) => setTimeout(r, 1000)); // past the restart's backoff
    expect(dep.processes.map((p) => p.restarts)).toEqual([0, 0, 0]);
    expect(dep.processes.map((p) => p.proc.pid)).toEqual(pids);
    expect(childPids(process.pid).filter(isShardServer)).toEqual([]);
  });

  it('supervise: false leaves a dead process down', async () => {
    const { d, lines } = await deploy({ supervise: false });
    const shard = d.processes.find((p) => p.name === 'shard-1')!;
    const pid = shard.proc.pid!;
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    expect(shard.proc.pid).toBe(pid);
    expect(shard.restarts).toBe(0);
    expect(lines).toContainEqual(expect.stringMatching(/^shard-1 exited \(signal SIGKILL\) after \d+\.\d s; supervision is off, so it stays down$/));
  });
});

describe('recshard serve', () => {
  const cli = () => findRepoFile('dist', 'cli', 'recshard.js');
  const modelFile = () => {
    const file = join(mkdtempSync(join(tmpdir(), 'recshard-serve-')), 'rmc1.yaml');
    writeFileSync(file, stringify(rm));
    return file;
  };

  it('SIGKILLed, it takes every shard-server with it', async () => {
    const serve: ChildProcess = spawn(process.execPath, [cli(), 'serve', '--local', modelFile(), '--scale', String(SCALE), '--seed', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    strays.push(serve.pid!);
    let out = '';
    serve.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    serve.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    await until('serve prints its URLs', () => out.includes('predict: POST') || serve.exitCode !== null, 90_000);
    expect(serve.exitCode, out).toBeNull();
    const urls = Object.fromEntries([...out.matchAll(/^ {2}(\S+) +(http:\/\/127\.0\.0\.1:\d+)$/gm)].map((m) => [m[1], m[2]]));
    expect(Object.keys(urls)).toEqual(['shard-0', 'shard-1', 'main']);
    expect(await answers(`${urls.main}/readyz`)).toBe(200);
    const children = childPids(serve.pid!);
    strays.push(...children);
    expect(children).toHaveLength(3);
    expect(children.every(isShardServer)).toBe(true);

    serve.kill('SIGKILL');
    const t = Date.now();
    await until('every shard-server gone', () => children.every((pid) => !alive(pid)), 5000);
    console.log(`shard-servers gone ${Date.now() - t} ms after serve was SIGKILLed`);
    for (const url of Object.values(urls)) expect(await answers(`${url}/healthz`)).toBeUndefined();
  });

  it('refuses a bad --shard-replicas, naming the flag', async () => {
    for (const bad of ['0', '1.5', 'two']) {
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, [cli(), 'serve', '--local', modelFile(), '--shard-replicas', bad], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        p.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
        p.on('exit', (code) => resolve({ code, stderr }));
      });
      expect(r).toEqual({ code: 1, stderr: `error: --shard-replicas must be an integer >= 1, got "${bad}"\n` });
    }
  });
});

describe('replicas per shard', () => {
  it('shardReplicas 2: two processes per shard on ports of their own, all in plan.json, and predictions work', async () => {
    const { d, request } = await deploy({ shardReplicas: 2 });
    expect(d.processes.map((p) => p.name)).toEqual(['shard-0', 'shard-0-r1', 'shard-1', 'shard-1-r1', 'main']);
    const ports = d.processes.map((p) => p.port);
    expect(new Set(ports).size).toBe(5);
    const url = (name: string) => `http://127.0.0.1:${d.processes.find((p) => p.name === name)!.port}`;
    const plan = JSON.parse(readFileSync(join(d.runDir, 'plan.json'), 'utf8'));
    expect(plan.shards.map((s: { index: number; endpoint: string; replicas: string[] }) => [s.index, s.endpoint, s.replicas])).toEqual([
      [0, url('shard-0'), [url('shard-0'), url('shard-0-r1')]],
      [1, url('shard-1'), [url('shard-1'), url('shard-1-r1')]],
    ]);
    for (const p of d.processes) expect(await answers(`http://127.0.0.1:${p.port}/readyz`)).toBe(200);
    for (let i = 0; i < 5; i++) expect((await predict(d.predictUrl, request)).status).toBe(200);
    // each replica is supervised on its own
    const r1 = d.processes.find((p) => p.name === 'shard-1-r1')!;
    process.kill(r1.proc.pid!, 'SIGKILL');
    await until('shard-1-r1 restarted', () => r1.restarts === 1);
    await waitReady(url('shard-1-r1'), 30_000, [r1]);
  });
});
