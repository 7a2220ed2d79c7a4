// Benchmark 6 (bench/rollout.ts) as a smoke test: `bench/run.ts --quick --only rollout` starts its own local
// cluster beside the suite's, re-shards a model under load on real pods and writes its section, chart and JSON;
// the numbers are not asserted beyond their shape, except that no request failed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResults } from '../../bench/report.js';
import { ROOT } from './support.js';

const out = mkdtempSync(join(tmpdir(), 'recshard-bench-rollout-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('bench --quick --only rollout', () => {
  it('re-shards under load on its own cluster and reports the switch', () => {
    const r = spawnSync('npx', ['tsx', 'bench/run.ts', '--quick', '--only', 'rollout', '--out', out], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    const md = readFileSync(join(out, 'benchmarks.md'), 'utf8');
    expect(md).toContain('## 6. Re-sharding under load on real pods');
    expect(md).toContain('npx tsx bench/run.ts --quick --only rollout');
    expect(readFileSync(join(out, 'bench', 'rollout.svg'), 'utf8')).toMatch(/^<svg/);
    const res = (JSON.parse(readFileSync(join(out, 'bench', 'results.json'), 'utf8')) as BenchResults).rollout!;
    expect(res.switchS).toBeGreaterThan(0);
    expect(res.during.answered).toBeGreaterThan(0);
    expect(res.during).toMatchObject({ failed: 0, timeouts: 0 });
    expect(res.shardStartupS).toHaveLength(2);
    expect(res.phases.map((p) => p.phase)).toContain('SwitchingMain');
    expect(res.timeline.length).toBeGreaterThan(res.window.toS - 1);
  }, 660_000);
});
