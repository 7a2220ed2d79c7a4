// Mutual TLS between real shard-server processes: sparse shards served over TLS answer lookups only to a main
// whose certificate their CA signed, and the main checks each shard's certificate against the name it dials
// (`<shard>.<namespace>.svc`, as the operator writes endpoints). The answers equal the plain deployment's. Probes
// stay open (the kubelet presents no certificate); everything else is refused with 403 CLIENT_CERTIFICATE_REQUIRED.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveLocal, type LocalDeployment } from '../../cli/local.js';
import { LOOKUP_PATH } from '../../contracts/endpoints.js';
import type { Manifest } from '../../contracts/model-format.js';
import type { ServingPlan } from '../../contracts/plan.js';
import { freePort } from '../../lib/net.js';
import { findRepoFile } from '../../lib/paths.js';
import { issue, makeCa, tlsFlags, type Ca } from '../certs.js';
import { predict, randomRequest, zooRecModel } from './helpers.js';

const NAME = 'mt';
const rm = zooRecModel('dlrm-rmc1', NAME, { strategy: 'load-balanced', shards: 2 });
let d: LocalDeployment;
let dir: string;
let manifest: Manifest;
let ca: Ca;
let rogue: Ca;
let certs: ReturnType<typeof issue>;
const procs: ChildProcess[] = [];
const shardPorts: number[] = [];

const SHARD_SERVER = () => findRepoFile('dist', 'shard-server', 'main.js');

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What each started process wrote on stderr. */
const stderrOf = new WeakMap<ChildProcess, string>();

function start(args: string[], env: Record<string, string> = {}): ChildProcess {
  const p = spawn(process.execPath, [SHARD_SERVER(), '--host=127.0.0.1', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  stderrOf.set(p, '');
  p.stderr!.on('data', (c: Buffer) => stderrOf.set(p, stderrOf.get(p) + c.toString()));
  procs.push(p);
  return p;
}

/** Sparse shard `shard` of the plain deployment's plan and model, on `port`. */
const startShard = (shard: number, port: number, extra: string[], env?: Record<string, string>) =>
  start(['--role=sparse', `--shard=${shard}`, `--plan=${join(d.runDir, 'plan.json')}`, `--model=${d.modelDir}`, `--port=${port}`, ...extra], env);

/** A process that must not start: its exit code and what it wrote on stderr (all of it: 'close' follows the pipes). */
const exitOf = (p: ChildProcess) =>
  new Promise<{ code: number | null; stderr: string }>((r) => p.once('close', (code) => r({ code, stderr: stderrOf.get(p)! })));

/** An HTTPS call to a TLS shard, with or without a client certificate: status and body, or the connection's error. */
function httpsCall(port: number, path: string, client?: { cert: string; key: string }, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const q = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        ca: readFileSync(certs.ca),
        servername: `${NAME}-shard-0.mtls.svc`,
        ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
        headers: { 'content-type': 'application/x-recshard-lookup', 'content-length': 0 },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    q.on('error', reject);
    q.end();
  });
}

/** The plain deployment's plan, its shard endpoints made https://<shard>.<namespace>.svc, each reached at its TLS process. */
function tlsPlan(host: (i: number) => string): string {
  const plan = JSON.parse(readFileSync(join(d.runDir, 'plan.json'), 'utf8')) as ServingPlan & { shards: { endpoint: string; replicas?: string[] }[] };
  plan.shards.forEach((s, i) => {
    s.endpoint = `https://${host(i)}:${shardPorts[i]}`;
    s.replicas = [`https://127.0.0.1:${shardPorts[i]}`];
  });
  const file = join(dir, `plan-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(plan));
  return file;
}

async function startMain(plan: string, extra: string[]): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = start(['--role=main', `--plan=${plan}`, `--model=${d.modelDir}`, `--port=${port}`, '--workers=0', '--probe-ms=200', ...extra]);
  const url = `http://127.0.0.1:${port}`;
  await waitFor('the main to answer /healthz', async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined));
  return { url, proc };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'recshard-mtls-'));
  ca = makeCa(join(dir, 'ca'));
  rogue = makeCa(join(dir, 'rogue'), 'someone-else');
  certs = issue(ca, join(dir, 'model'), ['*.mtls.svc']);
  d = await serveLocal(rm, { scale: 0.0005, seed: 1, logDir: join(dir, 'run') });
  manifest = JSON.parse(readFileSync(join(d.modelDir, 'manifest.json'), 'utf8')) as Manifest;
  for (const i of [0, 1]) {
    const port = await freePort();
    shardPorts.push(port);
    startShard(i, port, tlsFlags(certs));
  }
  for (const port of shardPorts) await waitFor('a TLS shard to be ready', async () => ((await httpsCall(port, '/readyz')).status === 200 ? true : undefined));
}, 120_000);

afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await d?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('mutual TLS between the main and its shards', () => {
  it("a main with the model's certificate gets exactly the plain deployment's answers", async () => {
    const { url } = await startMain(
      tlsPlan((i) => `${NAME}-shard-${i}.mtls.svc`),
      tlsFlags(certs),
    );
    await waitFor('the TLS main to be ready', async () => ((await fetch(`${url}/readyz`)).ok ? true : undefined));
    for (const seed of [1, 2, 3]) {
      const body = randomRequest(manifest, 8, seed);
      const [plain, tls] = await Promise.all([predict(d.predictUrl, body), predict(`${url}/v1/models/${NAME}:predict`, body)]);
      expect(tls.status).toBe(200);
      expect(tls.json.predictions).toEqual(plain.json.predictions);
    }
  });

  it('a shard answers its probes to anyone, and refuses lookups without a certificate or with one its CA did not sign', async () => {
    expect((await httpsCall(shardPorts[0]!, '/healthz')).status).toBe(200);
    const none = await httpsCall(shardPorts[0]!, LOOKUP_PATH, undefined, 'POST');
    expect(none.status).toBe(403);
    expect(JSON.parse(none.body).error).toMatchObject({ code: 'CLIENT_CERTIFICATE_REQUIRED' });
    expect(JSON.parse(none.body).error.message).toMatch(/none was presented/);
    const foreign = issue(rogue, join(dir, 'foreign'), ['*.mtls.svc']);
    const wrong = await httpsCall(shardPorts[0]!, LOOKUP_PATH, foreign, 'POST');
    expect(wrong.status).toBe(403);
    expect(JSON.parse(wrong.body).error.message).toMatch(/certificate/i);
    // a certificate the model's CA signed gets past the check (the empty body is then refused as a lookup)
    const signed = await httpsCall(shardPorts[0]!, LOOKUP_PATH, certs, 'POST');
    expect(signed.status).toBe(400);
    // plain HTTP gets no answer from a TLS port
    const plain = await fetch(`http://127.0.0.1:${shardPorts[0]}/readyz`).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(plain).not.toBe(200);
  });

  it('a main that trusts another CA, or dials a name the certificate does not carry, never gets rows', async () => {
    const other = issue(rogue, join(dir, 'other-main'), ['*.mtls.svc']);
    const untrusted = await startMain(
      tlsPlan((i) => `${NAME}-shard-${i}.mtls.svc`),
      tlsFlags(other),
    );
    const misnamed = await startMain(
      tlsPlan((i) => `${NAME}-shard-${i}.elsewhere.svc`),
      tlsFlags(certs),
    );
    for (const [m, why] of [
      [untrusted, /certificate|self.signed|unable to verify/i],
      [misnamed, /does not match|altnames|ERR_TLS_CERT_ALTNAME_INVALID/i],
    ] as const) {
      const verbose = await waitFor('the main to report its shards', async () => {
        const t = await (await fetch(`${m.url}/readyz?verbose`)).text();
        return /shard-0 failed: .*readiness probe failed/.test(t) ? t : undefined;
      });
      expect(verbose).toMatch(why);
      expect((await fetch(`${m.url}/readyz`)).status).toBe(503);
    }
  });

  it('a plan with https:// shards and a main without --tls-* files: not ready, saying which flags it needs; half the flags: no start', async () => {
    const { url } = await startMain(
      tlsPlan((i) => `${NAME}-shard-${i}.mtls.svc`),
      [],
    );
    const text = await waitFor('the load error', async () => {
      const t = await (await fetch(`${url}/readyz`)).text();
      return /tls-cert/.test(t) ? t : undefined;
    });
    expect(text).toMatch(/shard 0's endpoint https:\/\/.* is https:\/\/, so the main needs --tls-cert, --tls-key and --tls-ca/);
    const half = await exitOf(startShard(0, await freePort(), [`--tls-cert=${certs.cert}`]));
    expect(half.code).toBe(1);
    expect(half.stderr).toMatch(/--tls-cert, --tls-key and --tls-ca must be given together/);
    const missing = await exitOf(startShard(0, await freePort(), tlsFlags({ ...certs, key: join(dir, 'nope.key') })));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/--tls-key .*nope\.key.*ENOENT/);
  });

  it('a rotated certificate is served to new connections without a restart', async () => {
    const port = await freePort();
    const rotDir = join(dir, 'rotating');
    const first = issue(ca, join(dir, 'first'), ['*.mtls.svc']);
    const files = { cert: join(dir, 'rot.crt'), key: join(dir, 'rot.key'), ca: join(dir, 'rot-ca.crt') };
    copyFileSync(first.cert, files.cert);
    copyFileSync(first.key, files.key);
    copyFileSync(first.ca, files.ca);
    startShard(0, port, tlsFlags(files), { RECSHARD_TLS_RELOAD_MS: '300' });
    const serial = () =>
      new Promise<string>((resolve, reject) => {
        const q = request({ host: '127.0.0.1', port, path: '/healthz', ca: readFileSync(certs.ca), servername: 'x.mtls.svc', agent: false }, (res) => {
          resolve((res.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber);
          res.resume();
        });
        q.on('error', reject);
        q.end();
      });
    const before = await waitFor('the rotating shard', () => serial());
    const second = issue(ca, rotDir, ['*.mtls.svc']);
    copyFileSync(second.key, files.key);
    copyFileSync(second.cert, files.cert);
    const after = await waitFor('the new certificate served', async () => {
      const s = await serial();
      return s !== before ? s : undefined;
    });
    expect(after).not.toBe(before);
  });
});
