// The sparse role: answers binary lookup requests from the tables this shard holds, checking every index.
import { ErrorCode, fail } from '../http/errors.js';
import type { EmbeddingTable } from '../model/load.js';
import { poolInto } from './embeddings.js';
import { decodeRequest, encodeResponse, type LookupResult } from './protocol.js';

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

  handle(body: Uint8Array): { response: Uint8Array; batch: number; lookups: number } {
    const req = decodeRequest(body, this.maxBatch);
    const results: LookupResult[] = [];
    let count = 0;
    for (const [i, l] of req.lookups.entries()) {
      const table = this.byIndex.get(l.table);
      if (!table) fail(ErrorCode.UnknownTable, `tables[${i}]: this shard does not hold table index ${l.table}`);
      const rows = table!.meta.rows;
      for (let k = 0; k < l.indices.length; k++) {
        if (l.indices[k]! >= rows) fail(ErrorCode.IndexOutOfRange, `tables[${i}].indices[${k}] = ${l.indices[k]} is out of range: table "${table!.meta.name}" has ${rows} rows`);
      }
      const values = new Float32Array(req.batch * table!.meta.dim);
      poolInto(table!, l.offsets, l.indices, req.batch, l.pooling, values);
      results.push({ table: l.table, dim: table!.meta.dim, values });
      count += l.indices.length;
    }
    this.lookups += count;
    return { response: encodeResponse(results), batch: req.batch, lookups: count };
  }
}
