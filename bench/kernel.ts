// Benchmark 3, sparse lookups against the physical limit: pooled lookups per second on one core of the sparse
// shard's kernel (WebAssembly SIMD, and the plain JavaScript loop it replaced) against C kernels compiled here
// with gcc -O3 (the textbook loop and our loop order; the faster is the reference) and PyTorch's embedding_bag
// (what a user would pick instead, bench/torch/dlrm.py) over the same table and
// indices files, and the bytes those lookups read against the machine's
// measured memory read bandwidth. Two tables: one that fits in cache (compute-bound) and one far larger
// (memory-bound, like production tables).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { poolInto } from '../shard-server/inference/embeddings.js';
import { createArena } from '../shard-server/kernels/pool.js';
import type { EmbeddingTable } from '../shard-server/model/load.js';
import { log, round } from './lib.js';
import { torchKernel } from './torch.js';

export interface KernelRow {
  table: string;
  rows: number;
  dim: number;
  tableMiB: number;
  wasm: number;
  js: number;
  /** The faster of the two C kernels, and each of them. */
  c: number;
  cNaive: number;
  cBlocked: number;
  wasmVsC: number;
  jsVsC: number;
  /** PyTorch's embedding_bag (sum, one thread, bench/torch/dlrm.py) over the same files, and ours over it. */
  torch: number;
  wasmVsTorch: number;
  /** GB/s the WebAssembly kernel reads, and that as a share of the measured bandwidth. */
  wasmGBps: number;
  wasmVsBandwidth: number;
}

export interface KernelResult {
  compiler: string;
  flags: string;
  batch: number;
  pooling: number;
  readGBps: number;
  torch: string;
  rows: KernelRow[];
}

export function timeKernel(table: EmbeddingTable, offsets: Uint32Array, indices: Uint32Array, batch: number, seconds: number): number {
  const out = new Float32Array(batch * table.meta.dim);
  poolInto(table, offsets, indices, batch, 'sum', out); // warm-up (JIT, caches)
  let calls = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    poolInto(table, offsets, indices, batch, 'sum', out);
    calls++;
    t = performance.now();
  } while (t - t0 < seconds * 1000);
  return (calls * indices.length) / ((t - t0) / 1000);
}

const BATCH = 256;
const POOLING = 80;

/** A table of random rows and BATCH samples of POOLING random indices each, seeded (the same for every kernel). */
function workload(rows: number, dim: number) {
  const data = new Float32Array(rows * dim);
  let x = 12345;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    data[i] = (x >>> 8) / 2 ** 24 - 0.5;
  }
  const indices = new Uint32Array(BATCH * POOLING);
  for (let i = 0; i < indices.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    indices[i] = (x >>> 0) % rows;
  }
  const offsets = Uint32Array.from({ length: BATCH + 1 }, (_, b) => Math.floor((indices.length * b) / BATCH));
  return { data, indices, offsets };
}

/** One table size: the WebAssembly kernel and the JavaScript loop in process, both C kernels over the same files. */
function measureSize(
  size: { label: string; rows: number },
  dim: number,
  seconds: number,
  dir: string,
  poolBin: string,
  readGBps: number,
  python: string,
): KernelRow & { torchVersion: string } {
  const { rows } = size;
  const { data, indices, offsets } = workload(rows, dim);
  const tableFile = join(dir, 'table.bin');
  const indexFile = join(dir, 'indices.bin');
  writeFileSync(tableFile, new Uint8Array(data.buffer));
  const offsetFile = join(dir, 'offsets.bin');
  writeFileSync(indexFile, new Uint8Array(indices.buffer));
  writeFileSync(offsetFile, new Uint8Array(offsets.buffer));
  const meta = { name: 't', rows, dim, dtype: 'fp32' as const, net: 'n', poolingFactor: POOLING, file: '', sha256: '', bytes: data.byteLength };
  const arena = createArena(data.byteLength, 1)!;
  const view = new Float32Array(arena.memory.buffer, arena.tableOffset, data.length);
  view.set(data);
  const wasm = timeKernel({ index: 0, meta, data: view, arena }, offsets, indices, BATCH, seconds);
  const js = timeKernel({ index: 0, meta, data }, offsets, indices, BATCH, seconds);
  const runC = (variant: string) => {
    const out = execFileSync(poolBin, [variant, tableFile, String(rows), String(dim), indexFile, String(BATCH), String(seconds)]).toString();
    return (JSON.parse(out) as { lookupsPerSecond: number }).lookupsPerSecond;
  };
  const cNaive = runC('naive');
  const cBlocked = runC('blocked');
  const c = Math.max(cNaive, cBlocked);
  const t = torchKernel(python, { tableFile, rows, dim, indicesFile: indexFile, offsetsFile: offsetFile, seconds });
  const wasmGBps = (wasm * dim * 4) / 1e9;
  return {
    table: size.label,
    rows,
    dim,
    tableMiB: round(data.byteLength / 2 ** 20, 1),
    wasm: Math.round(wasm),
    js: Math.round(js),
    c: Math.round(c),
    cNaive: Math.round(cNaive),
    cBlocked: Math.round(cBlocked),
    wasmVsC: round(wasm / c, 3),
    jsVsC: round(js / c, 3),
    torch: Math.round(t.lookupsPerSecond),
    wasmVsTorch: round(wasm / t.lookupsPerSecond, 3),
    torchVersion: t.torch,
    wasmGBps: round(wasmGBps, 2),
    wasmVsBandwidth: round(wasmGBps / readGBps, 3),
  };
}

export async function benchKernel(o: {
  sizes: { label: string; rows: number }[];
  dim: number;
  seconds: number;
  bandwidthMiB: number;
  /** The PyTorch venv's python (torchPython()). */
  python: string;
}): Promise<KernelResult> {
  const dir = mkdtempSync(join(tmpdir(), 'recshard-kernel-'));
  const flags = '-O3';
  try {
    const exe = (name: string) => {
      const bin = join(dir, name);
      execFileSync('gcc', [flags, '-o', bin, new URL(`./c/${name}.c`, import.meta.url).pathname]);
      return bin;
    };
    const poolBin = exe('pool');
    const compiler = execFileSync('gcc', ['--version']).toString().split('\n')[0]!;
    const readGBps = (JSON.parse(execFileSync(exe('membw'), [String(o.bandwidthMiB), '5']).toString()) as { readGBps: number }).readGBps;
    log(`kernel: memory read bandwidth ${readGBps} GB/s (${compiler} ${flags})`);
    const rows: KernelRow[] = [];
    let torch = '';
    for (const size of o.sizes) {
      const { torchVersion, ...row } = measureSize(size, o.dim, o.seconds, dir, poolBin, readGBps, o.python);
      torch = torchVersion;
      const M = (v: number) => (v / 1e6).toFixed(1);
      log(
        `  ${size.label} (${row.tableMiB} MiB): wasm ${M(row.wasm)}M, js ${M(row.js)}M, C ${M(row.cNaive)}M naive / ${M(row.cBlocked)}M blocked ` +
          `lookups/s; torch embedding_bag ${M(row.torch)}M; wasm/C ${row.wasmVsC}, wasm/torch ${row.wasmVsTorch}`,
      );
      rows.push(row);
    }
    return { compiler, flags, batch: BATCH, pooling: POOLING, readGBps, torch, rows };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
