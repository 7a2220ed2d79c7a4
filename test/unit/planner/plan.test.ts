import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RecModelSpec } from '../../../operator/api/v1alpha1/index.js';
import { cheaper, planCost } from '../../../operator/planner/cost.js';
import { ffdShardCount, planModel, type Plan } from '../../../operator/planner/plan.js';
import { expandTables, splitTable } from '../../../operator/planner/tables.js';
import { specOf, type TableInput } from '../fixtures.js';

const MiB = 2 ** 20;

const tableArb = fc.record({
  rows: fc.integer({ min: 1, max: 400_000 }),
  dim: fc.constantFrom(4, 8, 16, 32, 64, 128),
  dtype: fc.constantFrom('fp32' as const, 'fp16' as const),
  poolingFactor: fc.integer({ min: 0, max: 120 }),
  net: fc.constantFrom('user', 'item', 'ctx', 'ad'),
});
const tablesArb = fc.array(tableArb, { minLength: 1, maxLength: 40 }).map((ts) => ts.map((t, i): TableInput => ({ ...t, name: `t${i}` })));

function spec(tables: TableInput[], sharding: RecModelSpec['sharding']) {
  return specOf({ tables, sharding });
}

/** Every table placed once: whole, or (a split table) each of its pieces once. */
function placedTables(plan: Plan): string[] {
  const pieces = plan.shards.flatMap((s) => s.pieces ?? []);
  const split = [...new Set(pieces.map((p) => p.table))];
  return [...plan.mainTables, ...plan.shards.flatMap((s) => s.tables), ...split];
}

function expectValidPlan(plan: Plan, tables: TableInput[]): void {
  expect(placedTables(plan).sort()).toEqual(tables.map((t) => t.name).sort());
  const byName = new Map(plan.tables.map((t) => [t.name, t]));
  const pieces = plan.shards.flatMap((s) => s.pieces ?? []);
  for (const name of new Set(pieces.map((p) => p.table))) {
    // pieces 0..n-1 once each, in row order, covering the table's rows with no gap or overlap, none on one shard twice
    const own = pieces.filter((p) => p.table === name).sort((a, b) => a.piece - b.piece);
    expect(own.map((p) => p.piece)).toEqual(own.map((_, i) => i));
    expect(own.every((p) => p.pieces === own.length)).toBe(true);
    expect(own[0]!.rowStart).toBe(0);
    own.forEach((p, i) => i > 0 && expect(p.rowStart).toBe(own[i - 1]!.rowEnd));
    expect(own.at(-1)!.rowEnd).toBe(byName.get(name)!.rows);
    expect(byName.get(name)!.bytes).toBeGreaterThan(plan.capacityBytes);
  }
  for (const s of plan.shards) {
    expect(s.bytes).toBeLessThanOrEqual(plan.capacityBytes);
    expect(new Set((s.pieces ?? []).map((p) => p.table)).size).toBe((s.pieces ?? []).length);
    const whole = plan.tables.filter((t) => s.tables.includes(t.name)).reduce((a, t) => a + t.bytes, 0);
    const rows = (s.pieces ?? []).reduce((a, p) => a + ((p.rowEnd - p.rowStart) * byName.get(p.table)!.bytes) / byName.get(p.table)!.rows, 0);
    expect(s.bytes).toBe(whole + rows);
  }
}

/** What the planner places: the tables, each one larger than capacity as its pieces. */
function placedItems(plan: Plan, tables = plan.tables) {
  return tables.flatMap((t) => (t.bytes > plan.capacityBytes ? splitTable(t, plan.capacityBytes) : [t]));
}

describe('planner properties on random models', () => {
  it('load-balanced: every table once, no shard over capacity, deterministic and order-independent', () => {
    fc.assert(
      fc.property(tablesArb, fc.integer({ min: 1, max: 8 }), fc.integer({ min: 16, max: 512 }), (tables, shards, memMiB) => {
        const s = spec(tables, { strategy: 'load-balanced', shards, shardMemory: `${memMiB}Mi`, headroom: 10 });
        const r = planModel(s);
        if (!r.ok) {
          expect(r.error.reason).toBe('Infeasible');
          return;
        }
        expectValidPlan(r.plan, tables);
        // never an empty shard: more shards than tables (and pieces) are planned as one per table, and the plan says so
        const items = placedItems(r.plan).length;
        expect(r.plan.shards).toHaveLength(Math.min(shards, items));
        const splitNotes = r.plan.notes.filter((n) => n.includes('split by rows'));
        expect(splitNotes).toHaveLength(r.plan.tables.filter((t) => t.bytes > r.plan.capacityBytes).length);
        expect(r.plan.notes.filter((n) => !splitNotes.includes(n))).toEqual(
          shards > items
            ? [`${shards} shards asked for, ${items} planned: one per ${items > tables.length ? 'table or piece' : 'table'}, more would be empty`]
            : [],
        );
        expect(planModel(s)).toEqual(r);
        const shuffled = spec([...tables].reverse(), { strategy: 'load-balanced', shards, shardMemory: `${memMiB}Mi`, headroom: 10 });
        expect(planModel(shuffled)).toEqual(r);
      }),
      { numRuns: 300 },
    );
  });

  it('load-balanced: when capacity does not bind, max load <= mean + largest table load (list-scheduling bound)', () => {
    fc.assert(
      fc.property(tablesArb, fc.integer({ min: 2, max: 8 }), (tables, shards) => {
        const r = planModel(spec(tables, { strategy: 'load-balanced', shards, shardMemory: '64Gi' }));
        if (!r.ok) throw r.error;
        const loads = r.plan.shards.map((s) => s.lookupBytesPerSample);
        const mean = loads.reduce((a, b) => a + b, 0) / shards;
        const largest = Math.max(...r.plan.tables.map((t) => t.loadBytes));
        expect(Math.max(...loads)).toBeLessThanOrEqual(mean + largest + 1e-9);
        if (mean > 0) expect(r.plan.imbalance).toBeLessThanOrEqual(1 + largest / mean + 1e-3);
      }),
      { numRuns: 300 },
    );
  });

  it('load-balanced: equal tables spread evenly (imbalance 1 when the count divides)', () => {
    const tables = Array.from({ length: 12 }, (_, i) => ({ name: `t${i}`, rows: 1000, dim: 32, poolingFactor: 10 }));
    const r = planModel(spec(tables, { strategy: 'load-balanced', shards: 4 }));
    expect(r.ok && r.plan.imbalance).toBe(1);
  });

  it('net-specific: never mixes nets, uses the FFD shard count per net, respects capacity', () => {
    fc.assert(
      fc.property(tablesArb, fc.integer({ min: 16, max: 256 }), (tables, memMiB) => {
        const s = spec(tables, { strategy: 'net-specific', shardMemory: `${memMiB}Mi`, headroom: 0 });
        const r = planModel(s);
        if (!r.ok) throw r.error; // a table larger than a shard is split, so every model plans
        expectValidPlan(r.plan, tables);
        const byName = new Map(r.plan.tables.map((t) => [t.name, t]));
        for (const shard of r.plan.shards) {
          const nets = new Set([...shard.tables, ...(shard.pieces ?? []).map((p) => p.table)].map((n) => byName.get(n)!.net));
          expect(nets.size).toBe(1);
          expect(shard.net).toBe([...nets][0]);
        }
        const all = expandTables(s.model);
        for (const net of new Set(all.map((t) => t.net))) {
          const own = placedItems(
            r.plan,
            all.filter((t) => t.net === net),
          );
          expect(r.plan.shards.filter((x) => x.net === net).length).toBeLessThanOrEqual(ffdShardCount(own, r.plan.capacityBytes));
        }
        expect(planModel(s)).toEqual(r);
      }),
      { numRuns: 300 },
    );
  });

  it('singular and monolithic hold everything in one place or say why not', () => {
    fc.assert(
      fc.property(tablesArb, fc.integer({ min: 1, max: 64 }), fc.constantFrom('singular' as const, 'monolithic' as const), (tables, memMiB, strategy) => {
        const r = planModel(spec(tables, { strategy, shardMemory: `${memMiB}Mi`, headroom: 10 }));
        const total = tables.reduce((a, t) => a + t.rows * t.dim * (t.dtype === 'fp16' ? 2 : 4), 0);
        const capacity = Math.floor((memMiB * MiB * 90) / 100);
        if (total > capacity) {
          expect(r.ok).toBe(false);
          return;
        }
        if (!r.ok) throw r.error;
        expectValidPlan(r.plan, tables);
        expect(r.plan.shards).toHaveLength(strategy === 'singular' ? 1 : 0);
        expect(r.plan.mainTables).toHaveLength(strategy === 'monolithic' ? tables.length : 0);
      }),
      { numRuns: 200 },
    );
  });
});

describe('infeasible plans name the table, its size and the capacity', () => {
  it('a table larger than a shard, where every table must be in one place', () => {
    const r = planModel(
      spec(
        [
          { name: 'small', rows: 10, dim: 4 },
          { name: 'huge', rows: 10_000_000, dim: 64 },
        ],
        { strategy: 'singular', shardMemory: '1Gi', headroom: 10 },
      ),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.reason).toBe('Infeasible');
    expect(r.error.message).toBe(
      'table "huge" needs 2.4 GiB (2560000000 bytes: 10000000 rows x 64 x fp32) but one server holds at most 921.6 MiB (shardMemory 1Gi less 10% ' +
        'headroom); singular keeps every table in one place (load-balanced and net-specific split it by rows)',
    );
  });

  it('a row larger than a shard', () => {
    const r = planModel(spec([{ name: 'wide', rows: 4, dim: 4096 }], { strategy: 'load-balanced', shardMemory: '8Ki', headroom: 0 }));
    expect(!r.ok && r.error.message).toBe(
      'table "wide" needs 64.0 KiB (65536 bytes: 4 rows x 4096 x fp32) but one server holds at most 8.0 KiB (shardMemory 8Ki less 0% headroom), ' +
        'less than one row of it',
    );
  });

  it('singular when the tables together do not fit', () => {
    const tables = Array.from({ length: 4 }, (_, i) => ({ name: `t${i}`, rows: 1_000_000, dim: 64 }));
    const r = planModel(spec(tables, { strategy: 'singular', shardMemory: '512Mi', headroom: 0 }));
    expect(!r.ok && r.error.message).toBe(
      'singular: the 4 tables need 976.6 MiB but one sparse shard holds at most 512.0 MiB (shardMemory 512Mi less 0% ' +
        'headroom); use load-balanced or net-specific, or raise spec.sharding.shardMemory',
    );
  });

  it('load-balanced with too few shards says how many are needed', () => {
    const tables = Array.from({ length: 6 }, (_, i) => ({ name: `t${i}`, rows: 1_000_000, dim: 64 }));
    const r = planModel(spec(tables, { strategy: 'load-balanced', shards: 2, shardMemory: '512Mi', headroom: 0 }));
    expect(!r.ok && r.error.message).toMatch(
      /^load-balanced: 2 shards of 512.0 MiB .* cannot hold the 6 tables \(1.4 GiB in all\); at least 3 shards are needed$/,
    );
  });

  it('load-balanced without a shard count picks the fewest that fit (at least 2, at most one per table)', () => {
    const tables = Array.from({ length: 6 }, (_, i) => ({ name: `t${i}`, rows: 1_000_000, dim: 64 }));
    const r = planModel(spec(tables, { strategy: 'load-balanced', shardMemory: '512Mi', headroom: 0 }));
    expect(r.ok && r.plan.shards.length).toBe(3);
    const tiny = planModel(spec([{ name: 'a', rows: 10, dim: 4 }], { strategy: 'load-balanced' }));
    expect(tiny.ok && tiny.plan.shards.length).toBe(1);
  });

  it('duplicate names from tables and groups are an invalid model', () => {
    const s = specOf({ tables: [{ name: 't0', rows: 10, dim: 4 }] });
    s.model.tableGroups = [
      { namePrefix: 'x', count: 11, rows: 1, dim: 1, dtype: 'fp32', poolingFactor: 1, net: 'default' },
      { namePrefix: 'x1', count: 1, rows: 1, dim: 1, dtype: 'fp32', poolingFactor: 1, net: 'default' },
    ];
    const r = planModel(s);
    expect(!r.ok && r.error.reason).toBe('InvalidModel');
    expect(!r.ok && r.error.message).toContain('"x10" is declared twice');
  });
});

describe('plan hash', () => {
  it('changes when a table moves and not otherwise', () => {
    const tables = Array.from({ length: 8 }, (_, i) => ({ name: `t${i}`, rows: 1000 * (i + 1), dim: 16, poolingFactor: i + 1 }));
    const a = planModel(spec(tables, { strategy: 'load-balanced', shards: 2 }));
    const b = planModel(spec(tables, { strategy: 'load-balanced', shards: 2, headroom: 20 }));
    const c = planModel(spec(tables, { strategy: 'load-balanced', shards: 3 }));
    if (!a.ok || !b.ok || !c.ok) throw new Error('plans should be feasible');
    expect(a.plan.hash).toBe(b.plan.hash);
    expect(a.plan.hash).not.toBe(c.plan.hash);
    expect(a.plan.hash).toMatch(/^[0-9a-f]{10}$/);
  });
});

describe('row-wise split of tables larger than a shard', () => {
  const huge = { name: 'huge', rows: 10_000_000, dim: 64 }; // 2.4 GiB of fp32 rows, poolingFactor 1 by default
  const small = { name: 'small', rows: 10, dim: 4 };

  it('load-balanced splits the table into the fewest near-equal row ranges that fit, each placed like a table', () => {
    const r = planModel(spec([small, huge], { strategy: 'load-balanced', shards: 4, shardMemory: '1Gi', headroom: 10 }));
    if (!r.ok) throw r.error;
    expectValidPlan(r.plan, [small, huge]);
    const pieces = r.plan.shards.flatMap((s) => s.pieces ?? []);
    // 2.4 GiB at 921.6 MiB a shard: 3 pieces of 3,333,333 or 3,333,334 rows
    expect(pieces.map((p) => [p.piece, p.rowStart, p.rowEnd]).sort((a, b) => a[0]! - b[0]!)).toEqual([
      [0, 0, 3_333_333],
      [1, 3_333_333, 6_666_666],
      [2, 6_666_666, 10_000_000],
    ]);
    expect(r.plan.shards).toHaveLength(4);
    expect(r.plan.notes).toEqual(['table "huge" (2.4 GiB) is larger than a shard holds: split by rows into 3 pieces of at most 813.8 MiB']);
    // expected lookups follow the rows: a third of the table's pooling factor on each piece
    const loads = r.plan.shards.filter((s) => s.pieces).map((s) => s.lookupsPerSample);
    for (const l of loads) expect(l).toBeCloseTo(1 / 3, 3);
  });

  it('a table of exactly 4 shards of rows takes 4 shards, and the fewest-shards search finds them', () => {
    const rows = 4 * ((64 * 2 ** 20) / (16 * 4)); // 4 x 64 MiB of dim-16 fp32 rows
    const r = planModel(spec([{ name: 'big', rows, dim: 16 }], { strategy: 'load-balanced', shardMemory: '64Mi', headroom: 0 }));
    if (!r.ok) throw r.error;
    expect(r.plan.shards.map((s) => s.percentOfCapacity)).toEqual([100, 100, 100, 100]);
  });

  it('net-specific keeps each piece in its net', () => {
    const tables = [
      { ...huge, net: 'user' },
      { ...small, net: 'item' },
    ];
    const r = planModel(spec(tables, { strategy: 'net-specific', shardMemory: '1Gi', headroom: 10 }));
    if (!r.ok) throw r.error;
    expectValidPlan(r.plan, tables);
    expect(r.plan.shards.map((s) => [s.net, s.tables, (s.pieces ?? []).length])).toEqual([
      ['item', ['small'], 0],
      ['user', [], 1],
      ['user', [], 1],
      ['user', [], 1],
    ]);
  });

  it('the hash changes when the split does, and plans without splits keep their hashes', () => {
    const a = planModel(spec([small, huge], { strategy: 'load-balanced', shardMemory: '1Gi', headroom: 10 }));
    const b = planModel(spec([small, huge], { strategy: 'load-balanced', shardMemory: '1200Mi', headroom: 10 }));
    if (!a.ok || !b.ok) throw new Error('plans');
    expect(a.plan.shards.flatMap((s) => s.pieces ?? [])).toHaveLength(3);
    expect(b.plan.shards.flatMap((s) => s.pieces ?? [])).toHaveLength(3);
    expect(a.plan.hash).toBe(b.plan.hash); // the same pieces on the same shards
    const c = planModel(spec([small, huge], { strategy: 'load-balanced', shardMemory: '3Gi', headroom: 10 }));
    if (!c.ok) throw c.error;
    expect(c.plan.shards.some((s) => s.pieces)).toBe(false);
    expect(c.plan.hash).not.toBe(a.plan.hash);
  });
});

describe('strategy auto', () => {
  const users = Array.from({ length: 6 }, (_, i) => ({ name: `u${i}`, rows: 2_000_000, dim: 16, poolingFactor: 20, net: 'user' }));
  const items = Array.from({ length: 6 }, (_, i) => ({ name: `i${i}`, rows: 2_000_000, dim: 16, poolingFactor: 5, net: 'item' }));
  const auto = (shardMemory: string, tables: TableInput[] = [...users, ...items]) => planModel(spec(tables, { strategy: 'auto', shardMemory }));
  const explicit = (
    strategy: 'monolithic' | 'singular' | 'load-balanced' | 'net-specific',
    shardMemory: string,
    tables: TableInput[] = [...users, ...items],
  ) => {
    const r = planModel(spec(tables, { strategy, shardMemory }));
    if (!r.ok) throw r.error;
    return r.plan;
  };

  it('keeps the tables in the main where they fit it (no shard calls), and says what singular would cost', () => {
    const r = auto('2Gi');
    if (!r.ok) throw r.error;
    expect(r.plan.strategy).toBe('monolithic');
    expect(r.plan.auto).toBe(true);
    expect(r.plan.hash).toBe(explicit('monolithic', '2Gi').hash);
    expect(r.plan.notes[0]).toBe(
      'auto chose monolithic: per 64-sample query 0 shard calls, 0 B moved, 0.12 ms CPU, 0.12 ms critical path; ' +
        'runner-up singular (1 shard): 1 shard call, 85.5 KiB moved, 1.07 ms CPU, 0.52 ms critical path',
    );
  });

  it('where they do not fit one server: the cheapest of the strategies that hold them, the same plan as asking for it', () => {
    const r = auto('300Mi');
    if (!r.ok) throw r.error;
    const options = (['load-balanced', 'net-specific'] as const).map((s) => ({ s, plan: explicit(s, '300Mi') }));
    const costs = options.map((o) => ({ ...o, cost: planCost(o.plan) }));
    const best = costs.reduce((a, b) => (cheaper(b.cost, a.cost) ? b : a));
    expect(r.plan.strategy).toBe(best.s);
    expect(r.plan.shards).toEqual(best.plan.shards);
    expect(r.plan.hash).toBe(best.plan.hash);
    expect(r.plan.notes[0]).toMatch(
      /^auto chose (load-balanced|net-specific) \(6 shards\): per 64-sample query 6 shard calls, .*; runner-up (net-specific|load-balanced) \(\d+ shards\): /,
    );
  });

  it('fewer shard calls win: a net that fills few shards beats spreading every table over more', () => {
    // 92.2 KB shards: load-balanced over 2 (a + c, b) against net-specific over 3 (a and b do not fit together, then c)
    const tables = [
      { name: 'a', rows: 800, dim: 16, net: 'user' },
      { name: 'b', rows: 800, dim: 16, net: 'user' },
      { name: 'c', rows: 600, dim: 16, net: 'item' },
    ];
    const r = auto('100Ki', tables);
    if (!r.ok) throw r.error;
    expect([r.plan.strategy, r.plan.shards.length]).toEqual(['load-balanced', 2]);
    expect(r.plan.notes[0]).toContain('runner-up net-specific (3 shards)');
  });

  it('splits a table larger than a shard, and says why no strategy holds a row larger than one', () => {
    const split = auto('70Mi', [{ name: 'big', rows: 4_000_000, dim: 16, poolingFactor: 20 }]);
    if (!split.ok) throw split.error;
    expect(split.plan.strategy).toBe('load-balanced');
    expect(split.plan.shards.flatMap((s) => s.pieces ?? [])).toHaveLength(4);
    expect(split.plan.notes).toContain('table "big" (244.1 MiB) is larger than a shard holds: split by rows into 4 pieces of at most 61.0 MiB');
    const none = auto('8Ki', [{ name: 'wide', rows: 4, dim: 4096 }]);
    expect(!none.ok && [none.error.reason, none.error.message]).toEqual([
      'Infeasible',
      'auto: no strategy holds the tables; table "wide" needs 64.0 KiB (65536 bytes: 4 rows x 4096 x fp32) but one server holds at most 7.2 KiB ' +
        '(shardMemory 8Ki less 10% headroom), less than one row of it',
    ]);
  });
});
