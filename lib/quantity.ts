// Kubernetes resource quantities (the subset the RecModel schema allows) and human-readable byte sizes.
const SUFFIX: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
};

/** Bytes of a quantity such as 16Gi, 1.5G or 1048576. Throws on anything else. */
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/.exec(q.trim());
  if (!m) throw new Error(`invalid quantity ${JSON.stringify(q)}`);
  return Math.floor(Number(m[1]) * SUFFIX[m[2] ?? '']!);
}

/** Cores of a CPU quantity such as 2, 1.5 or 500m. Throws on anything else. */
export function parseCpu(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^([0-9]+(?:\.[0-9]+)?)(m)?$/.exec(q.trim());
  if (!m) throw new Error(`invalid CPU quantity ${JSON.stringify(q)}`);
  return Number(m[1]) / (m[2] ? 1000 : 1);
}

const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9 };

/** The value of a decimal quantity such as 150m, 2500u or 1.5 (metric values, e.g. an HPA's current latency in seconds). */
export function parseDecimal(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^(-?[0-9]+(?:\.[0-9]+)?)(n|u|m|k|M|G)?$/.exec(q.trim());
  if (!m) throw new Error(`invalid quantity ${JSON.stringify(q)}`);
  return Number(m[1]) * DECIMAL[m[2] ?? '']!;
}

/** 1536 -> "1.5 KiB": binary units, one decimal, for messages and tables. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Bytes as a quantity the API server accepts, rounded up to whole MiB (e.g. for memory requests). */
export function toMiQuantity(bytes: number): string {
  return `${Math.ceil(bytes / 2 ** 20)}Mi`;
}
