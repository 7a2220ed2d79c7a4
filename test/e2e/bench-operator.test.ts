// Benchmark 8 (bench/operator.ts) as a smoke test: `bench/run.ts --quick --only operator` starts its own local
// control plane (KWOK nodes) beside the suite's, applies a fleet of RecModels and one large model to the operator
// and writes its section and JSON. Timings are not asserted; what must hold whatever the machine is: every model
// Ready, an idle operator writes nothing, and /healthz answered throughout.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResults } from '../../bench/report.js';
import { ROOT } from './support.js';

const out = mkdtempSync(join(tmpdir(), 'recshard-bench-operator-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('bench --quick --only operator', () => {
  it('brings a fleet and a large model to Ready on its own control plane, and reports the goals of issue 18', () => {
    const r = spawnSync('npx', ['tsx', 'bench/run.ts', '--quick', '--only', 'operator', '--out', out], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    const md = readFileSync(join(out, 'benchmarks.md'), 'utf8');
    expect(md).toContain('## 8. The operator at scale');
    expect(md).toContain('## Goals of issue 18 (the operator at scale)');
    expect(md).toMatch(/\| 20 RecModels applied at once, all Ready \| < 60 s \| [\d.]+ s \| \*\*(met|not met)\*\* \|/);
    const big = /\| 4096-table, 64-shard model planned and reconciled \| < 10 s \| Planned [\d.]+ s, every child written [\d.]+ s \(Ready [\d.]+ s\)/;
    expect(md).toMatch(new RegExp(`${big.source} \\| \\*\\*(met|not met)\\*\\* \\|`));
    const res = (JSON.parse(readFileSync(join(out, 'bench', 'results.json'), 'utf8')) as BenchResults).operator!;
    expect(res.fleet.models).toBe(20);
    expect(res.fleet.reconciles).toBeGreaterThanOrEqual(20);
    expect(res.idle.applies).toBe(0);
    // the large model's children: its plan ConfigMap, the main's three, two per shard, the shard set's budget, two NetworkPolicies
    expect(res.big.children).toBe(1 + 3 + 2 * 64 + 1 + 2);
    expect(res.big.plannedS).toBeLessThanOrEqual(res.big.readyS);
    // the ordinary model beside two large ones got its status and became Ready
    expect(res.fairness!.plannedS).toBeGreaterThan(0);
    expect(res.fairness!.plannedS).toBeLessThanOrEqual(res.fairness!.readyS);
    expect(md).toMatch(/\| fairness: an ordinary model applied after two 2048-table models gets its status \| Planned < 5 s/);
    expect([res.fleet.healthzFailures, res.big.healthzFailures, res.fairness!.healthzFailures]).toEqual([0, 0, 0]);
  }, 660_000);
});
