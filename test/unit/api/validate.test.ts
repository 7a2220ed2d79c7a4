import { describe, expect, it } from 'vitest';
import { resolveSpec } from '../../../operator/api/v1alpha1/index.js';

const model = { architecture: 'custom', topMLP: [1], tables: [{ name: 'a', rows: 10, dim: 4 }] };

function errorsOf(spec: unknown) {
  const r = resolveSpec(spec);
  return r.ok ? [] : r.errors;
}

describe('defaulting from the CRD schema', () => {
  it('fills every default, recursively into objects defaulted to {}', () => {
    const r = resolveSpec({ model });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.spec.sharding).toEqual({ strategy: 'load-balanced', shardMemory: '16Gi', headroom: 10 });
    expect(r.spec.placement.main).toEqual({ device: 'cpu', replicas: 1 });
    expect(r.spec.serving).toEqual({ latencyTarget: '100ms', percentile: 95, port: 8080, metricsPort: 9464, scheduler: 'auto', batchSize: 64 });
    expect(r.spec.autoscaling).toEqual({ enabled: false });
    expect(r.spec.model.tables![0]).toEqual({ name: 'a', rows: 10, dim: 4, dtype: 'fp32', poolingFactor: 1, net: 'default' });
    expect(r.spec.model.denseFeatures).toBe(0);
    expect(r.spec.model.interaction).toBe('concat');
  });

  it('does not modify its input', () => {
    const input = { model: structuredClone(model) };
    resolveSpec(input);
    expect(input).toEqual({ model });
  });
});

describe('schema errors name the field', () => {
  it.each([
    [{ model: { ...model, tables: [{ name: 'a', rows: 10, dim: 0 }] } }, 'spec.model.tables[0].dim', 'must be >= 1'],
    [{ model: { ...model, tables: [{ name: 'Bad_Name', rows: 10, dim: 4 }] } }, 'spec.model.tables[0].name', 'must match pattern'],
    [
      { model: { ...model, tables: [{ name: 'a', rows: 10, dim: 4, dtype: 'int4' }] } },
      'spec.model.tables[0].dtype',
      'Unsupported value: supported values: "fp32", "fp16"',
    ],
    [{ model: { architecture: 'custom', tables: [{ name: 'a', rows: 1, dim: 1 }] } }, 'spec.model.topMLP', 'Required value'],
    [{ model, sharding: { strategy: 'round-robin' } }, 'spec.sharding.strategy', 'Unsupported value'],
    [{ model, sharding: { shardMemory: 'lots' } }, 'spec.sharding.shardMemory', 'must match pattern'],
    [{ model, placement: { main: { replicas: -1 } } }, 'spec.placement.main.replicas', 'must be >= 0'],
    [{ model, surprise: true }, 'spec.surprise', 'unknown field'],
  ])('%#: %s', (spec, field, message) => {
    const errors = errorsOf(spec);
    expect(errors.map((e) => e.field)).toContain(field);
    expect(errors.find((e) => e.field === field)!.message).toContain(message);
  });
});

describe('CEL rules from the CRD run locally', () => {
  it.each([
    [{ model: { architecture: 'custom', topMLP: [1] } }, 'spec.model', 'at least one embedding table'],
    [{ model, sharding: { strategy: 'singular', shards: 3 } }, 'spec.sharding', 'shards may only be set when strategy is load-balanced'],
    [{ model, sharding: { strategy: 'auto', shards: 3 } }, 'spec.sharding', 'shards may only be set when strategy is load-balanced'],
    [{ model, placement: { main: { resources: { limits: { 'nvidia.com/gpu': 1 } } } } }, 'spec.placement.main', 'requires device gpu'],
    [{ model, placement: { sparse: { gpus: 2 } } }, 'spec.placement.sparse', 'gpus may only be set when device is gpu'],
    [{ model, autoscaling: { enabled: true } }, 'spec.autoscaling', 'policyRef is required'],
    [{ model, artifact: { uri: 's3://bucket/model' } }, 'spec.artifact.uri', 'must start with file://'],
    [{ model: { ...model, tableGroups: [{ namePrefix: 'a', count: 2, rows: 1, dim: 1 }] } }, 'spec.model', 'must not start with a tableGroups namePrefix'],
    [{ model: { ...model, nets: ['user'], tables: [{ name: 'a', rows: 1, dim: 1, net: 'usr' }] } }, 'spec.model', "every table's net must be one of"],
    // a table without a net is in "default", which a list of nets must then name
    [{ model: { ...model, nets: ['user'] } }, 'spec.model', "every table's net must be one of spec.model.nets"],
    [
      { model: { ...model, nets: ['default'], tableGroups: [{ namePrefix: 'g', count: 2, rows: 1, dim: 1, net: 'item' }] } },
      'spec.model',
      "every group's net must be one of spec.model.nets",
    ],
  ])('%#: rejects at %s', (spec, field, message) => {
    const errors = errorsOf(spec);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.field).toBe(field);
    expect(errors[0]!.message).toContain(message);
  });

  it('accepts nets that name every net the tables use, and tables with no list of nets at all', () => {
    const tables = [
      { name: 'a', rows: 1, dim: 1, net: 'user' },
      { name: 'b', rows: 1, dim: 1 },
    ];
    const tableGroups = [{ namePrefix: 'g', count: 2, rows: 1, dim: 1, net: 'item' }];
    expect(errorsOf({ model: { ...model, nets: ['user', 'item', 'default'], tables, tableGroups } })).toEqual([]);
    expect(errorsOf({ model: { ...model, tables: [{ name: 'a', rows: 1, dim: 1, net: 'anything' }] } })).toEqual([]);
  });

  it('accepts a full valid spec', () => {
    expect(
      errorsOf({
        model,
        sharding: { strategy: 'load-balanced', shards: 3 },
        placement: { main: { device: 'gpu', gpus: 2, resources: { limits: { 'nvidia.com/gpu': 2 } } }, sparse: { device: 'cpu' } },
        autoscaling: { enabled: true, policyRef: { name: 'default' } },
        artifact: { uri: 'file:///models/rmc1/' },
      }),
    ).toEqual([]);
  });
});
