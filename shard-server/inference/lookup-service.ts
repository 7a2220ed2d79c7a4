// The sparse role: answers binary lookup requests from the tables this shard holds, checking every index.
import { ErrorCode, fail } from '../http/errors.js';
import type { EmbeddingTable } from '../model/load.js';
import { poolInto } from './embeddings.js';
import { MAGIC, decodeRequest, firstOutOfRange } from './protocol.js';

export class LookupService {
  private readonly byIndex = new Map<number, EmbeddingTable>();
  lookups = 0;

  constructor(
    tables: Map<string, EmbeddingTable>,
    private readonly maxBatch: number,
  ) {
    for (const t of tables.values()) this.byIndex.set(t.index, t);
  }

  get residentBytes(): number {
    let n = 0;
    for (const t of this.byIndex.values()) n += t.data.byteLength;
    return n;
  }

  /**
   * Pools straight into the response buffer: at most one allocation per request (none with a pooled `alloc`),
   * none per table or per index.
   */
  handle(body: Uint8Array, alloc: (bytes: number) => Uint8Array = (n) => new Uint8Array(n)): { response: Uint8Array; batch: number; lookups: number } {
    const req = decodeRequest(body, this.maxBatch);
    let words = 2;
    const tables = req.lookups.map((l, i) => {
      const table = this.byIndex.get(l.table);
      if (!table) fail(ErrorCode.UnknownTable, `tables[${i}]: this shard does not hold table index ${l.table}`);
      const rows = table!.meta.rows;
      const k = firstOutOfRange(l.indices, rows);
      if (k >= 0) fail(ErrorCode.IndexOutOfRange, `tables[${i}].indices[${k}] = ${l.indices[k]} is out of range: table "${table!.meta.name}" has ${rows} rows`);
      words += 2 + req.batch * table!.meta.dim;
      return table!;
    });
    const response = alloc(words * 4);
    const u = new Uint32Array(response.buffer, response.byteOffset, words);
    const f = new Float32Array(response.buffer, response.byteOffset, words);
    u[0] = MAGIC;
    u[1] = tables.length;
    let p = 2;
    let count = 0;
    req.lookups.forEach((l, i) => {
      const table = tables[i]!;
      u[p++] = l.table;
      u[p++] = table.meta.dim;
      poolInto(table, l.offsets, l.indices, req.batch, l.pooling, f, p);
      p += req.batch * table.meta.dim;
      count += l.indices.length;
    });
    this.lookups += count;
    return { response, batch: req.batch, lookups: count };
  }
}
