// The product on real pods: the chart's operator runs as a pod (helm install, upgrade, uninstall), the kind
// walkthrough's manifests (verbatim) give real main and shard pods behind real Services that answer exactly as
// the same model served monolithic on this machine, and what the kubelet and the scheduler report (a killed
// container, an OOM kill, an unschedulable pod, an image that cannot be pulled) shows in the RecModel's conditions.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { serveLocal } from '../../cli/local.js';
import type { Manifest } from '../../contracts/model-format.js';
import { generateModel } from '../../models/generate.js';
import { resolveSpec, type RecModel } from '../../operator/api/v1alpha1/index.js';
import { ANNOTATION_CONFIG } from '../../operator/builders/labels.js';
import { issue, makeCa } from '../certs.js';
import { randomRequest } from '../dataplane/helpers.js';
import { createRealNamespace, ctr, nodeHttp, podMetricsUrl, serviceUrl } from './real-pods.js';
import {
  ROOT,
  applyYaml,
  condition,
  deleteNamespace,
  getRecModel,
  installCrd,
  kubeconfig,
  kubectl,
  kubectlJson,
  servingVersion,
  shardNameOf,
  waitUntil,
} from './support.js';

const CHART = join(ROOT, 'charts', 'recshard');
const helm = (args: string[]) =>
  execFileSync(join(inject('clusterBinDir'), 'helm'), [`--kubeconfig=${kubeconfig()}`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const kindDocs = (file: string) => parseAllDocuments(readFileSync(join(ROOT, 'examples', 'kind', file), 'utf8')).map((d) => d.toJS() as object);

interface PodJson {
  metadata: { name: string; labels: Record<string, string> };
  spec: { nodeName?: string; serviceAccountName: string };
  status: { containerStatuses?: { name: string; containerID?: string; restartCount: number; ready: boolean }[] };
}
const pods = (ns: string, selector: string) => kubectlJson<{ items: PodJson[] }>(['get', 'pods', '-n', ns, '-l', selector]).items;

let system: string; // the operator's release namespace
let ns: string; // the models'

beforeAll(async () => {
  installCrd();
  system = createRealNamespace('recshard-system');
  ns = createRealNamespace('models');
  // the release watches only the models' namespace: other suites run their own operators beside it
  helm(['install', 'recshard', CHART, '-n', system, '--set', `watchNamespace=${ns}`, '--set', 'networkPolicies.enabled=false', '--wait', '--timeout', '120s']);
});

let uninstalled = false;
afterAll(() => {
  try {
    if (!uninstalled) helm(['uninstall', 'recshard', '-n', system, '--wait', '--timeout', '60s']);
  } finally {
    deleteNamespace(ns);
    deleteNamespace(system);
  }
});

describe('helm install on the real node', () => {
  it('runs the operator as pods under the chart ServiceAccount; one of them holds the Lease', async () => {
    const ops = pods(system, 'app.kubernetes.io/name=recshard-operator');
    expect(ops).toHaveLength(2);
    for (const p of ops) {
      expect(p.spec.nodeName).toBe('recshard-node');
      expect(p.spec.serviceAccountName).toBe('recshard-operator');
      expect(p.status.containerStatuses![0]!.ready).toBe(true);
    }
    const holder = await waitUntil('a leader', () => {
      const leases = kubectlJson<{ items: { spec: { holderIdentity?: string } }[] }>(['get', 'leases', '-n', system]).items;
      return leases.map((l) => l.spec.holderIdentity).find((h) => h && ops.some((p) => h.includes(p.metadata.name)));
    });
    expect(ops.map((p) => p.metadata.name).some((n) => holder.includes(n))).toBe(true);
  });
});

describe('the kind walkthrough, verbatim, on real pods', () => {
  let modelDir: string;
  let manifest: Manifest;
  let requests: unknown[];
  let reference: number[][][];

  beforeAll(async () => {
    kubectl(['apply', '-n', ns, '-f', join(ROOT, 'examples', 'kind', 'model.yaml')]);
    kubectl(['wait', '-n', ns, '--for=condition=complete', 'job/rmc1-model', '--timeout=120s']);
    // the claim bound one of the node's hostpath volumes: the model the Job wrote is readable here too
    const pv = kubectlJson<{ spec: { volumeName: string } }>(['get', 'pvc', 'recshard-models', '-n', ns]).spec.volumeName;
    modelDir = join(kubectlJson<{ spec: { hostPath: { path: string } } }>(['get', 'pv', pv]).spec.hostPath.path, 'rmc1');
    manifest = JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8')) as Manifest;
    requests = [JSON.parse(readFileSync(join(ROOT, 'examples', 'kind', 'request.json'), 'utf8')), ...[1, 2, 3].map((s) => randomRequest(manifest, 2 + s, s))];
    const [rm] = kindDocs('rmc1.yaml') as RecModel[];
    const local = await serveLocal(
      { ...rm!, spec: { ...rm!.spec, sharding: { shardMemory: rm!.spec.sharding!.shardMemory, strategy: 'monolithic' } } },
      { modelDir, scale: 1, seed: 1 },
    );
    try {
      reference = [];
      for (const r of requests) {
        const res = await fetch(local.predictUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) });
        expect(res.status).toBe(200);
        reference.push(((await res.json()) as { scores: number[][] }).scores);
      }
    } finally {
      await local.stop();
    }
  });

  const expectReference = (url: string) => {
    requests.forEach((r, i) => {
      const res = nodeHttp(url, JSON.stringify(r));
      expect(res.status, res.text).toBe(200);
      const scores = (JSON.parse(res.text) as { scores: number[][] }).scores;
      expect(scores.length).toBe(reference[i]!.length);
      scores.forEach((row, b) => row.forEach((v, j) => expect(Math.abs(v - reference[i]![b]![j]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(v)))));
    });
  };

  it.each([
    ['load-balanced', undefined],
    ['singular', { strategy: 'singular' }],
    ['net-specific', { strategy: 'net-specific' }],
  ] as const)('%s: real pods, Ready by their probes, score like the monolithic model', async (strategy, sharding) => {
    const [rm] = kindDocs('rmc1.yaml') as RecModel[];
    const name = sharding ? `rmc1-${strategy}` : rm!.metadata.name!;
    const doc = sharding ? { ...rm!, metadata: { name }, spec: { ...rm!.spec, sharding: { shardMemory: rm!.spec.sharding!.shardMemory, ...sharding } } } : rm!;
    applyYaml(ns, [doc]);
    await waitUntil(`${name} Ready`, () => condition(getRecModel(ns, name), 'Ready')?.status === 'True', 150_000, 500);
    const mine = pods(ns, `app.kubernetes.io/instance=${name}`);
    const shards = getRecModel(ns, name).status!.plan!.shards!;
    expect(mine).toHaveLength(1 + shards);
    for (const p of mine) {
      expect(p.spec.nodeName).toBe('recshard-node');
      expect(p.status.containerStatuses![0]!.ready).toBe(true);
    }
    expectReference(`${serviceUrl(ns, `${name}-main`)}/v1/models/${name}:predict`);
    if (sharding) kubectl(['delete', 'recmodel', name, '-n', ns, '--wait=true']);
  });

  it("a table four times a shard, split by rows over real pods: each shard loads only its piece, the scores are bit-for-bit the unsplit model's", async () => {
    // written beside the walkthrough's model on the node's volume: big is 4,096 x 32 fp32 (512 KiB), a shard 128 KiB
    const model: RecModel['spec']['model'] = {
      architecture: 'custom',
      denseFeatures: 4,
      bottomMLP: [32],
      topMLP: [16, 1],
      interaction: 'dot',
      tables: [
        { name: 'big', rows: 4096, dim: 32, poolingFactor: 8 },
        { name: 's1', rows: 200, dim: 32, poolingFactor: 2 },
        { name: 's2', rows: 200, dim: 32, poolingFactor: 2 },
      ],
    };
    const resolved = resolveSpec({ model, sharding: { strategy: 'monolithic' } });
    if (!resolved.ok) throw new Error(JSON.stringify(resolved.errors));
    const dir = join(modelDir, '..', 'split');
    const m = generateModel({ name: 'split', model: resolved.spec.model, seed: 5, scale: 1, outDir: dir, chunkBytes: 64 << 10 });
    const asks = [1, 2, 3].map((s) => randomRequest(m, 3 + s, s));
    const [kind] = kindDocs('rmc1.yaml') as RecModel[];
    const rm: RecModel = {
      ...kind!,
      metadata: { name: 'split' },
      spec: {
        ...kind!.spec,
        model,
        artifact: { ...kind!.spec.artifact, uri: 'file:///models/split' },
        sharding: { strategy: 'load-balanced', shardMemory: '128Ki', headroom: 0 },
      },
    };
    const local = await serveLocal(
      { ...rm, spec: { ...rm.spec, sharding: { strategy: 'monolithic', shardMemory: '1Mi' } } },
      { modelDir: dir, scale: 1, seed: 5 },
    );
    const unsplit: unknown[] = [];
    try {
      for (const r of asks)
        unsplit.push(
          await (await fetch(local.predictUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) })).json(),
        );
    } finally {
      await local.stop();
    }
    applyYaml(ns, [rm]);
    try {
      await waitUntil('split Ready', () => condition(getRecModel(ns, 'split'), 'Ready')?.status === 'True', 150_000, 500);
      const got = getRecModel(ns, 'split');
      expect(condition(got, 'Planned')?.message).toContain(
        'table "big" (512.0 KiB) is larger than a shard holds: split by rows into 4 pieces of at most 128.0 KiB',
      );
      expect(got.status!.plan!.splitTables).toBe(1);
      expect(pods(ns, 'app.kubernetes.io/instance=split')).toHaveLength(1 + got.status!.plan!.shards!);
      const url = `${serviceUrl(ns, 'split-main')}/v1/models/split:predict`;
      asks.forEach((r, i) => {
        const res = nodeHttp(url, JSON.stringify(r));
        expect(res.status, res.text).toBe(200);
        expect(JSON.parse(res.text)).toEqual(unsplit[i]);
      });
      // each shard pod holds its plan's bytes: a piece's shard 1,024 rows of big (128 KiB), read from the chunks with them
      const shards = getRecModel(ns, 'split').status!.plan!.shardBytes!;
      expect(shards.filter((b) => b === 131072)).toHaveLength(4);
      shards.forEach((bytes, i) => {
        const text = nodeHttp(podMetricsUrl(ns, `app.kubernetes.io/instance=split,recshard.io/shard=${i}`)).text;
        expect(Number(/^recshard_table_resident_bytes\{[^}]*\} (\d+)$/m.exec(text)?.[1]), `shard ${i}`).toBe(bytes);
      });
    } finally {
      kubectl(['delete', 'recmodel', 'split', '-n', ns, '--wait=true']);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('mutual TLS from a cert-manager-layout Secret: shards serve TLS, probes pass, answers as monolithic, plain HTTP to a shard gets nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'recshard-mtls-'));
    try {
      const files = issue(makeCa(join(dir, 'ca')), join(dir, 'model'), [`*.${ns}.svc`]);
      kubectl([
        'create',
        'secret',
        'generic',
        'rmc1-tls',
        '-n',
        ns,
        '--type=kubernetes.io/tls',
        `--from-file=tls.crt=${files.cert}`,
        `--from-file=tls.key=${files.key}`,
        `--from-file=ca.crt=${files.ca}`,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const [rm] = kindDocs('rmc1.yaml') as RecModel[];
    const name = 'rmc1-mtls';
    applyYaml(ns, [{ ...rm!, metadata: { name }, spec: { ...rm!.spec, serving: { ...rm!.spec.serving, tls: { secretName: 'rmc1-tls' } } } }]);
    await waitUntil(`${name} Ready`, () => condition(getRecModel(ns, name), 'Ready')?.status === 'True', 150_000, 500);
    const shard = kubectlJson<{ spec: { template: { spec: { containers: { args: string[]; readinessProbe: { httpGet: { scheme?: string } } }[] } } } }>([
      'get',
      'deployment',
      shardNameOf(ns, name, 0),
      '-n',
      ns,
    ]).spec.template.spec.containers[0]!;
    expect(shard.args).toEqual(expect.arrayContaining(['--tls-cert=/etc/recshard-tls/tls.crt', '--tls-ca=/etc/recshard-tls/ca.crt']));
    expect(shard.readinessProbe.httpGet.scheme).toBe('HTTPS');
    const configMap = kubectlJson<{ spec: { template: { metadata: { annotations: Record<string, string> } } } }>([
      'get',
      'deployment',
      `${name}-main`,
      '-n',
      ns,
    ]).spec.template.metadata.annotations[ANNOTATION_CONFIG]!;
    const plan = JSON.parse(kubectlJson<{ data: Record<string, string> }>(['get', 'configmap', configMap, '-n', ns]).data['plan.json']!) as {
      shards: { endpoint: string }[];
    };
    expect(plan.shards.length).toBeGreaterThan(0);
    for (const s of plan.shards) expect(s.endpoint).toMatch(new RegExp(`^https://${name}-shard-\\d+-[0-9a-f]{8}\\.${ns}\\.svc:8080$`));
    expectReference(`${serviceUrl(ns, `${name}-main`)}/v1/models/${name}:predict`);
    // the shard's port speaks TLS only: a plain lookup from inside the cluster's network gets no HTTP answer
    const shardPod = pods(ns, `app.kubernetes.io/instance=${name},app.kubernetes.io/component=sparse`)[0]!;
    const ip = kubectlJson<{ status: { podIP: string } }>(['get', 'pod', shardPod.metadata.name, '-n', ns]).status.podIP;
    expect(nodeHttp(`http://${ip}:8080/v1/lookup`, '{}').status).not.toBe(200);
    kubectl(['delete', 'recmodel', name, '-n', ns, '--wait=true']);
  });

  it('a killed shard container: the kubelet restarts it, the main recovers, the RecModel shows the outage while it lasts', async () => {
    const name = 'rmc1-kind';
    const [shard] = pods(ns, `app.kubernetes.io/instance=${name},recshard.io/shard=0`);
    const id = shard!.status.containerStatuses![0]!.containerID!.replace('containerd://', '');
    const seen = new Set<string>();
    ctr(['tasks', 'kill', '--signal', 'SIGKILL', id]);
    await waitUntil(
      'the restarted shard Ready again, after the outage showed',
      () => {
        const rm = getRecModel(ns, name);
        const ready = condition(rm, 'Ready');
        if (ready?.status === 'False') seen.add(`${ready.reason}: ${ready.message}`);
        const c = pods(ns, `app.kubernetes.io/instance=${name},recshard.io/shard=0`)[0]?.status.containerStatuses?.[0];
        return seen.size > 0 && c?.restartCount === 1 && c.ready && ready?.status === 'True';
      },
      90_000,
      100,
    );
    expect([...seen].join('\n')).toContain(shardNameOf(ns, name, 0));
    expectReference(`${serviceUrl(ns, `${name}-main`)}/v1/models/${name}:predict`);
  });
});

/** The model's Degraded condition once it is True with `reason`. */
const degradedWith = (name: string, reason: string, timeoutMs: number) =>
  waitUntil(
    `${name}: Degraded=True/${reason}`,
    () => {
      const c = condition(getRecModel(ns, name), 'Degraded');
      return c?.status === 'True' && c.reason === reason && c;
    },
    timeoutMs,
    500,
  );

describe('what the kubelet and the scheduler report, in the RecModel', () => {
  const model = (name: string, patch: (spec: RecModel['spec']) => void): RecModel => {
    const [rm] = kindDocs('rmc1.yaml') as RecModel[];
    const spec = structuredClone(rm!.spec);
    patch(spec);
    return { ...rm!, metadata: { name }, spec };
  };

  it('a shard whose memory limit is too small for its tables is OOMKilled: Degraded says which and why', async () => {
    // the walkthrough's model at 100x its rows (8 tables x 400,000 rows, 410 MB), written by the same Job
    const [, job] = kindDocs('model.yaml') as [object, { metadata: { name: string }; spec: { template: { spec: { containers: { args: string[] }[] } } } }];
    job.metadata.name = 'rmc1-big-model';
    job.spec.template.spec.containers[0]!.args = ['model', 'generate', '--arch', 'dlrm-rmc1', '--scale', '0.1', '--seed', '1', '--out', '/models/rmc1-big'];
    applyYaml(ns, [job]);
    kubectl(['wait', '-n', ns, '--for=condition=complete', 'job/rmc1-big-model', '--timeout=150s']);
    applyYaml(ns, [
      model('rmc1-oom', (s) => {
        for (const g of s.model.tableGroups!) g.rows = 400_000;
        s.artifact!.uri = 'file:///models/rmc1-big';
        s.sharding = { ...s.sharding, shardMemory: '512Mi' };
        // each shard loads 205 MB of tables into a container allowed 160 MiB
        s.placement!.sparse!.resources = { requests: { cpu: '100m', memory: '160Mi' }, limits: { memory: '160Mi' } };
      }),
    ]);
    const degraded = await degradedWith('rmc1-oom', 'OOMKilled', 90_000);
    // the shard's name carries the serving version, and so do its pods' names
    const oom = `rmc1-oom-shard-\\d-${servingVersion(ns, 'rmc1-oom')}`;
    expect(degraded.message).toMatch(new RegExp(`${oom}: pod ${oom}-\\S+: container shard-server was OOMKilled: its memory limit \\(160Mi\\) is too small`));
    expect(condition(getRecModel(ns, 'rmc1-oom'), 'Ready')).toMatchObject({ status: 'False', reason: 'Degraded' });
    // and as a Warning Event on the RecModel, as kubectl describe shows it
    const events = kubectlJson<{ items: { type: string; reason: string; message: string }[] }>([
      'get',
      'events',
      '-n',
      ns,
      '--field-selector',
      'involvedObject.kind=RecModel,involvedObject.name=rmc1-oom',
    ]).items;
    expect(events.some((e) => e.type === 'Warning' && e.reason === 'OOMKilled' && new RegExp(`${oom}: .*OOMKilled`).test(e.message))).toBe(true);
    kubectl(['delete', 'recmodel', 'rmc1-oom', '-n', ns, '--wait=true']);
  });

  it('a shard no node can take: Degraded=Unschedulable with the scheduler message, within a minute', async () => {
    applyYaml(ns, [
      model('rmc1-pending', (s) => {
        s.placement!.sparse!.nodeSelector = { disktype: 'nvme' };
      }),
    ]);
    const degraded = await degradedWith('rmc1-pending', 'Unschedulable', 60_000);
    expect(degraded.message).toMatch(new RegExp(`${shardNameOf(ns, 'rmc1-pending', 0)}: pod \\S+ cannot be scheduled: 0/\\d+ nodes are available`));
    kubectl(['delete', 'recmodel', 'rmc1-pending', '-n', ns, '--wait=true']);
  });

  it('helm upgrade to an image that cannot be pulled: Degraded=ImagePullFailed within a minute; upgrading back recovers', async () => {
    helm(['upgrade', 'recshard', CHART, '-n', system, '--reuse-values', '--set', 'shardServer.image.tag=0.0.0-missing', '--wait', '--timeout', '120s']);
    let missing: string;
    try {
      // a short drain: the failing version's shards go soon after the main has left them
      applyYaml(ns, [
        model('rmc1-pull', (s) => {
          s.rollout = { drainPeriod: '2s' };
        }),
      ]);
      const degraded = await degradedWith('rmc1-pull', 'ImagePullFailed', 60_000);
      expect(degraded.message).toMatch(/cannot pull image ghcr.io\/recshard\/shard-server:0.0.0-missing: (ErrImagePull|ImagePullBackOff)/);
      missing = servingVersion(ns, 'rmc1-pull');
    } finally {
      helm(['upgrade', 'recshard', CHART, '-n', system, '--reuse-values', '--set', 'shardServer.image.tag=', '--wait', '--timeout', '120s']);
    }
    // another shard-server image is another serving version: its shards start beside the failing ones, the main
    // switches to them, and the failing set goes
    const recovered = await waitUntil(
      'rmc1-pull Ready on the chart image',
      () => {
        const m = getRecModel(ns, 'rmc1-pull');
        return condition(m, 'Ready')?.status === 'True' && m.status?.rollout?.phase === 'Complete' && m.status.rollout.toVersion !== missing && m;
      },
      120_000,
      500,
    );
    expect(recovered.status!.rollout).toMatchObject({ fromVersion: missing, mode: 'Overlap' });
    await waitUntil(
      'no pod of the failing version left',
      () => pods(ns, 'app.kubernetes.io/instance=rmc1-pull').every((p) => p.metadata.labels['recshard.io/version'] === recovered.status!.rollout!.toVersion),
      60_000,
      500,
    );
    kubectl(['delete', 'recmodel', 'rmc1-pull', '-n', ns, '--wait=true']);
  });

  it('every pod runs as the restricted standard wants: a non-root uid and a read-only root filesystem', () => {
    const all = [...pods(ns, 'app.kubernetes.io/instance=rmc1-kind'), ...pods(system, 'app.kubernetes.io/name=recshard-operator')];
    expect(all.length).toBeGreaterThanOrEqual(5);
    for (const p of all) {
      const namespace = p.metadata.labels['app.kubernetes.io/instance'] === 'rmc1-kind' ? ns : system;
      const out = kubectl([
        'exec',
        '-n',
        namespace,
        p.metadata.name,
        '--',
        '/nodejs/bin/node',
        '-e',
        'let w="written";try{require("fs").writeFileSync("/probe","x")}catch(e){w=e.code}console.log(process.getuid(),process.getgid(),w)',
      ]);
      expect(out.trim()).toBe('65532 65532 EROFS');
    }
  });

  it('the images hold production dependencies only, on Node.js 22, and no shell', () => {
    const [main] = pods(ns, 'app.kubernetes.io/instance=rmc1-kind,app.kubernetes.io/component=main');
    const exec = (args: string[]) => kubectl(['exec', '-n', ns, main!.metadata.name, '--', ...args]);
    const installed = exec(['/nodejs/bin/node', '-e', 'console.log(require("fs").readdirSync("node_modules").join("\\n"))']).split('\n');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    for (const dev of Object.keys(pkg.devDependencies)) expect(installed, dev).not.toContain(dev);
    expect(installed).toContain('onnxruntime-node');
    expect(exec(['/nodejs/bin/node', '-p', 'process.version']).trim()).toMatch(/^v22\./);
    expect(() => exec(['/bin/sh', '-c', 'true'])).toThrow();
  });
});

describe('helm uninstall', () => {
  it('removes the operator pods; the models it served keep running (their objects are not the release’s)', async () => {
    helm(['uninstall', 'recshard', '-n', system, '--wait', '--timeout', '60s']);
    await waitUntil('the operator pods gone', () => pods(system, 'app.kubernetes.io/name=recshard-operator').length === 0, 60_000, 500);
    expect(pods(ns, 'app.kubernetes.io/instance=rmc1-kind').length).toBe(3);
    uninstalled = true;
  });
});
