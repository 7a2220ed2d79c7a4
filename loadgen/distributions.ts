// Seeded samplers for the DeepRecInfra workload: query sizes (candidate items per query) and row indices.
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/** Uniform [0, 1) from a seeded xoroshiro128+ stream. */
export function uniform(seed: number): () => number {
  // Small seeds leave xoroshiro's state nearly empty and its first outputs extreme: mix the seed first
  // (a murmur3 finaliser) and drop a few outputs.
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  const g = xoroshiro128plus(h | 0);
  for (let i = 0; i < 16; i++) g.next();
  return () => (g.next() >>> 0) / 2 ** 32;
}

/** Standard normal by Box-Muller. */
export function gaussian(u: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

export const MAX_QUERY_SIZE = 1000;

export type SizeSpec =
  | { kind: 'fixed'; size: number }
  | { kind: 'normal'; mean: number; sd: number }
  | { kind: 'lognormal'; mu: number; sigma: number }
  | { kind: 'production' }
  | { kind: 'file'; sizes: number[] };

/**
 * `production` is heavy-tailed like DeepRecSys's production query sizes: lognormal with median 60 and
 * sigma 1.1, capped at 1,000 (mean about 105; 1% of queries above 700).
 */
export const PRODUCTION = { mu: Math.log(60), sigma: 1.1 };

export function parseSizeSpec(text: string, readFile: (path: string) => string): SizeSpec {
  const [kind, arg = ''] = text.split(/:(.*)/s) as [string, string?];
  const nums = arg.split(',').filter(Boolean).map(Number);
  const bad = (why: string) => new Error(`--sizes ${JSON.stringify(text)}: ${why}`);
  switch (kind) {
    case 'fixed':
      if (nums.length !== 1 || !Number.isInteger(nums[0]) || nums[0]! < 1) throw bad('expected fixed:N with N >= 1');
      return { kind, size: nums[0]! };
    case 'normal':
      if (nums.length !== 2 || !(nums[0]! > 0) || !(nums[1]! >= 0)) throw bad('expected normal:MEAN,SD');
      return { kind, mean: nums[0]!, sd: nums[1]! };
    case 'lognormal':
      if (nums.length !== 2 || !Number.isFinite(nums[0]) || !(nums[1]! >= 0)) throw bad('expected lognormal:MU,SIGMA (of the log of the size)');
      return { kind, mu: nums[0]!, sigma: nums[1]! };
    case 'production':
      return { kind };
    case 'file': {
      const sizes = readFile(arg).split(/\s+/).filter(Boolean).map(Number);
      if (!sizes.length || sizes.some((s) => !Number.isInteger(s) || s < 1)) throw bad('the file must hold positive integer sizes, one per line');
      return { kind, sizes };
    }
    default:
      throw bad('expected fixed:N, normal:MEAN,SD, lognormal:MU,SIGMA, production or file:PATH');
  }
}

/** Query sizes, clamped to [1, cap]. A file of sizes is replayed in order. */
export function sizeSampler(spec: SizeSpec, seed: number, cap = MAX_QUERY_SIZE): () => number {
  const u = uniform(seed);
  const z = gaussian(u);
  const clamp = (v: number) => Math.min(cap, Math.max(1, Math.round(v)));
  switch (spec.kind) {
    case 'fixed':
      return () => clamp(spec.size);
    case 'normal':
      return () => clamp(spec.mean + spec.sd * z());
    case 'lognormal':
      return () => clamp(Math.exp(spec.mu + spec.sigma * z()));
    case 'production':
      return () => clamp(Math.exp(PRODUCTION.mu + PRODUCTION.sigma * z()));
    case 'file': {
      let i = 0;
      return () => clamp(spec.sizes[i++ % spec.sizes.length]!);
    }
  }
}

/**
 * Zipf(s) over ranks 1..n by rejection-inversion (Hörmann and Derflinger 1996): O(1) per draw, no tables,
 * so it works for tables of millions of rows. Returns a 0-based row (rank 1 is row 0, the hottest).
 */
export function zipfSampler(n: number, s: number, u: () => number): () => number {
  if (s <= 0) return () => Math.floor(u() * n);
  const oneMinusS = 1 - s;
  const h = (x: number) => (Math.abs(oneMinusS) < 1e-9 ? Math.log(x) : (x ** oneMinusS - 1) / oneMinusS);
  const hInv = (x: number) => (Math.abs(oneMinusS) < 1e-9 ? Math.exp(x) : (1 + x * oneMinusS) ** (1 / oneMinusS));
  const hX1 = h(1.5) - 1;
  const hN = h(n + 0.5);
  const threshold = 2 - hInv(h(2.5) - 2 ** -s);
  return () => {
    for (;;) {
      const ur = hN + u() * (hX1 - hN);
      const x = hInv(ur);
      const k = Math.min(n, Math.max(1, Math.round(x)));
      if (k - x <= threshold || ur >= h(k + 0.5) - k ** -s) return k - 1;
    }
  };
}
