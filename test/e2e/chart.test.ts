// The Helm chart with the real helm binary against the real control plane: lint, template snapshots, the
// values schema, a server-side dry run of a production-like install, install, upgrade and uninstall, and the
// operator reconciling a RecModel with nothing but the chart's RBAC (a token of the chart's ServiceAccount
// from the TokenRequest API), refused Secrets and objects it does not own. The chart's alerts run in
// promtool's rule tests, and its dashboard's queries through promtool's parser.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ensureBinaries } from '../../local-cluster/harness.js';
import { prometheusBinary } from './prometheus.js';
import {
  ROOT,
  childNames,
  condition,
  createNamespace,
  deleteNamespace,
  getRecModel,
  installCrd,
  kubeconfig,
  kubectl,
  kubectlFails,
  kubectlJson,
  readExample,
  shardNameOf,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from './support.js';

const CHART = join(ROOT, 'charts', 'recshard');
const PRODUCTION = join(CHART, 'ci', 'production-values.yaml');
const PROMETHEUS_OPERATOR_VERSION = 'v0.85.0'; // as local-cluster/build-control-plane.sh fetches its CRDs
let binDir: string;
const helm = (args: string[]) =>
  execFileSync(join(binDir, 'helm'), [`--kubeconfig=${kubeconfig()}`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** helm that must fail: its stderr. */
const helmFails = (args: string[]): string => {
  try {
    helm(args);
  } catch (e) {
    return String((e as { stderr?: string }).stderr ?? e);
  }
  throw new Error(`helm ${args.join(' ')} succeeded but should have failed`);
};
const template = (release: string, namespace: string, extra: string[] = []) =>
  helm(['template', release, CHART, '-n', namespace, '--kube-version=1.33.0', ...extra]);
const docs = (yaml: string) =>
  parseAllDocuments(yaml)
    .map((d) => d.toJS())
    .filter(Boolean) as { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any }[];

let ns: string;
let release: string;
let op: OperatorProcess | undefined;

beforeAll(() => {
  binDir = inject('clusterBinDir') || ensureBinaries();
  installCrd();
  ns = createNamespace('chart');
  // the operator's own pods must be admitted under the restricted Pod Security Standard too
  kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
  release = `rs-${ns.slice(-6)}`;
});

afterAll(async () => {
  await op?.stop();
  try {
    helm(['uninstall', release, '-n', ns]);
  } catch {
    /* already gone */
  }
  deleteNamespace(ns);
});

describe('helm chart: rendering', () => {
  it('lints clean with the default and the production-like values', () => {
    expect(helm(['lint', CHART, '--strict'])).toContain('0 chart(s) failed');
    expect(helm(['lint', CHART, '--strict', '-f', PRODUCTION])).toContain('0 chart(s) failed');
  });

  it('renders the default and a production-like install as snapshotted', async () => {
    await expect(template('recshard', 'recshard-system')).toMatchFileSnapshot('__snapshots__/chart-default.yaml');
    await expect(template('recshard', 'recshard-system', ['-f', PRODUCTION])).toMatchFileSnapshot('__snapshots__/chart-production.yaml');
  });

  it('the default install: recommended labels everywhere, a restricted pod, probes, a metrics Service, no monitoring objects', () => {
    const out = docs(template('recshard', 'recshard-system'));
    expect(out.map((d) => d.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRole',
      'ClusterRoleBinding',
      'ClusterRoleBinding',
      'Deployment',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ]);
    for (const d of out) {
      expect(Object.keys(d.metadata.labels ?? {}), `${d.kind} ${d.metadata.name}`).toEqual(
        expect.arrayContaining([
          'app.kubernetes.io/name',
          'app.kubernetes.io/instance',
          'app.kubernetes.io/version',
          'app.kubernetes.io/component',
          'app.kubernetes.io/part-of',
          'app.kubernetes.io/managed-by',
          'helm.sh/chart',
        ]),
      );
    }
    const pod = out.find((d) => d.kind === 'Deployment')!.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    const c = pod.containers[0];
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(c.args).toEqual(expect.arrayContaining(['--shard-server-image=ghcr.io/recshard/shard-server:0.1.0', '--image-pull-policy=IfNotPresent']));
    // least privilege: no Secrets, no wildcards
    for (const role of out.filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role')) {
      for (const rule of role.rules) {
        expect(rule.resources).not.toContain('secrets');
        expect([...rule.resources, ...rule.verbs, ...rule.apiGroups]).not.toContain('*');
      }
    }
  });

  it('the image repositories, tags, pull policies and pull secrets reach the operator and the pods it creates', () => {
    const out = docs(
      template('r', 'n', [
        '--set',
        'image.repository=reg.local/op,image.tag=v9,image.pullPolicy=Never,imagePullSecrets[0].name=op-pull',
        '--set',
        'shardServer.image.repository=reg.local/ss,shardServer.image.tag=v8,shardServer.image.pullPolicy=Always',
        '--set',
        'shardServer.imagePullSecrets[0].name=pull-a,shardServer.imagePullSecrets[1].name=pull-b',
      ]),
    );
    const pod = out.find((d) => d.kind === 'Deployment')!.spec.template.spec;
    const c = pod.containers[0];
    expect([c.image, c.imagePullPolicy, pod.imagePullSecrets]).toEqual(['reg.local/op:v9', 'Never', [{ name: 'op-pull' }]]);
    expect(c.args).toEqual(
      expect.arrayContaining(['--shard-server-image=reg.local/ss:v8', '--image-pull-policy=Always', '--image-pull-secrets=pull-a,pull-b']),
    );
  });

  it('refuses bad values at install, naming the value and the problem', () => {
    const bad = (...set: string[]) => helmFails(['template', 'r', CHART, '--kube-version=1.33.0', ...set.flatMap((s) => ['--set', s])]);
    expect(bad('replicaCount=0')).toMatch(/at '\/replicaCount': minimum: got 0, want 1/);
    expect(bad('image.pullPolicy=Sometimes')).toMatch(/at '\/image\/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'/);
    expect(bad('logLevel=loud')).toMatch(/at '\/logLevel'/);
    expect(bad('replicaCuont=2')).toMatch(/additional properties 'replicaCuont' not allowed/);
    expect(bad('metrics.podMonitor.interval=soon')).toMatch(/at '\/metrics\/podMonitor\/interval'/);
    expect(bad('networkPolicies.trustedNamespaces[0]=Not_A_Namespace')).toMatch(/at '\/networkPolicies\/trustedNamespaces\/0'/);
    expect(bad('leaderElection.enabled=false')).toMatch(/replicaCount must be 1 when leaderElection.enabled is false/);
    expect(bad('metrics.service.enabled=false', 'metrics.serviceMonitor.enabled=true')).toMatch(/serviceMonitor.enabled needs metrics.service.enabled/);
  });

  it("a production-like install's manifests pass a server-side dry run on the real API server", () => {
    const crds = join(binDir, `prometheus-operator-${PROMETHEUS_OPERATOR_VERSION}-crds`);
    kubectl(['apply', '--server-side', '--force-conflicts', '-f', crds]);
    kubectl([
      'wait',
      '--for=condition=Established',
      'crd/servicemonitors.monitoring.coreos.com',
      'crd/podmonitors.monitoring.coreos.com',
      'crd/prometheusrules.monitoring.coreos.com',
      '--timeout=60s',
    ]);
    const dashboardNs = createNamespace('monitoring');
    const rendered = template('prod', ns, ['-f', PRODUCTION, '--set', `dashboard.namespace=${dashboardNs}`]);
    const kinds = docs(rendered)
      .map((d) => d.kind)
      .sort();
    expect(kinds).toEqual(expect.arrayContaining(['ConfigMap', 'PodMonitor', 'PrometheusRule', 'Service', 'ServiceMonitor', 'ValidatingAdmissionPolicy']));
    const out = kubectl(['apply', '--dry-run=server', '-f', '-'], rendered);
    expect(out.trim().split('\n')).toHaveLength(kinds.length);
    expect(out).toMatch(/prometheusrule.monitoring.coreos.com\/prod-operator created \(server dry run\)/);
    expect(out).toMatch(/configmap\/prod-dashboard created \(server dry run\)/);
    deleteNamespace(dashboardNs);
  });
});

describe('helm chart: alerts and dashboard', () => {
  const promtool = () => join(dirname(prometheusBinary()), 'promtool');
  const dir = mkdtempSync(join(tmpdir(), 'recshard-rules-'));
  const rendered = () => docs(template('recshard', 'recshard-system', ['--set', 'prometheusRule.enabled=true,dashboard.enabled=true']));

  it('the alert rules pass promtool and fire when, and only when, they should', () => {
    const rule = rendered().find((d) => d.kind === 'PrometheusRule')!;
    const rulesFile = join(dir, 'rules.yaml');
    writeFileSync(rulesFile, stringify({ groups: rule.spec.groups }));
    expect(execFileSync(promtool(), ['check', 'rules', rulesFile], { encoding: 'utf8' })).toMatch(/SUCCESS: 5 rules found/);

    const lat = (model: string, v: string) => ({
      series: `recshard_operator_latency_seconds{namespace="ns",model="${model}",component="${model}-main",role="main"}`,
      values: v,
    });
    const target = (model: string) => ({
      series: `recshard_operator_latency_target_seconds{namespace="ns",model="${model}",percentile="95"}`,
      values: '0.1x40',
    });
    const cond = (model: string, type: string, status: string, reason: string, v: string) => ({
      series: `recshard_operator_recmodel_condition{namespace="ns",model="${model}",type="${type}",status="${status}",reason="${reason}"}`,
      values: v,
    });
    const up = (pod: string, v: string) => ({ series: `recshard_shard_up{namespace="ns",model="hot",shard="1",pod="${pod}"}`, values: v });
    const tests = {
      rule_files: [rulesFile],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            lat('hot', '0.15x40'),
            target('hot'), // 150 ms against 100 ms, for 40 minutes
            lat('cool', '0.05x40'),
            target('cool'),
            lat('fire', '0.25x40'),
            target('fire'), // over twice the target
            lat('untargeted', '5x40'), // no policy, no target: no alert
            up('hot-main-a', '1 1 0x30'),
            up('hot-main-b', '1 1 1 1 0x30'), // both mains lose shard 1 by minute 4
            cond('big', 'Planned', 'False', 'Infeasible', '1x40'),
            cond('hot', 'Planned', 'True', 'PlanComputed', '1x40'),
            cond('hot', 'Available', 'False', 'ComponentsUnavailable', '1x40'),
          ],
          alert_rule_test: [
            { eval_time: '5m', alertname: 'RecShardLatencyTargetBurn', exp_alerts: [] }, // not yet for 10 minutes
            {
              eval_time: '15m',
              alertname: 'RecShardLatencyTargetBurn',
              exp_alerts: ['fire', 'hot'].map((m) => ({ exp_labels: { namespace: 'ns', model: m, severity: 'warning' } })),
            },
            {
              eval_time: '15m',
              alertname: 'RecShardLatencyTargetFastBurn',
              exp_alerts: [{ exp_labels: { namespace: 'ns', model: 'fire', severity: 'critical' } }],
            },
            { eval_time: '5m', alertname: 'RecShardShardUnavailable', exp_alerts: [] }, // one main still reached it at minute 3
            {
              eval_time: '7m',
              alertname: 'RecShardShardUnavailable',
              exp_alerts: [{ exp_labels: { namespace: 'ns', model: 'hot', shard: '1', severity: 'critical' } }],
            },
            { eval_time: '10m', alertname: 'RecShardModelUnavailable', exp_alerts: [{ exp_labels: { namespace: 'ns', model: 'hot', severity: 'warning' } }] },
            {
              eval_time: '3m',
              alertname: 'RecShardPlanInfeasible',
              exp_alerts: [{ exp_labels: { namespace: 'ns', model: 'big', reason: 'Infeasible', severity: 'warning' } }],
            },
          ],
        },
      ],
    };
    // promtool compares annotations exactly: each expected alert gets its rule's, filled in for its labels and value
    const annotations: Record<string, Record<string, string>> = Object.fromEntries(
      rule.spec.groups[0].rules.map((r: { alert: string; annotations: object }) => [r.alert, r.annotations]),
    );
    const valueText: Record<string, string> = { hot: '150ms', fire: '250ms' };
    const expand = (texts: Record<string, string>, labels: Record<string, string>) =>
      Object.fromEntries(
        Object.entries(texts).map(([k, v]) => [
          k,
          v
            .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_m, l: string) => labels[l] ?? '')
            .replace('{{ $value | humanizeDuration }}', valueText[labels.model ?? ''] ?? ''),
        ]),
      );
    const testsFile = join(dir, 'tests.yaml');
    writeFileSync(
      testsFile,
      stringify({
        ...tests,
        tests: tests.tests.map((t) => ({
          ...t,
          alert_rule_test: t.alert_rule_test.map((a) => ({
            ...a,
            exp_alerts: a.exp_alerts.map((e) => ({ ...e, exp_annotations: expand(annotations[a.alertname]!, e.exp_labels) })),
          })),
        })),
      }),
    );
    expect(expand(annotations.RecShardPlanInfeasible!, { namespace: 'ns', model: 'big', reason: 'Infeasible' }).summary).toBe(
      'RecModel ns/big has no plan (Infeasible)',
    );
    const result = execFileSync(promtool(), ['test', 'rules', testsFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(result).toMatch(/SUCCESS/);
  });

  it('the dashboard shows latency percentiles, QPS, replicas and per-shard call latency, in queries Prometheus parses', () => {
    const cm = rendered().find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'recshard-dashboard')!;
    expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
    const dash = JSON.parse(cm.data['recshard.json']);
    const titles = dash.panels.map((p: { title: string }) => p.title);
    expect(titles).toEqual(
      expect.arrayContaining([
        'Main latency (end to end)',
        'Sparse shard latency',
        'Requests per second',
        'Replicas',
        'Per-shard call latency (from the main)',
      ]),
    );
    const exprs: string[] = dash.panels.flatMap((p: { targets: { expr: string }[] }) => p.targets.map((t) => t.expr));
    expect(exprs.some((e) => /histogram_quantile\(0\.99,.*stage="end_to_end"/.test(e))).toBe(true);
    expect(exprs.some((e) => /stage="shard_call"/.test(e))).toBe(true);
    // Grafana's variables filled in as Grafana would, then every query through promtool's parser as a recording rule
    const concrete = exprs.map((e) => e.replaceAll('$__rate_interval', '1m').replaceAll('$namespace', 'ns').replaceAll('$model', 'm'));
    const file = join(dir, 'dashboard-rules.yaml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: concrete.map((expr, i) => ({ record: `recshard:dashboard_panel_${i}`, expr })) }] }));
    expect(execFileSync(promtool(), ['check', 'rules', file], { encoding: 'utf8' })).toMatch(new RegExp(`SUCCESS: ${concrete.length} rules found`));
  });
});

describe('helm chart: on the real control plane', () => {
  it('installs (its pods admitted under the restricted Pod Security Standard), upgrades and uninstalls', async () => {
    const notes = helm(['install', release, CHART, '-n', ns, '--wait=false']);
    expect(notes).toContain(`kubectl -n ${ns} rollout status deployment/${release}-operator`);
    const dep = kubectlJson(['get', 'deployment', `${release}-operator`, '-n', ns]);
    expect(dep.spec.replicas).toBe(2);
    expect(dep.spec.template.spec.containers[0].args).toContain(`--lease-name=${release}-operator`);
    expect(kubectlJson(['get', 'service', `${release}-operator-metrics`, '-n', ns]).spec.ports[0].port).toBe(8081);
    await waitUntil(
      'both operator pods admitted in the restricted namespace',
      () => kubectlJson<{ items: unknown[] }>(['get', 'pods', '-n', ns, '-l', `app.kubernetes.io/instance=${release}`]).items.length === 2,
      60_000,
      500,
    );
    expect(kubectl(['get', 'events', '-n', ns, '--field-selector=reason=FailedCreate', '-o', 'name'])).toBe('');
    helm(['upgrade', release, CHART, '-n', ns, '--set', 'replicaCount=1', '--set', 'logLevel=debug']);
    const upgraded = kubectlJson(['get', 'deployment', `${release}-operator`, '-n', ns]);
    expect(upgraded.spec.replicas).toBe(1);
    expect(upgraded.spec.template.spec.containers[0].args).toContain('--log-level=debug');
    expect(helm(['status', release, '-n', ns])).toContain('STATUS: deployed');
    // a bad upgrade is refused by the schema and leaves the release as it was
    expect(helmFails(['upgrade', release, CHART, '-n', ns, '--set', 'replicaCount=-1'])).toMatch(/replicaCount/);
    expect(kubectlJson(['get', 'deployment', `${release}-operator`, '-n', ns]).spec.replicas).toBe(1);
  });

  it("the operator reconciles a RecModel with only the chart's RBAC, and is refused Secrets and objects it does not own", async () => {
    const token = kubectl(['create', 'token', `${release}-operator`, '-n', ns, '--duration=1h']).trim();
    const admin = parse(readFileSync(kubeconfig(), 'utf8'));
    admin.users = [{ name: 'operator', user: { token } }];
    admin.contexts = [{ name: 'operator', context: { cluster: admin.clusters[0].name, user: 'operator' } }];
    admin['current-context'] = 'operator';
    const dir = mkdtempSync(join(tmpdir(), 'recshard-sa-'));
    const saKubeconfig = join(dir, 'kubeconfig');
    writeFileSync(saKubeconfig, stringify(admin));

    const asOperator = (args: string[], input?: string) =>
      execFileSync('kubectl', [`--kubeconfig=${saKubeconfig}`, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
    const refused = (args: string[], input?: string): string => {
      try {
        asOperator(args, input);
      } catch (e) {
        return String((e as { stderr?: string }).stderr ?? e);
      }
      throw new Error(`kubectl ${args.join(' ')} as the operator succeeded`);
    };
    expect(refused(['get', 'secrets', '-n', ns])).toMatch(/forbidden/);
    expect(refused(['create', 'secret', 'generic', 'x', '-n', ns])).toMatch(/forbidden/);
    // pods are read-only (the autoscaler reads readiness and addresses); nothing else about them is allowed
    expect(asOperator(['auth', 'can-i', 'list', 'pods', '-n', ns]).trim()).toBe('yes');
    expect(refused(['delete', 'pods', '--all', '-n', ns, '--dry-run=server'])).toMatch(/forbidden/);
    expect(refused(['auth', 'can-i', 'create', 'pods', '-n', ns])).toBeDefined(); // `can-i` exits 1 for no
    // no scale subresource anywhere: the autoscaler patches the Deployments it owns, which the policy checks
    const canI = (args: string[]) => {
      try {
        return asOperator(['auth', 'can-i', ...args]).trim();
      } catch (e) {
        return String((e as { stdout?: string }).stdout ?? '').trim();
      }
    };
    expect(canI(['patch', 'deployments', '--subresource=scale', '-n', ns])).toBe('no');
    expect(canI(['patch', 'deployments', '-n', ns])).toBe('yes');
    expect(asOperator(['auth', 'can-i', 'patch', 'recmodels', '--subresource=status', '-n', ns]).trim()).toBe('yes');
    expect(refused(['delete', 'nodes', '--all', '--dry-run=server'])).toMatch(/forbidden/);
    expect(refused(['get', 'statefulsets', '-n', ns])).toMatch(/forbidden/);

    // RBAC grants kinds; the chart's admission policy narrows writes to the objects the operator manages
    kubectl(['create', 'deployment', 'someone-elses', '--image=registry.k8s.io/pause:3.10', '-n', ns]);
    kubectl(['create', 'configmap', 'someone-elses', '--from-literal=k=v', '-n', ns]);
    const notOwned = new RegExp(
      'denied request: the recshard operator may only (delete|update|create) objects it manages: .* ' +
        'does not carry app.kubernetes.io/managed-by=recshard-operator',
    );
    expect(refused(['delete', 'deployment', 'someone-elses', '-n', ns])).toMatch(notOwned);
    expect(refused(['patch', 'configmap', 'someone-elses', '-n', ns, '--type=merge', '-p', '{"data":{"k":"changed"}}'])).toMatch(notOwned);
    expect(refused(['label', 'configmap', 'someone-elses', '-n', ns, 'app.kubernetes.io/managed-by=recshard-operator'])).toMatch(notOwned); // nor adopt it
    expect(refused(['create', 'service', 'clusterip', 'someone-elses', '--tcp=80:80', '-n', ns])).toMatch(notOwned);
    expect(kubectlJson(['get', 'configmap', 'someone-elses', '-n', ns]).data.k).toBe('v');
    expect(refused(['scale', 'deployment', 'someone-elses', '--replicas=3', '-n', ns])).toMatch(/forbidden/);

    // the policy judges content, not only the label the operator sets itself
    const managed = { 'app.kubernetes.io/managed-by': 'recshard-operator', 'app.kubernetes.io/instance': 'probe' };
    const pod = (over: Record<string, unknown> = {}) => ({
      automountServiceAccountToken: false,
      containers: [{ name: 'shard-server', image: 'ghcr.io/recshard/shard-server:0.1.0' }],
      volumes: [{ name: 'config', configMap: { name: 'x' } }],
      ...over,
    });
    const deployment = (spec: Record<string, unknown>, namespace = ns) =>
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'probe', namespace, labels: managed },
        spec: { selector: { matchLabels: managed }, template: { metadata: { labels: managed }, spec } },
      });
    const service = (type: string) =>
      JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'probe', namespace: ns, labels: managed }, spec: { type, ports: [{ port: 80 }] } });
    const dryRun = ['apply', '--dry-run=server', '-f', '-'];
    expect(asOperator(dryRun, deployment(pod()))).toMatch(/deployment.apps\/probe created \(server dry run\)/);
    expect(asOperator(dryRun, service('ClusterIP'))).toMatch(/service\/probe created \(server dry run\)/);
    const denied = (doc: string) => refused(dryRun, doc);
    expect(denied(deployment(pod(), 'kube-system'))).toMatch(/writes nothing in the system namespace kube-system/);
    const volumeRule = /no\s+hostPath, other Secret or other volume/;
    expect(denied(deployment(pod({ volumes: [{ name: 'root', hostPath: { path: '/' } }] })))).toMatch(volumeRule);
    expect(denied(deployment(pod({ volumes: [{ name: 's', secret: { secretName: 'x' } }] })))).toMatch(volumeRule);
    // spec.serving.tls's Secret: only as the `tls` volume, and only mounted read-only
    const tlsVolume = { name: 'tls', secret: { secretName: 'model-tls' } };
    const tlsMount = (readOnly: boolean) => [
      { name: 'shard-server', image: 'ghcr.io/recshard/shard-server:0.1.0', volumeMounts: [{ name: 'tls', mountPath: '/etc/recshard-tls', readOnly }] },
    ];
    expect(asOperator(dryRun, deployment(pod({ volumes: [tlsVolume], containers: tlsMount(true) })))).toMatch(/created \(server dry run\)/);
    expect(denied(deployment(pod({ volumes: [tlsVolume], containers: tlsMount(false) })))).toMatch(volumeRule);
    expect(denied(deployment(pod({ containers: [{ name: 'x', image: 'evil.example/miner:1' }] })))).toMatch(/run the shard-server image .* only/);
    expect(denied(deployment(pod({ initContainers: [{ name: 'x', image: 'ghcr.io/recshard/shard-server:0.1.0' }] })))).toMatch(/without init/);
    expect(denied(deployment(pod({ serviceAccountName: `${release}-operator` })))).toMatch(/run as ServiceAccount default, without its token/);
    expect(denied(deployment(pod({ automountServiceAccountToken: true })))).toMatch(/without its token/);
    expect(denied(deployment(pod({ hostNetwork: true })))).toMatch(/no host namespaces/);
    expect(denied(deployment(pod({ tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }] })))).toMatch(/control-plane/);
    expect(denied(deployment(pod({ tolerations: [{ operator: 'Exists' }] })))).toMatch(/control-plane taints \(or every taint\)/);
    expect(denied(service('LoadBalancer'))).toMatch(/ClusterIP Services only/);
    expect(denied(service('NodePort'))).toMatch(/ClusterIP Services only/);
    const everyPod = JSON.stringify({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'probe', namespace: ns, labels: managed },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
    expect(denied(everyPod)).toMatch(/select only its own pods/);

    op = await startOperator(ns, { kubeconfig: saKubeconfig, extraArgs: [`--lease-name=${release}-operator`, '--image-pull-secrets=registry-a'] });
    const example = readExample('dlrm-rmc3.yaml').find((r) => r.metadata.name === 'rmc3-lb')!;
    // a short drain: the old shards go soon after the main left them
    const rm = { ...example, spec: { ...example.spec, rollout: { drainPeriod: '2s' } } };
    kubectl(['apply', '-n', ns, '-f', '-'], JSON.stringify(rm));
    await waitUntil(
      'rmc3-lb Ready',
      () => {
        const m = getRecModel(ns, 'rmc3-lb');
        return condition(m, 'Ready')?.status === 'True' && m.status?.rollout?.toVersion;
      },
      90_000,
    );
    const first = getRecModel(ns, 'rmc3-lb').status!.rollout!.toVersion!;
    const shards = [shardNameOf(ns, 'rmc3-lb', 0), shardNameOf(ns, 'rmc3-lb', 1)];
    expect(childNames(ns, 'deployments', 'rmc3-lb')).toEqual(['rmc3-lb-main', ...shards]);
    expect(childNames(ns, 'poddisruptionbudgets', 'rmc3-lb')).toHaveLength(2);
    expect(childNames(ns, 'configmaps', 'rmc3-lb')).toHaveLength(1);
    expect(kubectlJson(['get', 'deployment', shards[1]!, '-n', ns]).spec.template.spec.imagePullSecrets).toEqual([{ name: 'registry-a' }]);
    expect(op.logs()).not.toMatch(/forbidden|denied request/);
    // the admission policy lets it create and delete what it manages: a monolithic plan is a new version (a new
    // plan ConfigMap), and once the main has switched the shards and the old ConfigMap are deleted
    kubectl(['patch', 'recmodel', 'rmc3-lb', '-n', ns, '--type=merge', '-p', '{"spec":{"sharding":{"strategy":"monolithic","shards":null}}}']);
    await waitUntil(
      'shards deleted by the operator',
      () => {
        const r = getRecModel(ns, 'rmc3-lb').status?.rollout;
        return (
          r?.toVersion !== first &&
          r?.phase === 'Complete' &&
          childNames(ns, 'deployments', 'rmc3-lb').join() === 'rmc3-lb-main' &&
          childNames(ns, 'poddisruptionbudgets', 'rmc3-lb').length === 1 &&
          childNames(ns, 'configmaps', 'rmc3-lb').length === 1
        );
      },
      60_000,
      500,
    );
    expect(getRecModel(ns, 'rmc3-lb').status?.rollout).toMatchObject({ fromVersion: first, mode: 'Overlap' });
    expect(op.logs()).not.toMatch(/forbidden|denied request/);
    // what the alerts read: the model's conditions on the operator's /metrics (Ready again once the rollout is complete)
    const ready = new RegExp(`recshard_operator_recmodel_condition\\{namespace="${ns}",model="rmc3-lb",type="Ready",status="True",reason="Ready"\\} 1`);
    await waitUntil('Ready on /metrics', async () => ready.test(await op!.metrics()), 30_000, 500);
  });

  it('with watchNamespaces: Roles in those namespaces only, nothing cluster-wide but the policies, and the operator still reconciles', async () => {
    const other = createNamespace('chart-other');
    try {
      helm(['upgrade', release, CHART, '-n', ns, '--reuse-values', '--set', `watchNamespaces={${ns}}`]);
      const token = kubectl(['create', 'token', `${release}-operator`, '-n', ns, '--duration=1h']).trim();
      const can = (args: string[]) => {
        try {
          return kubectl([`--token=${token}`, 'auth', 'can-i', ...args]).trim();
        } catch (e) {
          return String((e as { stdout?: string }).stdout ?? '').trim();
        }
      };
      expect(can(['list', 'deployments', '-n', ns])).toBe('yes');
      expect(can(['list', 'deployments', '--all-namespaces'])).toBe('no');
      expect(can(['create', 'configmaps', '-n', other])).toBe('no');
      expect(can(['list', 'pods', '-n', other])).toBe('no');
      expect(can(['list', 'pods', '-n', 'kube-system'])).toBe('no');
      expect(can(['list', 'latencyscalingpolicies.recshard.io'])).toBe('yes');
      const roles = kubectlJson<{ items: { metadata: { name: string } }[] }>(['get', 'clusterroles', '-l', `app.kubernetes.io/instance=${release}`]);
      expect(roles.items.map((r) => r.metadata.name)).toEqual([`${release}-operator-policies`]);
      // the running operator (it serves only ns) goes on with the Role alone: a change of its model is reconciled
      kubectl(['patch', 'recmodel', 'rmc3-lb', '-n', ns, '--type=merge', '-p', '{"spec":{"placement":{"main":{"replicas":2}}}}']);
      await waitUntil('main scaled to 2 under the Role', () => kubectlJson(['get', 'deployment', 'rmc3-lb-main', '-n', ns]).spec.replicas === 2, 60_000, 500);
      expect(op!.logs()).not.toMatch(/forbidden|denied request/);
    } finally {
      deleteNamespace(other);
    }
  });

  it('uninstalls', () => {
    helm(['uninstall', release, '-n', ns]);
    expect(kubectlFails(['get', 'deployment', `${release}-operator`, '-n', ns])).toContain('NotFound');
    expect(kubectlFails(['get', 'validatingadmissionpolicy', `${release}-operator-owned-objects`])).toContain('NotFound');
  });
});
