// Reusable buffers for the binary protocol. A DLRM-RMC2 query moves megabytes between the main and its shards;
// fresh ArrayBuffers per request count as external memory and drive V8 into a mark-compact every few requests.
// Buffers come in power-of-two size classes and go back to a short free list when the request is done.
export const MIN_CLASS = 1 << 16;

export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();

  constructor(private readonly perClass = 8) {}

  /** A view of exactly `bytes` over a buffer of the size class that holds it (4-byte aligned, offset 0). */
  acquire(bytes: number): Uint8Array {
    let size = MIN_CLASS;
    while (size < bytes) size *= 2;
    const buf = this.free.get(size)?.pop() ?? new ArrayBuffer(size);
    return new Uint8Array(buf, 0, bytes);
  }

  release(view: Uint8Array): void {
    const buf = view.buffer;
    if (!(buf instanceof ArrayBuffer) || buf.byteLength < MIN_CLASS || (buf.byteLength & (buf.byteLength - 1)) !== 0) return;
    const list = this.free.get(buf.byteLength) ?? [];
    if (list.length < this.perClass) list.push(buf);
    this.free.set(buf.byteLength, list);
  }
}
