// Version skew between real shard-server processes: a main whose plan.json names another plan version, or which
// loaded another artifact (new weights, same shapes), is refused by the shards (VERSION_MISMATCH, counted) and
// answers nothing mixed: a 503 SHARD_VERSION_MISMATCH, and /readyz says it is not ready. The matching main serves on.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel, resolveLocal, serveLocal, type LocalDeployment } from '../../cli/local.js';
import type { Manifest } from '../../contracts/model-format.js';
import { freePort } from '../../lib/net.js';
import { findRepoFile } from '../../lib/paths.js';
import { predict, randomRequest, zooRecModel } from './helpers.js';

const rm = zooRecModel('dlrm-rmc1', 'skew', { strategy: 'load-balanced', shards: 2 });
let d: LocalDeployment;
let dir: string;
let manifest: Manifest;
const extra: ChildProcess[] = [];

/** Another main beside the deployment's, on its own plan.json and model directory. */
async function startMain(plan: string, modelDir: string): Promise<string> {
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    [
      findRepoFile('dist', 'shard-server', 'main.js'),
      '--role=main',
      `--plan=${plan}`,
      `--model=${modelDir}`,
      `--port=${port}`,
      '--host=127.0.0.1',
      '--workers=0',
      '--probe-ms=200',
    ],
    {
      stdio: 'ignore',
    },
  );
  extra.push(proc);
  const url = `http://127.0.0.1:${port}`;
  // loaded (the model route answers) though not ready (its shards refuse its version)
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`${url}/v1/models/skew`).catch(() => undefined);
    if (res?.ok) return url;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the extra main did not load');
}

const metric = async (url: string, name: string, labels: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((p) => l.includes(p)));
  return line ? Number(line.split(' ').at(-1)) : 0;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'recshard-skew-'));
  d = await serveLocal(rm, { scale: 0.0005, seed: 1, logDir: join(dir, 'run') });
  manifest = JSON.parse(readFileSync(join(d.modelDir, 'manifest.json'), 'utf8')) as Manifest;
});

afterAll(async () => {
  for (const p of extra) p.kill('SIGKILL');
  await d?.stop();
});

describe('a lookup of another version', () => {
  const shardUrl = () => `http://127.0.0.1:${d.processes.find((p) => p.name === 'shard-0')!.port}`;

  it('another plan version: the shards refuse it, the skewed main answers 503 SHARD_VERSION_MISMATCH and is not ready', async () => {
    const plan = JSON.parse(readFileSync(join(dir, 'run', 'plan.json'), 'utf8')) as { version: string };
    const skewed = join(dir, 'plan-skewed.json');
    writeFileSync(skewed, JSON.stringify({ ...plan, version: plan.version === 'ffffffff' ? 'eeeeeeee' : 'ffffffff' }));
    const before = await metric(shardUrl(), 'recshard_errors_total', 'code="VERSION_MISMATCH"');
    const url = await startMain(skewed, d.modelDir);
    const res = await predict(`${url}/v1/models/skew:predict`, randomRequest(manifest, 2, 1));
    expect(res.status).toBe(503);
    expect(res.json.error.code).toBe('SHARD_VERSION_MISMATCH');
    expect(res.json.error.message).toMatch(/serves another version than this main \(plan (ffffffff|eeeeeeee)/);
    // the skew was seen by a lookup the shard refused or by a probe (which opens the circuit): the main counts
    // exactly the lookups the shard refused
    const refused = (await metric(shardUrl(), 'recshard_errors_total', 'code="VERSION_MISMATCH"')) - before;
    expect(await metric(url, 'recshard_shard_version_mismatches_total', 'shard="0"')).toBe(refused);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toMatch(/sparse shards not reached yet: shard 0/);
    const verbose = await (await fetch(`${url}/readyz?verbose`)).text();
    expect(verbose).toMatch(/^\[-\]shard-0 failed: .*serves another version than this main/m);
    // the main of the shards' own version is untouched
    expect((await predict(d.predictUrl, randomRequest(manifest, 2, 1))).status).toBe(200);
  });

  it("another artifact under the same plan (new weights): refused too, never answered with the shards' rows", async () => {
    const { spec } = resolveLocal(rm);
    const other = ensureModel(rm, spec, 0.0005, 2, () => {});
    const url = await startMain(join(dir, 'run', 'plan.json'), other);
    const res = await predict(`${url}/v1/models/skew:predict`, randomRequest(manifest, 2, 1));
    expect(res.status).toBe(503);
    expect(res.json.error.code).toBe('SHARD_VERSION_MISMATCH');
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
  });
});
