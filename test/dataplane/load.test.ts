// The load generator against real shard-servers: open-loop Poisson arrivals, HDR percentiles, JSON results.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { capacityCommand, loadCommand } from '../../cli/commands/load.js';
import { serveLocal, type LocalDeployment } from '../../cli/local.js';
import { zooRecModel } from './helpers.js';

let d: LocalDeployment;
const dir = mkdtempSync(join(tmpdir(), 'recshard-load-'));

beforeAll(async () => {
  d = await serveLocal(zooRecModel('dlrm-rmc1', 'rmc1', { strategy: 'load-balanced', shards: 2 }), { scale: 0.0005, seed: 1 });
});
afterAll(async () => {
  await d?.stop();
});

const flags = (over: Record<string, string>) => ({
  qps: '40',
  duration: '3',
  sizes: 'fixed:4',
  zipf: '0',
  seed: '1',
  timeoutMs: '5000',
  pool: '64',
  scale: '0.0005',
  ...over,
});

describe('recshard load', () => {
  it('offers Poisson arrivals at the target rate and reports percentiles from an HDR histogram', async () => {
    const r = await loadCommand(flags({ url: d.mainUrl, model: 'rmc1' }), false);
    // 120 arrivals expected; a Poisson count is within +-4 sigma (about 44) practically always
    expect(r.sent).toBeGreaterThan(76);
    expect(r.sent).toBeLessThan(164);
    expect(r.ok).toBe(r.sent);
    expect(r.errors + r.timeouts).toBe(0);
    expect(r.meanQuerySize).toBe(4);
    expect(r.latencyMs.p50).toBeGreaterThan(0);
    expect(r.latencyMs.p50).toBeLessThanOrEqual(r.latencyMs.p95);
    expect(r.latencyMs.p95).toBeLessThanOrEqual(r.latencyMs.p99);
    expect(r.latencyMs.p99).toBeLessThanOrEqual(r.latencyMs.p999);
    // HDR reports a bucket's highest equivalent value: within 0.1% (3 significant digits) of the true max
    expect(r.latencyMs.p999).toBeLessThanOrEqual(r.latencyMs.max * 1.001 + 0.001);
    expect(r.samplesPerSecond).toBe(Math.round((r.ok * 4) / 3));
  });

  it('counts server errors and keeps going (open loop)', async () => {
    const restart = await d.kill('shard-1');
    try {
      const r = await loadCommand(flags({ url: d.mainUrl, model: 'rmc1', qps: '20', duration: '1.5' }), false);
      expect(r.sent).toBeGreaterThan(5);
      expect(r.errors).toBe(r.sent);
      expect(r.errorsByStatus['503']).toBe(r.sent);
    } finally {
      await restart();
    }
  });

  it('brings a RecModel up itself with --local and writes nothing but results', async () => {
    const file = join(dir, 'ncf.yaml');
    writeFileSync(file, stringify(zooRecModel('ncf', 'ncf', { strategy: 'net-specific' })));
    const r = await loadCommand(flags({ local: file, sizes: 'production', zipf: '1.1', duration: '2', qps: '20' }), false);
    expect(r.model).toBe('ncf');
    expect(r.ok).toBeGreaterThan(10);
    expect(r.meanQuerySize).toBeGreaterThan(20);
    expect(JSON.parse(JSON.stringify(r)).latencyMs.p99).toBe(r.latencyMs.p99);
  });

  it('says what is wrong with its flags', async () => {
    await expect(loadCommand(flags({}), false)).rejects.toThrow('give --local FILE, or --url URL and --model NAME');
    await expect(loadCommand(flags({ url: d.mainUrl, model: 'rmc1', qps: '-1' }), false)).rejects.toThrow('--qps must be a number');
    await expect(loadCommand(flags({ url: d.mainUrl, model: 'rmc1', sizes: 'zipf:3' }), false)).rejects.toThrow('--sizes');
    await expect(loadCommand(flags({ url: d.mainUrl, model: 'nope' }), false)).rejects.toThrow(/answered 404/);
  });
});

describe('recshard bench capacity', () => {
  it('searches load levels and reports the highest that met the target', async () => {
    const logged: string[] = [];
    const r = await capacityCommand(
      { ...flags({ url: d.mainUrl, model: 'rmc1' }), targetMs: '5000', percentile: '95', levelSeconds: '0.6', startQps: '5', precision: '1.5', maxLevels: '3' },
      (l) => logged.push(l),
    );
    // a 5 s target is met at every level this short search reaches: it keeps doubling
    expect(r.levels.map((l) => l.qps)).toEqual([5, 10, 20]);
    expect(r.levels.every((l) => l.pass)).toBe(true);
    expect(r.qps).toBe(20);
    expect(logged).toHaveLength(3);
    expect(logged[0]).toMatch(/^pass +5 QPS {2}p95 [\d.]+ ms$/);
  });

  it('reports 0 when the target cannot be met', async () => {
    const r = await capacityCommand(
      {
        ...flags({ url: d.mainUrl, model: 'rmc1' }),
        targetMs: '0.001',
        percentile: '99',
        levelSeconds: '0.5',
        startQps: '5',
        precision: '1.5',
        maxLevels: '2',
      },
      () => {},
    );
    expect(r.qps).toBe(0);
    expect(r.levels.every((l) => !l.pass)).toBe(true);
  });
});
