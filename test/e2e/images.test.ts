// The images without a container engine: images/Dockerfile's deps and runtime stages are carried out in a
// clean directory (its RUN commands through sh, its COPYs as copies, the repository's `make build` output for
// the build stage), and both entry points run from there as the image's numeric user with nothing writable:
// the README's kind walkthrough (examples/kind: the model Job's command, the RecModel's pods with the
// arguments the operator gives them, the request) serves a prediction, and the operator reconciles a RecModel
// on the real control plane.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { freePort, freePorts } from '../../lib/net.js';
import { resolveSpec } from '../../operator/api/v1alpha1/index.js';
import type { RecModel } from '../../operator/api/v1alpha1/index.js';
import { buildChildren, CONFIG_MOUNT } from '../../operator/builders/children.js';
import { DEFAULT_BUILDER_CONFIG } from '../../operator/builders/config.js';
import { planModel } from '../../operator/planner/plan.js';
import { predict } from '../dataplane/helpers.js';
import { ROOT, condition, createNamespace, deleteNamespace, getRecModel, installCrd, kubeconfig, kubectl, readExample, waitUntil } from './support.js';

interface Instruction {
  op: string;
  args: string;
  from?: string;
}
interface Stage {
  name: string;
  base: string;
  env: Record<string, string>;
  workdir: string;
  user?: string;
  steps: Instruction[];
  entrypoint?: string[];
}

/** The Dockerfile's stages (FROM ... AS, ENV, WORKDIR, COPY [--from], RUN, USER, ENTRYPOINT), continuation lines joined. */
function parseDockerfile(text: string): Map<string, Stage> {
  const args: Record<string, string> = {};
  const stages = new Map<string, Stage>();
  let cur: Stage | undefined;
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(line)!;
    const value = rest!.replace(/\$\{(\w+)\}/g, (_m, k: string) => args[k] ?? '');
    switch (op!.toUpperCase()) {
      case 'ARG': {
        const [k, v] = value.split('=');
        args[k!] = v ?? '';
        break;
      }
      case 'FROM': {
        const [base, , name] = value.split(/\s+/);
        const parent = stages.get(base!);
        cur = parent
          ? { ...structuredClone(parent), name: name!, base: base!, entrypoint: undefined }
          : { name: name!, base: base!, env: {}, workdir: '/', steps: [] };
        stages.set(cur.name, cur);
        break;
      }
      case 'ENV': {
        const [k, v] = value.split('=');
        cur!.env[k!] = v!;
        break;
      }
      case 'WORKDIR':
        cur!.workdir = value;
        break;
      case 'USER':
        cur!.user = value;
        break;
      case 'ENTRYPOINT':
        cur!.entrypoint = JSON.parse(value) as string[];
        break;
      case 'COPY': {
        const m = /^--from=(\S+)\s+(.*)$/.exec(value);
        cur!.steps.push(m ? { op: 'COPY', from: m[1]!, args: m[2]! } : { op: 'COPY', args: value });
        break;
      }
      case 'RUN':
        cur!.steps.push({ op: 'RUN', args: value });
        break;
      case 'EXPOSE':
        break;
      default:
        throw new Error(`images/Dockerfile: ${op} is not understood by this test`);
    }
  }
  return stages;
}

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'images', 'Dockerfile'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'recshard-images-'));
/** Where each stage's WORKDIR lands here; the build stage's is the repository (built by `make build`). */
const stageDirs = new Map<string, string>([['build', ROOT]]);
const procs: ChildProcess[] = [];
let uid = 0;
let gid = 0;
/** The image's user, as setpriv arguments. */
const asUser = () => [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups'];
/** No home and no temporary directory: whatever tries to write outside a volume fails. */
const NOWHERE = { PATH: '/usr/bin:/bin', HOME: '/nonexistent', TMPDIR: '/nonexistent' };

/** Carries out one stage's COPY and RUN steps in a fresh directory. */
function carryOut(stage: Stage): string {
  const dir = join(work, stage.name);
  mkdirSync(dir, { recursive: true });
  for (const s of stage.steps) {
    if (s.op === 'RUN') {
      execFileSync('sh', ['-c', s.args], { cwd: dir, env: { ...process.env, ...stage.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      continue;
    }
    const parts = s.args.split(/\s+/);
    const dest = parts.pop()!;
    for (const src of parts) {
      let from: string;
      if (s.from) {
        const other = dockerfile.get(s.from)!;
        const base = stageDirs.get(s.from)!;
        from = join(base, src.startsWith(other.workdir) ? src.slice(other.workdir.length) : src);
      } else {
        from = join(ROOT, src);
      }
      const to = dest.endsWith('/') ? join(dir, dest, src.split('/').pop()!) : join(dir, dest);
      if (s.from === 'deps')
        renameSync(from, to); // node_modules: a move, not a 400 MB copy
      else cpSync(from, to, { recursive: true, dereference: true });
    }
  }
  stageDirs.set(stage.name, dir);
  return dir;
}

/** Starts an image's entry point from its directory as its USER, with HOME and TMPDIR pointing nowhere. */
function startEntrypoint(target: string, args: string[]): { proc: ChildProcess; logs: () => string } {
  const stage = dockerfile.get(target)!;
  const [node, ...rest] = stage.entrypoint!;
  expect(node).toBe('/nodejs/bin/node'); // distroless: the entry point is node itself, no shell
  const proc = spawn('setpriv', [...asUser(), process.execPath, ...rest, ...args], {
    cwd: stageDirs.get('runtime')!,
    env: { ...NOWHERE, ...stage.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c) => (out += c));
  proc.stderr!.on('data', (c) => (out += c));
  procs.push(proc);
  return { proc, logs: () => out };
}

/** Waits for an entry point's /readyz; its logs if it exits first. */
function untilReady(name: string, p: { proc: ChildProcess; logs: () => string }, port: number, timeoutMs: number) {
  return waitUntil(
    `${name} ready`,
    async () => {
      if (p.proc.exitCode !== null) throw new Error(`${name} exited ${p.proc.exitCode}:\n${p.logs()}`);
      return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok;
    },
    timeoutMs,
  );
}

beforeAll(() => {
  const runtime = dockerfile.get('runtime')!;
  [uid, gid] = runtime.user!.split(':').map(Number) as [number, number];
  carryOut(dockerfile.get('deps')!);
  const dir = carryOut(runtime);
  // the image's files belong to root and are read-only to its user, as in the image
  chmodSync(work, 0o755);
  execFileSync('chmod', ['-R', 'a+rX,go-w', dir]);
}, 240_000);

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('images (stages carried out without a container engine)', () => {
  it('the runtime stage holds production dependencies only, as a numeric non-root user', () => {
    expect(dockerfile.get('deps')!.steps.find((s) => s.op === 'RUN')!.args).toMatch(/npm ci --omit=dev/);
    expect(dockerfile.get('runtime')!.user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    const installed = execFileSync('ls', [join(stageDirs.get('runtime')!, 'node_modules')], { encoding: 'utf8' }).split('\n');
    for (const dev of Object.keys(pkg.devDependencies)) expect(installed, dev).not.toContain(dev);
    expect(installed).toContain('onnxruntime-node');
    expect(() => execFileSync('setpriv', [...asUser(), 'touch', join(stageDirs.get('runtime')!, 'x')], { stdio: 'ignore' })).toThrow();
  });

  it("the kind walkthrough's model Job and RecModel, through the entry points with the operator's pod arguments, serve its request", async () => {
    // step 1: the Job's command, run from the image's directory, writes the model into the "volume"
    const volume = join(work, 'models');
    mkdirSync(volume);
    chmodSync(volume, 0o777);
    const [, job] = parseAllDocuments(readFileSync(join(ROOT, 'examples', 'kind', 'model.yaml'), 'utf8')).map((d) => d.toJS());
    const c = job.spec.template.spec.containers[0];
    const mount: string = c.volumeMounts[0].mountPath;
    expect(c.image).toBe(`ghcr.io/recshard/shard-server:${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}`);
    expect(c.command[0]).toBe(dockerfile.get('shard-server')!.entrypoint![0]);
    const gen = execFileSync('setpriv', [...asUser(), process.execPath, ...c.command.slice(1), ...c.args.map((a: string) => a.replace(mount, volume))], {
      cwd: stageDirs.get('runtime')!,
      encoding: 'utf8',
      env: NOWHERE,
    });
    expect(gen).toMatch(/wrote dlrm-rmc1 .*8 tables/);

    // step 2: the RecModel, planned and built by the operator's own code; its pods' arguments, with the volume
    // and the config mounted here and the shards on loopback ports
    const rm = parse(readFileSync(join(ROOT, 'examples', 'kind', 'rmc1.yaml'), 'utf8')) as RecModel;
    const spec = resolveSpec(rm.spec);
    if (!spec.ok) throw new Error(`examples/kind/rmc1.yaml is invalid: ${JSON.stringify(spec.errors)}`);
    const plan = planModel(spec.spec);
    if (!plan.ok) throw plan.error;
    const children = buildChildren({ name: rm.metadata.name, namespace: 'default', uid: 'u' }, spec.spec, plan.plan, DEFAULT_BUILDER_CONFIG);
    const ports = new Map<string, number>();
    const free = await freePorts(children.deployments.length);
    children.deployments.forEach((d, i) => ports.set(d.metadata!.name!, free[i]!));
    const config = join(work, 'config');
    mkdirSync(config);
    const planJson = JSON.parse(children.configMap.data!['plan.json']!) as { shards: { index: number; endpoint: string }[] };
    for (const s of planJson.shards) s.endpoint = `http://127.0.0.1:${ports.get(`${rm.metadata.name}-shard-${s.index}`)}`;
    writeFileSync(join(config, 'plan.json'), JSON.stringify(planJson));
    writeFileSync(join(config, 'model.json'), children.configMap.data!['model.json']!.replaceAll('file:///models', `file://${volume}`));
    chmodSync(config, 0o755);
    const servers = children.deployments.map((d) => {
      const args = d.spec!.template.spec!.containers[0]!.args!.map((a) =>
        a.replace(CONFIG_MOUNT, config).replace(/^--port=\d+$/, `--port=${ports.get(d.metadata!.name!)}`),
      );
      return { name: d.metadata!.name!, port: ports.get(d.metadata!.name!)!, ...startEntrypoint('shard-server', [...args, '--host=127.0.0.1']) };
    });
    expect(servers.map((x) => x.name)).toEqual(['rmc1-kind-main', 'rmc1-kind-shard-0', 'rmc1-kind-shard-1']);
    for (const x of servers) {
      await untilReady(x.name, x, x.port, 60_000);
    }
    // step 3: the walkthrough's request
    const body = JSON.parse(readFileSync(join(ROOT, 'examples', 'kind', 'request.json'), 'utf8'));
    const res = await predict(`http://127.0.0.1:${servers[0]!.port}/v1/models/rmc1-kind:predict`, body);
    expect(res.status).toBe(200);
    expect(res.json.scores).toHaveLength(1);
    expect(res.json.scores[0][0]).toBeGreaterThan(0);
    expect(res.json.scores[0][0]).toBeLessThan(1);
    for (const x of servers) expect(x.logs()).not.toMatch(/EACCES|EROFS/);
  });

  it('the operator entry point reconciles a RecModel on the real control plane', async () => {
    installCrd();
    const ns = createNamespace('image');
    try {
      const kc = join(work, 'kubeconfig');
      cpSync(kubeconfig(), kc);
      chmodSync(kc, 0o644);
      const port = await freePort();
      const op = startEntrypoint('operator', [`--kubeconfig=${kc}`, `--namespace=${ns}`, `--lease-namespace=${ns}`, `--listen=127.0.0.1:${port}`]);
      await untilReady('operator', op, port, 30_000);
      const rm = readExample('dlrm-rmc3.yaml').find((r) => r.metadata.name === 'rmc3-lb')!;
      kubectl(['apply', '-n', ns, '-f', '-'], JSON.stringify(rm));
      await waitUntil('rmc3-lb Ready', () => condition(getRecModel(ns, 'rmc3-lb'), 'Ready')?.status === 'True', 90_000);
      expect(op.logs()).not.toMatch(/EACCES|EROFS/);
    } finally {
      deleteNamespace(ns);
    }
  });
});
