// The work one model may ask for is bounded and the bounds are said: shard counts past --max-shards and plans
// too large for their ConfigMap are refused before anything is applied; large models are planned in a thread
// with the same result as inline.
import { describe, expect, it } from 'vitest';
import type { RecModel, RecModelSpec } from '../../../operator/api/v1alpha1/index.js';
import { DEFAULT_BUILDER_CONFIG } from '../../../operator/builders/config.js';
import { prepareNow } from '../../../operator/controller/reconcile/prepare.js';
import { Planner, tableCount } from '../../../operator/planner/offload.js';
import { planModel } from '../../../operator/planner/plan.js';
import { specOf } from '../fixtures.js';

/** count tables in groups of 1,024 (the schema's most per group), each `bytes` big, pooled once. */
function groups(count: number, rows: number, net = (_g: number) => 'default'): NonNullable<RecModelSpec['model']['tableGroups']> {
  return Array.from({ length: Math.ceil(count / 1024) }, (_, g) => ({
    namePrefix: `g${g}-`,
    count: Math.min(1024, count - g * 1024),
    rows,
    dim: 16,
    net: net(g),
  }));
}
const modelWith = (tableGroups: ReturnType<typeof groups>) => ({
  architecture: 'custom' as const,
  denseFeatures: 4,
  bottomMLP: [8],
  topMLP: [4, 1],
  tableGroups,
});
const recModel = (spec: RecModelSpec): RecModel => ({
  apiVersion: 'recshard.io/v1alpha1',
  kind: 'RecModel',
  metadata: { name: 'big', namespace: 'ns', uid: 'u', generation: 1 },
  spec,
});

describe('shard bounds', () => {
  it('net-specific that needs more shards than --max-shards is PlanTooLarge, with the numbers', () => {
    // 4,096 tables of 64 KiB on shards holding 1 MiB less headroom: 14 per shard, 293 shards
    const s = specOf({ model: modelWith(groups(4096, 1024)), sharding: { strategy: 'net-specific', shardMemory: '1Mi', headroom: 10 } });
    const r = planModel(s, { maxShards: 100 });
    expect(!r.ok && r.error.reason).toBe('PlanTooLarge');
    expect(!r.ok && r.error.message).toMatch(
      /^net-specific: the 4096 tables \(256.0 MiB\) need 293 shards at 921.6 KiB .*at most 100 \(the operator's --max-shards\)/,
    );
    expect(planModel(s, { maxShards: 1024 }).ok).toBe(true);
  });

  it('load-balanced without a count finds the fewest shards that fit past the first few counts, up to the bound', () => {
    const s = specOf({ model: modelWith(groups(4096, 1024)), sharding: { strategy: 'load-balanced', shardMemory: '1Mi', headroom: 10 } });
    const r = planModel(s);
    expect(r.ok && r.plan.shards.length).toBe(293);
    const refused = planModel(s, { maxShards: 200 });
    expect(!refused.ok && refused.error.reason).toBe('PlanTooLarge');
    expect(!refused.ok && refused.error.message).toContain('no shard count up to 200');
  });

  it('a plan too large for its ConfigMap is refused before anything is built to apply, with its size', () => {
    // 65,536 tables on 1,024 shards fit under 1 MiB only because the plan is then written compact; with names
    // four times as long they do not
    const long = groups(65536, 10).map((g) => ({ ...g, namePrefix: `${'x'.repeat(40)}-${g.namePrefix}` }));
    const p = prepareNow(recModel({ model: modelWith(long), sharding: { strategy: 'load-balanced', shards: 1024 } }), DEFAULT_BUILDER_CONFIG);
    expect(p.ok).toBe(false);
    expect(!p.ok && p.outcome).toMatchObject({ reason: 'PlanTooLarge' });
    expect(!p.ok && p.outcome.message).toMatch(/^the plan of 65536 tables on 1024 shards is 3\.\d MiB as its ConfigMap, but a ConfigMap holds at most 1.0 MiB/);
    const fits = prepareNow(recModel({ model: modelWith(groups(65536, 10)), sharding: { strategy: 'load-balanced', shards: 1024 } }), DEFAULT_BUILDER_CONFIG);
    expect(fits.ok).toBe(true);
  }, 60_000);
});

describe('planning in a thread', () => {
  it('gives what planning inline gives, plans and refusals alike; small models stay inline', async () => {
    const planner = new Planner({ maxShards: 100 }, 1024);
    try {
      const big = specOf({ model: modelWith(groups(2048, 1024, (g) => `n${g}`)), sharding: { strategy: 'net-specific', shardMemory: '4Mi' } });
      expect(tableCount(big.model)).toBe(2048);
      expect(await planner.plan(big)).toEqual(planModel(big, { maxShards: 100 }));
      const tooMany = specOf({ model: modelWith(groups(4096, 1024)), sharding: { strategy: 'net-specific', shardMemory: '1Mi' } });
      const refused = await planner.plan(tooMany);
      expect(!refused.ok && [refused.error.name, refused.error.reason]).toEqual(['PlanError', 'PlanTooLarge']);
      const small = specOf({});
      expect(await planner.plan(small)).toEqual(planModel(small));
    } finally {
      await planner.close();
    }
  });
});
