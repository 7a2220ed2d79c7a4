// `make bench --quick` as a smoke test: the seven data-plane benchmarks run end to end at toy sizes and produce a
// well-formed report (markdown with every section, target line and goal, charts as SVG, raw JSON), not timings.
// The re-sharding benchmark on real pods needs the local cluster: test/e2e/bench-rollout.test.ts runs it. And the
// PyTorch baseline computes what recshard computes (bench/torch-check.ts), or its ratios would mean nothing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResults } from '../../bench/report.js';

const out = mkdtempSync(join(tmpdir(), 'recshard-bench-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('bench --quick', () => {
  it('runs the seven data-plane benchmarks and writes the report, its charts and the raw results', () => {
    const seven = ['scheduling', 'scaleout', 'kernel', 'overhead', 'autoscaling', 'serving', 'capacity'];
    const r = spawnSync('npx', ['tsx', 'bench/run.ts', '--quick', '--only', ...seven, '--out', out], { encoding: 'utf8', timeout: 360_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/== 5\/9 autoscaling/);
    expect(r.stderr).toMatch(/== 7\/9 serving/);
    expect(r.stderr).not.toMatch(/6\/9 rollout/);

    const md = readFileSync(join(out, 'benchmarks.md'), 'utf8');
    for (const heading of [
      '## 1. Scheduling',
      '## 2. The cost of scale-out',
      '## 3. Sparse lookups against the physical limit',
      '## 4. Server overhead',
      '## 5. Latency autoscaling against the HPA algorithm',
      '## 7. Serving speed against PyTorch eager',
      '## 9. Capacity beyond one server: int8 tables and tables split by rows',
      '## Goals of issue 17 (serving speed)',
      '## Reproducing',
    ])
      expect(md).toContain(heading);
    expect(md).toMatch(/Machine: \d+ cores \(/);
    expect(md).toMatch(/Target: auto within 5% of the best fixed B on every model: \*\*(met|not met)\*\*/);
    expect(md).toMatch(/Target \(within 5%\): \*\*(met|not met)\*\*/);
    expect(md).toMatch(/Target: at least half the C kernel's rate: \*\*(met|not met)\*\*/);
    // the split table's scores are the whole table's, bit for bit, even at smoke-test sizes
    expect(md).toContain('Scores bit-for-bit equal: **met**');
    expect(md).toMatch(/Target \(at least 50% fewer bytes and shard CPU, p99 down, answers within 1e-5\): \*\*(met|not met)\*\*/);
    expect(md).toMatch(
      new RegExp(
        'Target: fewer seconds over the target than HPA on every trace, at no more than 10% more replica-seconds, and no flapping ' +
          '\\(no more direction reversals than the trace itself calls for\\), under every seed: \\*\\*(met|not met)\\*\\*',
      ),
    );
    expect(md).toMatch(/Target: at least PyTorch's embedding_bag rate on every table: \*\*(met|not met)\*\*/);
    // every goal of issue 17 is in the table with a verdict (or, memory, the numbers it reports)
    for (const goal of [
      'end to end against PyTorch eager, batch 1 | ≤ 1.0x',
      'end to end against PyTorch eager, batch 64 | ≤ 0.5x',
      'end to end against PyTorch eager, batch 512 | ≤ 0.5x',
      'serving overhead (p50 less compute) over the node:http echo floor | ≤ 1.2x',
      'pooled lookups against PyTorch embedding_bag, cache-resident | ≥ 1.0x',
      'sharding CPU per query, DLRM-RMC2 (embedding-heavy) | ≤ 1.15x monolithic',
      'sharding p99 at one client, DLRM-RMC2 (embedding-heavy) | ≤ 1.05x monolithic',
      'DeepRecSched auto against the best fixed batch size | ≥ 0.95x on every model',
    ])
      expect(md).toMatch(new RegExp(`\\| ${goal.replace(/[().|]/g, '\\$&')} \\| [^|]*\\d\\.\\d{2,3}x[^|]* \\| \\*\\*(met|not met)\\*\\* \\|`));
    const split = '\\| sharding p99 at half load, DLRM-RMC2 \\(embedding-heavy\\): contention or protocol \\| report \\| ';
    expect(md).toMatch(
      new RegExp(`${split}shared cores [\\d.]+x, shards on a core of their own [\\d.]+x \\([^)]+\\) \\| {2}\\| [\\d.]+% of the gap is CPU contention`),
    );
    expect(md).toMatch(/\| memory per process over table bytes \(reported\) \| report \| main [\d.]+ MiB, shard [\d.]+ MiB \|/);
    expect(md).toContain('npx tsx bench/run.ts --quick');

    const res = JSON.parse(readFileSync(join(out, 'bench', 'results.json'), 'utf8')) as BenchResults;
    expect(res.quick).toBe(true);
    expect(res.machine.cores).toBeGreaterThan(0);
    const s = res.scheduling![0]!;
    expect(s.whole.levels.length).toBeGreaterThan(0);
    expect(s.auto.finalBatchSize).toBeGreaterThan(0);
    expect(Number.isFinite(s.autoVsBest)).toBe(true);
    const so = res.scaleOut![0]!;
    expect(so.rows.map((x) => x.config)).toEqual(['monolithic', 'singular', 'load-balanced/2']);
    expect(so.rows.every((x) => x.p99Ms > 0 && x.cpuSecondsPer1000 > 0)).toBe(true);
    expect(so.rows[2]!.processes).toBe(3); // main + 2 shards, all counted
    expect(res.kernel!.rows[0]!.wasm).toBeGreaterThan(0);
    const c = res.capacity!;
    expect(c.rowsPerShard.map((x) => [x.dtype, x.vsFp32])).toEqual([
      ['fp32', 1],
      ['fp16', 2],
      ['int8', 3.56],
    ]);
    expect(c.int8.pooledMaxAbs).toBeGreaterThan(0);
    expect(c.int8.pooledMaxAbs).toBeLessThan(0.05);
    expect(c.int8.kernel.int8).toBeGreaterThan(0);
    expect(c.split.pieces).toBeGreaterThanOrEqual(4);
    expect(c.split.exact).toBe(true);
    // the hot-row cache took lookups off the shards, and the answers stayed within fp32 rounding
    expect(c.hotRows.on.hitRate).toBeGreaterThan(0.5);
    expect(c.hotRows.on.shardLookups).toBeLessThan(c.hotRows.off.shardLookups / 2);
    expect(c.hotRows.maxRelDiff).toBeLessThan(1e-5);
    expect(res.kernel!.rows[0]!.cBlocked).toBeGreaterThan(0);
    expect(res.kernel!.readGBps).toBeGreaterThan(0);
    expect(res.kernel!.rows[0]!.torch).toBeGreaterThan(0);
    expect(res.overhead![0]!.endToEndUs).toBeGreaterThan(res.overhead![0]!.bareOrtUs);
    const v = res.serving!;
    expect(v.rows.map((x) => x.batch)).toEqual([1, 64, 512]);
    expect(v.versions.torch).toMatch(/^2\.15\./);
    expect(v.maxRelDiff).toBeLessThan(1e-5);
    for (const x of v.rows) {
      expect(x.recshard.p50Us > 0 && x.torch.p50Us > 0 && x.echo.p50Us > 0).toBe(true);
      expect(x.recshard.p99Us).toBeGreaterThanOrEqual(x.recshard.p50Us);
      expect(x.computeUs).toBeGreaterThan(0);
      expect(x.cpuMs.recshard > 0 && x.cpuMs.torch > 0).toBe(true);
    }
    expect(v.memory.map((m) => m.role)).toEqual(['main', 'shard']);
    expect(v.memory.every((m) => m.rssMiB > m.tableMiB)).toBe(true);
    const a = res.autoscaling!;
    expect(a.traces.map((t) => t.trace)).toEqual(['step', 'spike', 'diurnal', 'ramp']);
    expect(a.service.samples).toBe(60);
    expect(a.service.meanMs).toBeGreaterThan(0);
    expect(a.seeds).toHaveLength(1);
    for (const t of a.traces) {
      expect(t.runs).toHaveLength(1);
      expect(t.runs[0]!.hpa.replicaSeconds).toBeGreaterThan(0);
      expect(t.runs[0]!.recshard.replicaSeconds).toBeGreaterThan(0);
      expect(t.met).toBe(t.runs[0]!.met);
      expect(t.series.some((p) => p.controller === 'HPA') && t.series.some((p) => p.controller === 'recshard')).toBe(true);
    }

    for (const chart of ['scheduling', 'scaleOutLatency', 'scaleOutCpu', 'kernel', 'overhead', 'autoscaling', 'serving']) {
      const svg = readFileSync(join(out, 'bench', `${chart}.svg`), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toContain('</svg>');
      expect(md).toContain(`(bench/${chart}.svg)`);
    }
  }, 420_000);

  it('checks that the PyTorch baseline scores exactly what recshard scores (dot and concat models, fp16, mean pooling)', () => {
    const r = spawnSync('npx', ['tsx', 'bench/torch-check.ts'], { encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/torch-check: every model within 0\.00001 relative|torch-check: every model within 1e-5 relative/);
    expect(r.stderr).toMatch(/dlrm-rmc1 fp16 tables: max relative difference/);
  }, 300_000);
});
