import { describe, expect, it } from 'vitest';
import { MAX_QUERY_SIZE, parseSizeSpec, sizeSampler, uniform, zipfSampler } from '../../../loadgen/distributions.js';

const draw = (f: () => number, n: number) => Array.from({ length: n }, f);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;
const noFile = () => {
  throw new Error('no file');
};

describe('query sizes', () => {
  it('fixed is constant', () => {
    expect(new Set(draw(sizeSampler(parseSizeSpec('fixed:32', noFile), 1), 100))).toEqual(new Set([32]));
  });

  it('normal has the requested mean and spread, clamped to at least 1', () => {
    const xs = draw(sizeSampler(parseSizeSpec('normal:200,40', noFile), 2), 20_000);
    expect(mean(xs)).toBeGreaterThan(195);
    expect(mean(xs)).toBeLessThan(205);
    expect(quantile(xs, 0.84) - quantile(xs, 0.5)).toBeGreaterThan(35);
    expect(Math.min(...draw(sizeSampler(parseSizeSpec('normal:2,10', noFile), 2), 1000))).toBe(1);
  });

  it('lognormal has median exp(mu)', () => {
    const xs = draw(sizeSampler(parseSizeSpec(`lognormal:${Math.log(100)},0.5`, noFile), 3), 20_000);
    expect(quantile(xs, 0.5)).toBeGreaterThan(95);
    expect(quantile(xs, 0.5)).toBeLessThan(105);
  });

  it('production is heavy-tailed and capped at 1,000', () => {
    const xs = draw(sizeSampler(parseSizeSpec('production', noFile), 4), 50_000);
    expect(xs.reduce((a, b) => Math.max(a, b))).toBe(MAX_QUERY_SIZE);
    expect(quantile(xs, 0.5)).toBeGreaterThan(50);
    expect(quantile(xs, 0.5)).toBeLessThan(70);
    expect(quantile(xs, 0.99) / quantile(xs, 0.5)).toBeGreaterThan(8);
  });

  it('a file of sizes is replayed in order', () => {
    const f = sizeSampler(
      parseSizeSpec('file:/sizes', () => '3\n7\n 12\n'),
      5,
    );
    expect(draw(f, 7)).toEqual([3, 7, 12, 3, 7, 12, 3]);
  });

  it.each([['fixed:0'], ['normal:1'], ['lognormal:x,1'], ['pareto:2'], ['file:/x']])('%s is rejected with the expected form', (spec) => {
    expect(() => parseSizeSpec(spec, () => 'a b')).toThrow(/--sizes/);
  });

  it('the same seed gives the same sizes', () => {
    expect(draw(sizeSampler({ kind: 'production' }, 9), 50)).toEqual(draw(sizeSampler({ kind: 'production' }, 9), 50));
  });
});

describe('rows', () => {
  it('uniform rows cover the table evenly', () => {
    const xs = draw(zipfSampler(10, 0, uniform(1)), 50_000);
    for (let r = 0; r < 10; r++) expect(xs.filter((x) => x === r).length).toBeGreaterThan(4500);
  });

  it('Zipf(s) makes rank k about k^s times rarer than rank 1, within range', () => {
    const n = 1_000_000;
    const xs = draw(zipfSampler(n, 1.1, uniform(2)), 200_000);
    expect(xs.reduce((a, b) => Math.max(a, b))).toBeLessThan(n);
    expect(xs.reduce((a, b) => Math.min(a, b))).toBe(0);
    const count = (r: number) => xs.filter((x) => x === r).length;
    const ratio = count(0) / count(9);
    expect(ratio).toBeGreaterThan(10 ** 1.1 * 0.8);
    expect(ratio).toBeLessThan(10 ** 1.1 * 1.25);
  });

  it('uniform(seed) does not start at an extreme for small seeds', () => {
    for (let seed = 0; seed < 50; seed++) {
      const u = uniform(seed);
      const first = draw(u, 4);
      expect(first.some((x) => x > 0.001 && x < 0.999)).toBe(true);
    }
  });
});
