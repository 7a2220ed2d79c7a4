// The WebAssembly SIMD dot interaction (interact.wat) and its memory: one instance per thread (the event loop and
// each worker load this module separately), its memory grown to the largest call seen. A call copies the bottom
// output and the pooled rows in, one copy per array, and the finished rows out in one more.
import { readFileSync } from 'node:fs';
import { builtSibling } from '../../lib/paths.js';

const PAGE = 65536;
// A call needing more scratch than this (far beyond any batch the servers admit) is left to the caller's JS loop.
const MAX_BYTES = 1 << 30;

interface Kernel {
  memory: WebAssembly.Memory;
  dot: (vecs: number, n: number, batch: number, dim: number, out: number, width: number) => void;
  f32: Float32Array;
}

let kernel: Kernel | undefined;

function kernelWith(bytes: number): Kernel {
  if (!kernel) {
    const module = new WebAssembly.Module(readFileSync(builtSibling(import.meta.url, 'interact.wasm')));
    const exports = new WebAssembly.Instance(module, {}).exports;
    const memory = exports.memory as WebAssembly.Memory;
    kernel = { memory, dot: exports.dot as Kernel['dot'], f32: new Float32Array(memory.buffer) };
  }
  if (kernel.memory.buffer.byteLength < bytes) {
    kernel.memory.grow(Math.ceil((bytes - kernel.memory.buffer.byteLength) / PAGE));
    kernel.f32 = new Float32Array(kernel.memory.buffer); // growing detaches the old buffer
  }
  return kernel;
}

/**
 * For each sample b < batch, out[b * width ..] = vectors[0] row b, then the dot products of rows b of every pair
 * (i, j < i) of vectors, i ascending, then j. Each vector is batch x dim (at least), and width must be
 * dim + n (n - 1) / 2 for the n vectors. Returns false, writing nothing, when the call needs more scratch than a
 * kernel may have.
 */
export function dotInteraction(batch: number, vectors: Float32Array[], dim: number, out: Float32Array, width: number): boolean {
  const n = vectors.length;
  const region = batch * dim;
  const bytes = (n * region + batch * width) * 4;
  if (bytes > MAX_BYTES) return false;
  const k = kernelWith(bytes);
  for (let i = 0; i < n; i++) k.f32.set(vectors[i]!.subarray(0, region), i * region);
  k.dot(0, n, batch, dim, n * region * 4, width);
  out.set(k.f32.subarray(n * region, n * region + batch * width));
  return true;
}
