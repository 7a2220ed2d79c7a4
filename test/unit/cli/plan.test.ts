import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { generateCommand } from '../../../cli/commands/model.js';
import { hpaRulesCommand, planCommand } from '../../../cli/commands/plan.js';
import { CliError } from '../../../cli/errors.js';

const examples = join(import.meta.dirname, '..', '..', '..', 'examples');
const dir = mkdtempSync(join(tmpdir(), 'recshard-cli-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('recshard plan', () => {
  it('prints per shard the tables, bytes, percent of capacity and lookups, and the imbalance', () => {
    const out = planCommand(join(examples, 'dlrm-rmc1.yaml'), 'table');
    expect(out).toContain('Model rmc1-lb: load-balanced, 8 tables, 3.8 GiB in all');
    expect(out).toContain('Shard capacity 7.2 GiB (8.0 GiB less 10% headroom)');
    expect(out).toMatch(/shard-0 .* 2 .* 976.6 MiB .* 13.2% .* 160 .* 20480 /);
    expect(out).toContain('Imbalance (max/mean lookup bytes per sample): 1.000');
    expect(out).toContain('Main holds every table: 3.8 GiB');
  });

  it('checks a LatencyScalingPolicy beside the models and plans the models', () => {
    const out = planCommand(join(examples, 'autoscaling', 'latency-policy.yaml'), 'table');
    expect(out).toContain('Model rmc2-autoscaled: load-balanced, 32 tables');
  });

  it('prints the same plan as JSON and YAML', () => {
    const json = planCommand(join(examples, 'dlrm-rmc2.yaml'), 'json')
      .split('\n\n')
      .map((s) => JSON.parse(s));
    const yaml = parseAllDocuments(planCommand(join(examples, 'dlrm-rmc2.yaml'), 'yaml')).map((d) => d.toJS());
    expect(json).toEqual(yaml);
    expect(json.map((p) => p.strategy)).toEqual(['monolithic', 'singular', 'load-balanced', 'net-specific']);
    const net = json[3];
    expect(net.shards.every((s: { net: string }) => ['user', 'item'].includes(s.net))).toBe(true);
    expect(net.shards.flatMap((s: { tables: string[] }) => s.tables)).toHaveLength(32);
  });

  it.each([
    [
      'an infeasible plan',
      'apiVersion: recshard.io/v1alpha1\nkind: RecModel\nmetadata: {name: big}\nspec:\n  model: {architecture: custom, ' +
        'topMLP: [1], tables: [{name: huge, rows: 100000000, dim: 64}]}\n  sharding: {strategy: singular, shardMemory: 1Gi}\n',
      'RecModel big: plan is Infeasible: table "huge" needs 23.8 GiB',
    ],
    [
      'an invalid spec',
      'apiVersion: recshard.io/v1alpha1\nkind: RecModel\nmetadata: {name: bad}\nspec:\n  model: {architecture: custom, ' +
        'topMLP: [1], tables: [{name: t, rows: 1, dim: 0}]}\n',
      'RecModel bad is invalid: spec.model.tables[0].dim: must be >= 1',
    ],
    [
      'a CEL violation',
      'apiVersion: recshard.io/v1alpha1\nkind: RecModel\nmetadata: {name: bad}\nspec:\n  model: {architecture: custom, ' +
        'topMLP: [1], tables: [{name: t, rows: 1, dim: 1}]}\n  sharding: {strategy: net-specific, shards: 2}\n',
      'spec.sharding: spec.sharding.shards may only be set when strategy is load-balanced',
    ],
    ['another kind', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n', 'not a RecModel: apiVersion: must be recshard.io/v1alpha1'],
    [
      'an invalid policy beside a model',
      'apiVersion: recshard.io/v1alpha1\nkind: LatencyScalingPolicy\nmetadata: {name: p}\nspec: {target: {latency: soon}}\n---\napiVersion: ' +
        'recshard.io/v1alpha1\nkind: RecModel\nmetadata: {name: m}\nspec:\n  model: {architecture: custom, topMLP: [1], ' +
        'tables: [{name: t, rows: 1, dim: 1}]}\n',
      'LatencyScalingPolicy p is invalid: spec.target.latency: must match pattern',
    ],
    ['broken YAML', 'spec: [unclosed\n', 'invalid YAML'],
  ])('fails with a clear message on %s', (_name, text, message) => {
    const p = file(`${_name.replace(/\W/g, '-')}.yaml`, text);
    expect(() => planCommand(p, 'table')).toThrow(CliError);
    expect(() => planCommand(p, 'table')).toThrow(message);
  });

  it('fails on a missing file', () => {
    expect(() => planCommand(join(dir, 'nope.yaml'), 'table')).toThrow(/cannot read .*nope.yaml/);
  });

  it('reads JSON too', () => {
    const p = file(
      'm.json',
      JSON.stringify(
        parse(
          'apiVersion: recshard.io/v1alpha1\nkind: RecModel\nmetadata: {name: j}\nspec:\n  model: {architecture: custom, ' +
            'topMLP: [1], tables: [{name: t, rows: 10, dim: 4}]}\n',
        ),
      ),
    );
    expect(planCommand(p, 'json')).toContain('"model": "j"');
  });
});

describe('recshard hpa-rules', () => {
  it("prints the prometheus-adapter rule that serves the metric the policy's HPAs read", () => {
    const out = hpaRulesCommand(join(examples, 'autoscaling', 'hpa-policy.yaml'));
    expect(out).toMatch(/^# prometheus-adapter rules for LatencyScalingPolicy recsys-hpa-p95-100ms \(actuator HPA\)/);
    const doc = parse(out) as { externalRules: { name: { as: string }; metricsQuery: string; seriesQuery: string }[] };
    expect(doc.externalRules).toHaveLength(1);
    expect(doc.externalRules[0]!.name.as).toBe('recshard_latency_p95_60s_seconds');
    expect(doc.externalRules[0]!.metricsQuery).toContain('histogram_quantile(0.95, sum by (le) (rate(<<.Series>>{<<.LabelMatchers>>}[60s])))');
  });

  it('one rule per percentile and window, and a clear error without a policy', () => {
    const two = file(
      'two.yaml',
      ['p95', 'p99', 'p99b']
        .map(
          (n, i) =>
            `apiVersion: recshard.io/v1alpha1\nkind: LatencyScalingPolicy\nmetadata: {name: ${n}}\nspec: {target: {latency: ` +
            `100ms, percentile: ${i ? 99 : 95}}}\n`,
        )
        .join('---\n'),
    );
    expect((parse(hpaRulesCommand(two)) as { externalRules: unknown[] }).externalRules).toHaveLength(2);
    expect(() => hpaRulesCommand(join(examples, 'dlrm-rmc1.yaml'))).toThrow(/no LatencyScalingPolicy found/);
    const bad = file('bad.yaml', 'apiVersion: recshard.io/v1alpha1\nkind: LatencyScalingPolicy\nmetadata: {name: x}\nspec: {target: {latency: soon}}\n');
    expect(() => hpaRulesCommand(bad)).toThrow(/LatencyScalingPolicy x is invalid: spec.target.latency/);
  });
});

describe('recshard plan of a model with a table larger than a shard', () => {
  it('shows the pieces of the split table per shard and says why it split', () => {
    const out = planCommand(
      file(
        'split.yaml',
        `apiVersion: recshard.io/v1alpha1
kind: RecModel
metadata: {name: split}
spec:
  model:
    architecture: custom
    denseFeatures: 8
    bottomMLP: [16]
    topMLP: [16, 1]
    interaction: dot
    tables:
      - {name: big, rows: 4000000, dim: 16, poolingFactor: 20}
      - {name: a, rows: 20000, dim: 16, poolingFactor: 4}
  sharding: {strategy: load-balanced, shardMemory: 64Mi, headroom: 0}
`,
      ),
      'table',
    );
    expect(out).toMatch(/shard-0 .* 1\+1 piece .* a,big\[rows 0-999999\] /);
    expect(out).toMatch(/shard-3 .* 1 piece .* big\[rows 3000000-3999999\] /);
    expect(out).toContain('Note: table "big" (244.1 MiB) is larger than a shard holds: split by rows into 4 pieces of at most 61.0 MiB');
  });
});

describe('recshard model generate', () => {
  it('refuses a chunk size that is not a quantity, naming the flag', () => {
    expect(() => generateCommand('ncf', 0.01, 1, join(dir, 'm'), 'lots')).toThrow(new CliError('--chunk-size: invalid quantity "lots"'));
    expect(() => generateCommand('ncf', 0.01, 1, join(dir, 'm'), '0')).toThrow(new CliError('--chunk-size must be at least 1 byte, got 0'));
  });
});
