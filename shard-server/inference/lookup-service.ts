// The sparse role: answers binary lookup requests from the tables this shard holds, checking every index.
import { ErrorCode, fail } from '../../contracts/errors.js';
import { answerVectors, decodeRequest, encodeResponse } from '../../contracts/wire/lookup.js';
import { describeVersion, sameVersion, type LookupVersion } from '../../contracts/wire/versions.js';
import type { EmbeddingTable } from '../model/load.js';
import { gatherInto, poolInto } from './embeddings.js';
import { firstOutOfRange } from './indices.js';

export class LookupService {
  private readonly byIndex = new Map<number, EmbeddingTable>();
  lookups = 0;

  constructor(
    tables: Map<string, EmbeddingTable>,
    private readonly maxBatch: number,
    /** The serving version this shard's tables belong to: a lookup planned for another is refused. */
    readonly version: LookupVersion,
    /** The same per-sample limit as the main's requests. */
    private readonly maxIndicesPerSample: number,
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
    req.lookups.forEach((l, i) => {
      // a piece's rows come as one list: at most as many as the batch may name
      if (l.pooling === 'rows') {
        const max = this.maxIndicesPerSample * req.batch;
        if (l.indices.length > max) fail(ErrorCode.InvalidField, `tables[${i}] asks for ${l.indices.length} rows; the limit is ${max} (the batch's)`);
        return;
      }
      for (let b = 0; b < req.batch; b++) {
        const n = l.offsets[b + 1]! - l.offsets[b]!;
        if (n > this.maxIndicesPerSample) fail(ErrorCode.InvalidField, `tables[${i}] sample ${b} has ${n} indices; the limit is ${this.maxIndicesPerSample}`);
      }
    });
    if (!sameVersion(req.version, this.version))
      fail(ErrorCode.VersionMismatch, `lookup planned for ${describeVersion(req.version)}; this shard serves ${describeVersion(this.version)}`);
    const tables = req.lookups.map((l, i) => {
      const table = this.byIndex.get(l.table);
      if (!table) fail(ErrorCode.UnknownTable, `tables[${i}]: this shard does not hold table index ${l.table}`);
      const rows = table!.meta.rows;
      // a piece is asked for its rows by their place in it, a whole table by the table's rows
      if (table!.piece && l.pooling !== 'rows')
        fail(ErrorCode.InvalidField, `tables[${i}]: this shard holds a piece of table "${table!.meta.name}", which answers rows (pooling 2) only`);
      const k = firstOutOfRange(l.indices, rows);
      if (k >= 0) {
        const held = table!.piece
          ? `this shard holds ${rows} rows of table "${table!.meta.name}" (rows ${table!.piece.start}..${table!.piece.end - 1})`
          : `table "${table!.meta.name}" has ${rows} rows`;
        fail(ErrorCode.IndexOutOfRange, `tables[${i}].indices[${k}] = ${l.indices[k]} is out of range: ${held}`);
      }
      return { table: l.table, dim: table!.meta.dim, vectors: answerVectors(l, req.batch), data: table! };
    });
    let count = 0;
    const response = encodeResponse(
      tables,
      (i, out, offset) => {
        const l = req.lookups[i]!;
        if (l.pooling === 'rows') gatherInto(tables[i]!.data, l.indices, out, offset);
        else poolInto(tables[i]!.data, l.offsets, l.indices, req.batch, l.pooling, out, offset);
        count += l.indices.length;
      },
      alloc,
    );
    this.lookups += count;
    return { response, batch: req.batch, lookups: count };
  }
}
