import { describe, expect, it } from 'vitest';
import { encodeRequest } from '../../../contracts/wire/lookup.js';
import { BufferPool } from '../../../shard-server/inference/buffer-pool.js';

describe('BufferPool', () => {
  it('hands back a released buffer of the same size class instead of allocating', () => {
    const pool = new BufferPool(2);
    const a = pool.acquire(100_000);
    expect(a.byteLength).toBe(100_000);
    expect(a.buffer.byteLength).toBe(131_072);
    pool.release(a);
    const b = pool.acquire(70_000);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.acquire(70_000).buffer).not.toBe(a.buffer); // the free list is empty again
  });

  it('keeps at most perClass buffers and ignores buffers it did not make', () => {
    const pool = new BufferPool(1);
    const [a, b] = [pool.acquire(10), pool.acquire(10)];
    pool.release(a);
    pool.release(b);
    pool.release(new Uint8Array(1000));
    expect(pool.acquire(10).buffer).toBe(a.buffer);
    expect(pool.acquire(10).buffer).not.toBe(b.buffer);
  });

  it('encodes a lookup request into a pooled buffer exactly as into a fresh one', () => {
    const req = {
      version: { plan: 0x0a1b2c3d, artifact: 0xfeedbeef },
      batch: 2,
      lookups: [{ table: 3, pooling: 'sum' as const, offsets: Uint32Array.of(0, 1, 3), indices: Uint32Array.of(7, 8, 9) }],
    };
    const pool = new BufferPool();
    const pooled = encodeRequest(req, (n) => pool.acquire(n));
    expect([...pooled]).toEqual([...encodeRequest(req)]);
  });
});
