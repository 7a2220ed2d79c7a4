// Model loading: file:// and http(s):// sources, checksums verified, manifests checked against themselves and the
// RecModel. A corrupt, missing, inconsistent or hostile artifact keeps the server alive but un-Ready, with /readyz
// naming the file and the numbers (never quoting a file).
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowBytes, type Manifest } from '../../contracts/model-format.js';
import { silentLogger } from '../../lib/log.js';
import { generateModel } from '../../models/generate.js';
import { resolveSpec } from '../../operator/api/v1alpha1/index.js';
import { startServer, type RunningServer } from '../../shard-server/server.js';
import { zooRecModel } from './helpers.js';

let dir: string;
let manifest: Manifest;
let http: Server;
let base: string;
/** Paths the http source was asked for. */
const asked: string[] = [];
const running: RunningServer[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'recshard-load-'));
  const spec = resolveSpec(zooRecModel('ncf', 'ncf', { strategy: 'singular' }).spec);
  if (!spec.ok) throw new Error('spec');
  manifest = generateModel({ name: 'ncf', model: spec.spec.model, seed: 1, scale: 0.01, outDir: join(dir, 'good') });
  http = createServer((req, res) => {
    asked.push(req.url!);
    try {
      // /model/ serves the good model, /lies/ the manifest of the 'escape-http' test (and anything else, were it asked)
      const [, root, rest] = /^\/(model|lies)\/(.*)$/.exec(req.url!) ?? [];
      res.end(readFileSync(join(dir, root === 'lies' ? 'escape-http' : 'good', decodeURIComponent(rest ?? ''))));
    } catch {
      res.statusCode = 404;
      res.end('not found');
    }
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(http.address() as { port: number }).port}/model/`;
});

afterAll(async () => {
  await Promise.all(running.map((s) => s.close(100)));
  http?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function sparse(modelUri: string, expectedModel?: unknown, metricsPort?: number) {
  const s = await startServer({
    ...(metricsPort !== undefined ? { metricsPort } : {}),
    role: 'sparse',
    shard: 0,
    modelUri,
    expectedModel,
    host: '127.0.0.1',
    port: 0,
    deadlineMs: 500,
    policy: 'fail',
    maxBatch: 64,
    maxBodyBytes: 1 << 20,
    probeMs: 200,
    log: silentLogger,
    plan: { model: 'ncf', version: '0a1b2c3d', main: { tables: [] }, shards: [{ index: 0, tables: manifest.tables.map((t) => t.name), endpoint: '' }] },
  });
  running.push(s);
  await s.loaded.catch(() => {});
  const url = `http://127.0.0.1:${s.port}`;
  const ready = await fetch(`${url}/readyz`);
  return { s, ready: { status: ready.status, text: await ready.text() }, healthz: (await fetch(`${url}/healthz`)).status };
}

describe('model sources', () => {
  it('loads from a file:// directory and reports resident bytes', async () => {
    const { s, ready } = await sparse(`file://${join(dir, 'good')}`);
    expect(ready.status).toBe(200);
    const total = manifest.tables.reduce((n, t) => n + t.bytes, 0);
    expect(await s.metrics.registry.getSingleMetricAsString('recshard_table_resident_bytes')).toContain(`role="sparse"} ${total}`);
  });

  it('with a metrics port, /metrics is served there alone and not on the API port (so a NetworkPolicy can tell them apart)', async () => {
    const { s, ready } = await sparse(`file://${join(dir, 'good')}`, undefined, 0);
    expect(ready.status).toBe(200);
    expect(s.metricsPort).not.toBe(s.port);
    const scrape = await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`);
    expect(scrape.status).toBe(200);
    expect(await scrape.text()).toContain('recshard_table_resident_bytes');
    expect((await fetch(`http://127.0.0.1:${s.port}/metrics`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${s.metricsPort}/readyz`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`, { method: 'POST' })).status).toBe(404);
  });

  it('loads from an http:// URL', async () => {
    const { ready } = await sparse(base);
    expect(ready.status).toBe(200);
  });

  it('a corrupt table keeps the server un-Ready, naming the file and the checksum', async () => {
    cpSync(join(dir, 'good'), join(dir, 'corrupt'), { recursive: true });
    const file = join(dir, 'corrupt', manifest.tables[1]!.file!);
    const bytes = readFileSync(file);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(file, bytes);
    const { ready, healthz } = await sparse(join(dir, 'corrupt'));
    expect(healthz).toBe(200);
    expect(ready.status).toBe(503);
    expect(ready.text).toMatch(
      new RegExp(`model not loaded: ${manifest.tables[1]!.file}: sha256 is [0-9a-f]{64}, manifest says ${manifest.tables[1]!.sha256}`),
    );
  });

  it('a missing file and a truncated file say so', async () => {
    cpSync(join(dir, 'good'), join(dir, 'missing'), { recursive: true });
    rmSync(join(dir, 'missing', manifest.tables[0]!.file!));
    expect((await sparse(join(dir, 'missing'))).ready.text).toContain(`${manifest.tables[0]!.file}: missing`);
    cpSync(join(dir, 'good'), join(dir, 'short'), { recursive: true });
    copyFileSync(join(dir, 'good', 'manifest.json'), join(dir, 'short', manifest.tables[2]!.file!));
    expect((await sparse(join(dir, 'short'))).ready.text).toMatch(
      new RegExp(`${manifest.tables[2]!.file}: size is \\d+ bytes, manifest says ${manifest.tables[2]!.bytes}`),
    );
  });

  it('an http source that answers 404 says which URL', async () => {
    const { ready } = await sparse(base.replace('/model/', '/nowhere/'));
    expect(ready.status).toBe(503);
    expect(ready.text).toMatch(/manifest.json: GET http:\/\/127.0.0.1:\d+\/nowhere\/manifest.json answered 404/);
  });

  it('generation is deterministic: the same seed gives the same bytes', () => {
    const spec = resolveSpec(zooRecModel('ncf', 'ncf', { strategy: 'singular' }).spec);
    if (!spec.ok) throw new Error('spec');
    const again = generateModel({ name: 'ncf', model: spec.spec.model, seed: 1, scale: 0.01, outDir: join(dir, 'again') });
    expect(again).toEqual(manifest);
    const other = generateModel({ name: 'ncf', model: spec.spec.model, seed: 2, scale: 0.01, outDir: join(dir, 'other') });
    expect(other.tables[0]!.sha256).not.toBe(manifest.tables[0]!.sha256);
  });
});

describe('artifacts that lie', () => {
  /** A copy of the good model whose manifest.json `edit` changed (or replaced, when it returns a string). */
  function variant(name: string, edit: (m: Manifest) => string | void): string {
    cpSync(join(dir, 'good'), join(dir, name), { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, 'good', 'manifest.json'), 'utf8')) as Manifest;
    const text = edit(m);
    writeFileSync(join(dir, name, 'manifest.json'), typeof text === 'string' ? text : JSON.stringify(m));
    return join(dir, name);
  }

  it('a table whose rows x row bytes is not its bytes is refused with the numbers', async () => {
    const t = manifest.tables[0]!;
    const { ready, healthz } = await sparse(variant('rows', (m) => void (m.tables[0]!.rows *= 2)));
    expect(healthz).toBe(200);
    expect(ready.status).toBe(503);
    const row = rowBytes(t.dim, t.dtype);
    expect(ready.text).toContain(
      `${t.file}: table "${t.name}": ${t.rows * 2} rows x ${row} bytes (dim ${t.dim}, ${t.dtype}) is ${t.rows * 2 * row} bytes, the manifest says ${t.bytes}`,
    );
  });

  it('a file outside the model directory is never read, from a directory or from a URL', async () => {
    for (const file of ['../../../../etc/passwd', '/etc/passwd', 'tables/../../good/manifest.json', 'http://127.0.0.2:9/x.bin']) {
      const local = await sparse(variant('escape', (m) => void (m.tables[0]!.file = file)));
      expect(local.ready.status).toBe(503);
      expect(local.ready.text).toContain('the manifest names a file outside the model directory');
    }
    // served over http, the manifest names a file that climbs out of the artifact's base URL: it is never asked for
    variant('escape-http', (m) => void (m.tables[0]!.file = '../model/manifest.json'));
    asked.length = 0;
    const remote = await sparse(base.replace('/model/', '/lies/'));
    expect(remote.ready.status).toBe(503);
    expect(remote.ready.text).toContain('the manifest names a file outside the model directory');
    expect(asked).toEqual(['/lies/manifest.json']);
  });

  it('an artifact whose shapes differ from the RecModel it serves is refused, naming the table and both shapes', async () => {
    const spec = resolveSpec(zooRecModel('ncf', 'ncf', { strategy: 'singular' }).spec);
    if (!spec.ok) throw new Error('spec');
    const model = structuredClone(spec.spec.model);
    const t = manifest.tables[0]!;
    const groups = model.tableGroups ?? [];
    const declared = [...(model.tables ?? [])];
    if (declared.length) declared[0] = { ...declared[0]!, dim: declared[0]!.dim * 2 };
    else groups[0] = { ...groups[0]!, dim: groups[0]!.dim * 2 };
    const wrong = { ...model, tables: declared, tableGroups: groups };
    const { ready } = await sparse(join(dir, 'good'), wrong);
    expect(ready.status).toBe(503);
    expect(ready.text).toContain(
      `${t.file}: table "${t.name}" is ${t.rows} x ${t.dim} ${t.dtype} in the artifact; the RecModel declares ${t.rows} x ${t.dim * 2} ${t.dtype}`,
    );
    // and the RecModel it was generated from is served
    expect((await sparse(join(dir, 'good'), model)).ready.status).toBe(200);
  });

  it('a manifest that is not JSON is refused without quoting it', async () => {
    const { ready } = await sparse(variant('secret', () => 'SECRET-TOKEN-42 {"format": 1'));
    expect(ready.status).toBe(503);
    expect(ready.text).toMatch(/manifest.json: not valid JSON( \(at byte \d+\))?/);
    expect(ready.text).not.toContain('SECRET');
  });
});
