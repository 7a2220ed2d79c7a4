import { describe, expect, it } from 'vitest';
import { evaluate, Memories, type ComponentView } from '../../../operator/autoscaling/evaluate.js';
import { defaultPolicy } from '../../../operator/autoscaling/policy.js';
import type { LatencyReading, PodRates } from '../../../operator/signals/latency.js';

const LE = [0.025, 0.05, 0.1, 0.2, 0.4, Infinity];
/** Bucket rates of `rate` requests/s all taking about `ms`. */
const at = (ms: number, rate: number): PodRates => ({ le: LE, rate: LE.map((le) => (le * 1000 >= ms ? rate : 0)) });
const NOW = 1_000_000;
const pod = (name: string, warm = true) => ({ name, ready: true, readySinceMs: warm ? 0 : NOW - 1000 });
const components: ComponentView[] = [
  { name: 'm-main', role: 'main', replicas: 2, pods: [pod('m-main-a'), pod('m-main-b')] },
  { name: 'm-sparse-0', role: 'sparse', shard: 0, replicas: 2, pods: [pod('m-sparse-0-a'), pod('m-sparse-0-b')] },
  { name: 'm-sparse-1', role: 'sparse', shard: 1, replicas: 2, pods: [pod('m-sparse-1-a'), pod('m-sparse-1-b')] },
];
const readings = (mainMs: number, call0Ms: number, call1Ms: number) => ({
  main: new Map([
    ['m-main-a', at(mainMs, 20)],
    ['m-main-b', at(mainMs, 20)],
  ]) as LatencyReading,
  shardCalls: new Map([
    ['m-main-a/0', at(call0Ms, 20)],
    ['m-main-b/0', at(call0Ms, 20)],
    ['m-main-a/1', at(call1Ms, 20)],
    ['m-main-b/1', at(call1Ms, 20)],
  ]) as LatencyReading,
  shards: new Map<number, LatencyReading | undefined>([
    [
      0,
      new Map([
        ['m-sparse-0-a', at(call0Ms, 20)],
        ['m-sparse-0-b', at(call0Ms, 20)],
      ]),
    ],
    [
      1,
      new Map([
        ['m-sparse-1-a', at(call1Ms, 20)],
        ['m-sparse-1-b', at(call1Ms, 20)],
      ]),
    ],
  ]),
});
const policy = defaultPolicy(100, 10);

describe('one autoscaling evaluation of a model', () => {
  it("on the critical path, only the shard whose calls dominate the main's tail adds pods", () => {
    const e = evaluate(policy, components, readings(380, 30, 350), new Memories(), 'ns/m/', NOW);
    expect(e.critical).toBe('m-sparse-1');
    expect(e.mainLatencyMs).toBeGreaterThan(200);
    const by = Object.fromEntries(e.components.map((c) => [c.name, c]));
    expect(by['m-sparse-1']).toMatchObject({ reason: 'LatencyAboveTarget', current: 2, desired: 4 });
    expect(by['m-main']).toMatchObject({ reason: 'OtherComponentCritical', desired: 2 });
    expect(by['m-sparse-0']).toMatchObject({ reason: 'OtherComponentCritical', desired: 2 });
    expect(by['m-sparse-0']!.rate).toBe(40);
  });

  it('the main is critical when its own time is the larger part', () => {
    const e = evaluate(policy, components, readings(380, 30, 40), new Memories(), 'ns/m/', NOW);
    expect(e.critical).toBe('m-main');
    expect(e.components.find((c) => c.name === 'm-main')!.desired).toBe(4);
  });

  it('with scaleOn all, every component adds pods', () => {
    const e = evaluate({ ...policy, scaleOn: 'all' }, components, readings(380, 30, 350), new Memories(), 'ns/m/', NOW);
    expect(e.components.map((c) => c.desired)).toEqual([4, 4, 4]);
  });

  it('leaves pods in warm-up out of the latency and holds when nothing is left', () => {
    const cold = components.map((c) => (c.role === 'main' ? { ...c, pods: [pod('m-main-a', false), pod('m-main-b', false)] } : c));
    const e = evaluate(policy, cold, readings(380, 30, 350), new Memories(), 'ns/m/', NOW);
    expect(e.metricsMissing).toBe(true);
    expect(e.components.every((c) => c.reason === 'MetricsUnavailable' && c.desired === 2)).toBe(true);
  });

  it('holds every component when the source gave nothing', () => {
    const e = evaluate(policy, components, { shards: new Map() }, new Memories(), 'ns/m/', NOW);
    expect(e).toMatchObject({ metricsMissing: true });
    expect(e.components.map((c) => c.desired)).toEqual([2, 2, 2]);
  });
});

describe('what the law learned', () => {
  it("is kept per component and plan: a new plan's pods are learned afresh, and gone components are forgotten", () => {
    const memories = new Memories();
    const planned = components.map((c) => ({ ...c, planHash: 'p1' }));
    evaluate(policy, planned, readings(380, 30, 350), memories, 'ns/m/', NOW); // shard 1 misses at 20/s per pod
    expect(memories.get('ns/m/m-sparse-1@p1').failing.length).toBe(1);
    evaluate(policy, planned.map((c) => ({ ...c, planHash: 'p2' })).slice(0, 2), readings(380, 30, 350), memories, 'ns/m/', NOW + 15_000);
    expect(memories.get('ns/m/m-sparse-1@p1').failing).toEqual([]); // dropped when p2 replaced it, so a fresh one now
  });
});
