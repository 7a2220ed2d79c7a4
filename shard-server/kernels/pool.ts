// The WebAssembly SIMD pooling kernel (pool.wat) and the memory it works in. An arena is a shared
// WebAssembly.Memory laid out as [scratch of slot 0 | scratch of slot 1 | ... | table rows]: the table is loaded
// once and every thread (the event loop is slot 0, worker i is slot i + 1) runs the kernel over the same rows
// through its own instance, copying a chunk of indices into its scratch and the pooled rows out of it.
import { readFileSync } from 'node:fs';
import { int8Stride, int8Value, rowBytes as rowBytesOf } from '../../contracts/model-format.js';
import { builtSibling } from '../../lib/paths.js';

export interface Arena {
  /** What the rows are: fp32 values, or row-wise int8 (contracts/model-format.ts). */
  kind: 'fp32' | 'int8';
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  /** Byte offset of the table rows. */
  tableOffset: number;
  /** Bytes of the table rows. */
  tableBytes: number;
  slots: number;
}

const PAGE = 65536;
const MAX_PAGES = 65536; // wasm32: 4 GiB per memory
const SCRATCH = 1 << 20;
const OFFS_BYTES = 16 << 10; // up to 4095 samples per chunk
const IDX_BYTES = 512 << 10; // up to 131072 indices per chunk
const OUT_BYTES = SCRATCH - OFFS_BYTES - IDX_BYTES;
// Tables up to this size are streamed into the cache before a call whose lookups would read at least as many bytes
// as the table has (a small table's rows are mostly evicted between requests, and a sequential read costs far less
// per line than the same lines missed at random: DLRM-RMC1 at demo scale, 8 tables of 512 KiB, pools a batch of 64
// in 0.45 ms instead of 1.2 from a cold cache, at 2-5 us more per table when the table was already in L2). Larger
// tables would not stay in a core's cache (1 MiB of L2 here) until the lookups come; at 4 MiB streaming measured
// slower than touching the rows.
const STREAM_MAX_BYTES = 1 << 20;

let compiled: WebAssembly.Module | undefined;
function kernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(readFileSync(builtSibling(import.meta.url, 'pool.wasm')));
  return compiled;
}

/** An arena for an fp32 or int8 table of `tableBytes`, or undefined when it would not fit in 4 GiB (then JS pools). */
export function createArena(tableBytes: number, slots: number, kind: Arena['kind'] = 'fp32'): Arena | undefined {
  const tableOffset = slots * SCRATCH;
  const pages = Math.ceil((tableOffset + tableBytes) / PAGE);
  if (pages > MAX_PAGES) return undefined;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  return { kind, memory, module: kernelModule(), tableOffset, tableBytes, slots };
}

let threadSlot = 0;
/** Which scratch area this thread uses (worker threads call this once at start). */
export function setThreadSlot(slot: number): void {
  threadSlot = slot;
}

class Pooler {
  private readonly pool: (table: number, dim: number, offs: number, idx: number, batch: number, out: number, touch: number) => void;
  private readonly stream: (start: number, bytes: number) => void;
  private readonly u32: Uint32Array;
  private readonly f32: Float32Array;
  private readonly offs: number;
  private readonly idx: number;
  private readonly out: number;

  constructor(
    private readonly arena: Arena,
    slot: number,
  ) {
    if (slot >= arena.slots) throw new Error(`kernel slot ${slot} outside the arena's ${arena.slots} slots`);
    const instance = new WebAssembly.Instance(arena.module, { env: { memory: arena.memory } });
    // the int8 kernel takes no touch argument (its rows are a quarter of the size: most fit one or two lines)
    this.pool = (arena.kind === 'int8' ? instance.exports.pool_i8 : instance.exports.pool) as Pooler['pool'];
    this.stream = instance.exports.stream as Pooler['stream'];
    this.u32 = new Uint32Array(arena.memory.buffer);
    this.f32 = new Float32Array(arena.memory.buffer);
    this.offs = slot * SCRATCH;
    this.idx = this.offs + OFFS_BYTES;
    this.out = this.idx + IDX_BYTES;
  }

  /** Sums rows into out[outOffset + b * dim ..], in chunks of samples that fit the scratch area. */
  run(dim: number, offsets: Uint32Array, indices: Uint32Array, batch: number, out: Float32Array, outOffset: number): void {
    if (dim * 4 > OUT_BYTES) {
      // a row wider than the scratch's output area (the CRD allows 4096; an artifact served without a spec may say more)
      for (let b = 0; b < batch; b++) this.poolOne(dim, indices.subarray(offsets[b]!, offsets[b + 1]!), out, outOffset + b * dim);
      return;
    }
    const maxSamples = Math.max(1, Math.min(OFFS_BYTES / 4 - 1, Math.floor(OUT_BYTES / (dim * 4))));
    const maxIdx = IDX_BYTES / 4;
    // Either the whole table is read into the cache first, or the rows are likely to miss it, and then the kernel
    // touches all of each row's lines in its first pass over them.
    const { tableOffset, tableBytes } = this.arena;
    const rowBytes = rowBytesOf(dim, this.arena.kind);
    const streamed = tableBytes <= STREAM_MAX_BYTES && (offsets[batch]! - offsets[0]!) * rowBytes >= tableBytes;
    if (streamed) this.stream(tableOffset, tableBytes);
    for (let b0 = 0; b0 < batch;) {
      let b1 = b0 + 1;
      while (b1 < batch && b1 - b0 < maxSamples && offsets[b1 + 1]! - offsets[b0]! <= maxIdx) b1++;
      const first = offsets[b0]!;
      const count = offsets[b1]! - first;
      if (count > maxIdx) {
        // one sample with more indices than the scratch holds (the servers' limits refuse these): pooled in JS
        this.poolOne(dim, indices.subarray(first, first + count), out, outOffset + b0 * dim);
        b0 = b1;
        continue;
      }
      const o = this.offs >> 2;
      for (let b = b0; b <= b1; b++) this.u32[o + b - b0] = offsets[b]! - first;
      this.u32.set(indices.subarray(first, first + count), this.idx >> 2);
      this.pool(tableOffset, dim, this.offs, this.idx, b1 - b0, this.out, streamed ? 0 : 1);
      const n = (b1 - b0) * dim;
      out.set(this.f32.subarray(this.out >> 2, (this.out >> 2) + n), outOffset + b0 * dim);
      b0 = b1;
    }
  }

  private poolOne(dim: number, indices: Uint32Array, out: Float32Array, o: number): void {
    out.fill(0, o, o + dim);
    if (this.arena.kind === 'int8') {
      const stride = int8Stride(dim);
      const u8 = new Uint8Array(this.arena.memory.buffer);
      for (const i of indices) {
        const row = this.arena.tableOffset + i * (stride + 8);
        const [scale, bias] = [this.f32[(row + stride) >> 2]!, this.f32[(row + stride + 4) >> 2]!];
        for (let d = 0; d < dim; d++) out[o + d]! += int8Value(u8[row + d]!, scale, bias);
      }
      return;
    }
    const base = this.arena.tableOffset >> 2;
    for (const i of indices) for (let d = 0, row = base + i * dim; d < dim; d++) out[o + d]! += this.f32[row + d]!;
  }
}

const poolers = new WeakMap<WebAssembly.Memory, Pooler>();

/** This thread's kernel over the arena. */
export function poolerFor(arena: Arena): Pooler {
  let p = poolers.get(arena.memory);
  if (!p) {
    p = new Pooler(arena, threadSlot);
    poolers.set(arena.memory, p);
  }
  return p;
}
