// `make bench --quick` as a smoke test: the five data-plane benchmarks run end to end at toy sizes and produce a
// well-formed report (markdown with every section and target line, charts as SVG, raw JSON), not timings. The
// sixth (re-sharding on real pods) needs the local cluster: test/e2e/bench-rollout.test.ts runs it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResults } from '../../bench/report.js';

const out = mkdtempSync(join(tmpdir(), 'recshard-bench-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('bench --quick', () => {
  it('runs the five data-plane benchmarks and writes the report, its charts and the raw results', () => {
    const five = ['scheduling', 'scaleout', 'kernel', 'overhead', 'autoscaling'];
    const r = spawnSync('npx', ['tsx', 'bench/run.ts', '--quick', '--only', ...five, '--out', out], { encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/== 5\/6 autoscaling/);
    expect(r.stderr).not.toMatch(/6\/6 rollout/);

    const md = readFileSync(join(out, 'benchmarks.md'), 'utf8');
    for (const heading of [
      '## 1. Scheduling',
      '## 2. The cost of scale-out',
      '## 3. Sparse lookups against the physical limit',
      '## 4. Server overhead',
      '## 5. Latency autoscaling against the HPA algorithm',
      '## Reproducing',
    ])
      expect(md).toContain(heading);
    expect(md).toMatch(/Machine: \d+ cores \(/);
    expect(md).toMatch(/Target: auto within 5% of the best fixed B on every model: \*\*(met|not met)\*\*/);
    expect(md).toMatch(/Target \(within 5%\): \*\*(met|not met)\*\*/);
    expect(md).toMatch(/Target: at least half the C kernel's rate: \*\*(met|not met)\*\*/);
    expect(md).toMatch(
      new RegExp(
        'Target: fewer seconds over the target than HPA on every trace, at no more than 10% more replica-seconds, and no flapping ' +
          '\\(no more direction reversals than the trace itself calls for\\), under every seed: \\*\\*(met|not met)\\*\\*',
      ),
    );
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
    expect(res.kernel!.rows[0]!.cBlocked).toBeGreaterThan(0);
    expect(res.kernel!.readGBps).toBeGreaterThan(0);
    expect(res.overhead![0]!.endToEndUs).toBeGreaterThan(res.overhead![0]!.bareOrtUs);
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

    for (const chart of ['scheduling', 'scaleOutLatency', 'scaleOutCpu', 'kernel', 'overhead', 'autoscaling']) {
      const svg = readFileSync(join(out, 'bench', `${chart}.svg`), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toContain('</svg>');
      expect(md).toContain(`(bench/${chart}.svg)`);
    }
  }, 300_000);
});
