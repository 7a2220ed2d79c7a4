// The contracts between the operator and the data plane, checked from both ends: what the operator's builders
// (and local serving) write, the shard-server's own parsers read back to the same meaning. A flag, file key,
// field, metric or label renamed on one side fails here.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeServingFiles } from '../../../cli/local.js';
import { Label, Metric } from '../../../contracts/metrics.js';
import { parseModelConfig } from '../../../contracts/model-config.js';
import { parseServingPlan } from '../../../contracts/plan.js';
import { shardServerArgs } from '../../../contracts/shard-server-args.js';
import { componentSeriesLabels, latencyQuery } from '../../../operator/builders/autoscalers.js';
import { buildVersion, CONFIG_MOUNT, SHUTDOWN_DELAY_MS, type VersionChildren } from '../../../operator/builders/children.js';
import { DEFAULT_BUILDER_CONFIG } from '../../../operator/builders/config.js';
import { LABEL_COMPONENT, LABEL_SHARD, LABEL_VERSION } from '../../../operator/builders/labels.js';
import { planModel } from '../../../operator/planner/plan.js';
import { parseBuckets, PrometheusSource } from '../../../operator/signals/latency.js';
import { parseFlags } from '../../../shard-server/flags.js';
import { ServerMetrics } from '../../../shard-server/http/metrics.js';
import { specOf, type TableInput } from '../fixtures.js';

const owner = { name: 'rmc', namespace: 'prod', uid: 'u-1' };
const tables: TableInput[] = Array.from({ length: 6 }, (_, i) => ({ name: `t${i}`, rows: 1000 * (i + 1), dim: 16, net: i % 2 ? 'user' : 'item' }));

function built(partial: Parameters<typeof specOf>[0]) {
  const spec = specOf({ tables, ...partial });
  const p = planModel(spec);
  if (!p.ok) throw p.error;
  return { spec, plan: p.plan, children: buildVersion(owner, spec, p.plan, DEFAULT_BUILDER_CONFIG) };
}

const deploymentsOf = (c: VersionChildren) => [c.main.deployment, ...c.shards.deployments];

const cases: [string, Parameters<typeof specOf>[0]][] = [
  ['load-balanced over 3 shards', { sharding: { strategy: 'load-balanced', shards: 3 } }],
  ['net-specific with an artifact', { sharding: { strategy: 'net-specific' }, artifact: { uri: 'file:///models/rmc/manifest.json' } }],
  [
    'monolithic on a GPU main with a CPU limit',
    { sharding: { strategy: 'monolithic' }, placement: { main: { device: 'gpu', resources: { limits: { cpu: '3' } } } } },
  ],
  [
    'singular on another port, with fixed scheduling',
    { sharding: { strategy: 'singular' }, serving: { port: 9090, scheduler: 'fixed', batchSize: 32, workers: 2 } },
  ],
];

describe('the pods the operator builds, as the shard-server reads them', () => {
  it.each(cases)("%s: every container's arguments parse, name its own component and the ConfigMap's files", (_name, partial) => {
    const { spec, plan, children } = built(partial);
    const data = children.configMap.data!;
    expect(deploymentsOf(children)).toHaveLength(1 + plan.shards.length);
    for (const d of deploymentsOf(children)) {
      const pod = d.spec!.template.spec!;
      const c = pod.containers[0]!;
      const flags = parseFlags(c.args!, {});
      const labels = d.metadata!.labels!;
      expect(flags.role).toBe(labels[LABEL_COMPONENT]);
      expect(flags.shard).toBe(labels[LABEL_SHARD] === undefined ? undefined : Number(labels[LABEL_SHARD]));
      expect(flags.port).toBe(spec.serving.port);
      // a terminating pod keeps answering while its Service forgets it
      expect(flags.shutdownDelayMs).toBe(SHUTDOWN_DELAY_MS);
      // every pod serves the version of the plan.json it mounts
      expect(d.spec!.template.metadata!.labels![LABEL_VERSION]).toBe(children.version);
      expect(c.ports![0]!.containerPort).toBe(flags.port);
      // both files come from the plan ConfigMap, mounted where the flags point
      const mount = c.volumeMounts!.find((m) => m.mountPath === CONFIG_MOUNT)!;
      expect(pod.volumes!.find((v) => v.name === mount.name)!.configMap!.name).toBe(children.configMap.metadata!.name);
      for (const file of [flags.plan, flags.modelConfig!]) {
        expect(file.startsWith(`${CONFIG_MOUNT}/`)).toBe(true);
        expect(Object.keys(data)).toContain(file.slice(CONFIG_MOUNT.length + 1));
      }
      if (flags.role === 'main') {
        const cpu = (spec.placement.main.resources?.limits as Record<string, string> | undefined)?.cpu;
        expect(flags.workers).toBe(spec.serving.workers === undefined && cpu ? Number(cpu) : undefined);
        expect(flags.accelerator).toBe(spec.placement.main.device === 'gpu' ? 'cuda' : 'none');
      }
    }
    const served = parseServingPlan(data['plan.json']!);
    expect(served.model).toBe(owner.name);
    expect(served.version).toBe(children.version);
    expect(served.main.tables).toEqual(plan.mainTables);
    // each shard's endpoint is its own Service of this version, on the port the Service serves
    expect(served.shards.map((s) => [s.index, s.tables, s.endpoint])).toEqual(
      plan.shards.map((s) => {
        const svc = children.shards.services.find((x) => x.metadata!.labels![LABEL_SHARD] === String(s.index))!;
        expect(svc.spec!.selector![LABEL_VERSION]).toBe(children.version);
        return [s.index, s.tables, `http://${svc.metadata!.name}.${owner.namespace}.svc:${svc.spec!.ports![0]!.port}`];
      }),
    );
    const config = parseModelConfig(data['model.json']!);
    expect(config.serving).toEqual(spec.serving);
    expect(config.artifact.uri).toBe(spec.artifact?.uri);
  });

  it('rejects what a shard-server cannot serve from, naming the file and the field', () => {
    expect(() =>
      parseServingPlan('{"model": "m", "version": "0a1b2c3d", "main": {"tables": []}, "shards": [{"index": 0, "tables": ["a"]}]}', '/etc/recshard/plan.json'),
    ).toThrow('/etc/recshard/plan.json shards[0].endpoint: must be a string, got nothing');
    expect(() => parseServingPlan('{"model": "m", "main": {"tables": []}, "shards": []}', 'plan.json')).toThrow(
      'plan.json version: must be a string, got nothing',
    );
    for (const bad of ['0a1b2c3', '0A1B2C3D', 'v0a1b2c3d'])
      expect(() => parseServingPlan(JSON.stringify({ model: 'm', version: bad, main: { tables: [] }, shards: [] }), 'plan.json')).toThrow(
        `plan.json version: must be 8 or more lowercase hex digits, got "${bad}"`,
      );
    expect(parseServingPlan('{"model": "m", "version": "0a1b2c3d", "main": {"tables": []}, "shards": []}').version).toBe('0a1b2c3d');
    expect(() => parseServingPlan('{"model": "m"', 'plan.json')).toThrow(/plan.json: not valid JSON/);
    expect(() => parseModelConfig('{"artifact": {"uri": 3}}')).toThrow('model.json artifact.uri: must be a string, got 3');
    expect(() => parseFlags(['--role=main'], {})).toThrow(/--plan/);
    expect(() => parseFlags(['--role=main', '--plan=p', '--port=eighty'], {})).toThrow('--port must be a number, got "eighty"');
    expect(() => parseFlags(['--role=main', '--plan=p', '--replicas=3'], {})).toThrow(/unknown option '--replicas=3'/);
  });
});

describe('local serving writes what the operator writes', () => {
  it('the same plan.json and model.json, with loopback endpoints, and flags the shard-server parses', () => {
    const { spec, plan, children } = built({ sharding: { strategy: 'load-balanced', shards: 2 } });
    const dir = mkdtempSync(join(tmpdir(), 'recshard-contract-'));
    const files = writeServingFiles(dir, owner.name, spec, plan, '/models/rmc', [40001, 40002]);
    const local = JSON.parse(readFileSync(files.plan, 'utf8'));
    const cluster = JSON.parse(children.configMap.data!['plan.json']!);
    // local serving has a version of its own (its image is no cluster's, its artifact the local directory)
    expect(local.version).toMatch(/^[0-9a-f]{8}$/);
    expect(local.version).not.toBe(cluster.version);
    // the same document but for its version and where the components answer
    const strip = (doc: { main: object; shards: object[] }) => ({
      ...doc,
      version: undefined,
      main: { ...doc.main, service: undefined },
      shards: doc.shards.map((s) => ({ ...s, service: undefined, endpoint: undefined })),
    });
    expect(strip(local)).toEqual(strip(cluster));
    expect(parseServingPlan(readFileSync(files.plan, 'utf8')).shards.map((s) => s.endpoint)).toEqual(['http://127.0.0.1:40001', 'http://127.0.0.1:40002']);
    expect(parseModelConfig(readFileSync(files.modelConfig, 'utf8'))).toEqual({ model: spec.model, artifact: { uri: '/models/rmc' }, serving: spec.serving });
    const args = {
      role: 'sparse',
      shard: 1,
      plan: files.plan,
      model: '/models/rmc',
      host: '127.0.0.1',
      port: 40002,
      probeMs: 250,
      failurePolicy: 'zero',
    } as const;
    expect(parseFlags(shardServerArgs(args), {})).toMatchObject(args);
  });
});

describe('the latency series the shard-server exports, as the operator selects them', () => {
  const metrics = new ServerMetrics('rmc', 'sparse');
  metrics.duration.observe({ ...metrics.labels, stage: 'end_to_end', shard: '1' }, 0.012);
  metrics.duration.observe({ ...metrics.labels, stage: 'end_to_end', shard: '1' }, 0.3);

  it("a scrape of /metrics gives the autoscaler the shard's buckets", async () => {
    const buckets = parseBuckets(await metrics.registry.metrics(), { model: 'rmc', role: 'sparse', stage: 'end_to_end' });
    expect(buckets.size).toBe(1);
    expect(buckets.values().next().value!.at(-1)).toEqual({ le: Infinity, count: 2 });
  });

  it('the labels of the HPA/KEDA queries and the Prometheus reads are labels the histogram has', async () => {
    const exported = new Set((await metrics.registry.getSingleMetric(Metric.requestDuration)!.get()).values.flatMap((v) => Object.keys(v.labels)));
    for (const key of Object.keys(componentSeriesLabels('rmc', { role: 'sparse', shard: 1 }))) expect(exported).toContain(key);
    const query = PrometheusSource.promql({
      namespace: 'prod',
      model: 'rmc',
      role: 'sparse',
      stage: 'end_to_end',
      windowMs: 30_000,
      pods: [{ name: 'p' }],
      port: 8080,
    });
    for (const label of [Label.model, Label.role, Label.stage]) expect(query).toContain(`${label}=`);
    expect(query).toContain(`${Metric.requestDuration}_bucket{`);
    expect(latencyQuery(95, 30_000, 'x="y"')).toContain(`${Metric.requestDuration}_bucket{x="y"}`);
  });
});
