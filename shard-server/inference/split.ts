// The main's side of a table split by rows across shards (a table larger than one shard holds). Each index of a
// query goes to the piece whose rows hold it; a piece is asked once per query for the distinct rows it holds
// (`rows` lookups, by their place in the piece), and the main pools each sample's rows itself, in the sample's
// order, exactly as the kernel pools an unsplit table: the sums are bit-for-bit those of the unsplit table, the
// means too (the same sum times the same 1 / count), with no rounding of partial sums in between.
import type { Pooling } from '../../contracts/wire/sections.js';
import { meanInPlace } from './embeddings.js';

/** One piece: rows [start, end) of the table, held by shard `shard`. */
export interface Piece {
  shard: number;
  start: number;
  end: number;
}

/** Where a query's indices of one split table go: per piece the distinct rows it is asked for, per index its piece and slot. */
export interface SplitRoute {
  /** Per piece, its rows asked for (relative to the piece's first row), each once, in order of first use. */
  asks: Uint32Array[];
  /** Per index of the query: the piece that holds its row. */
  piece: Uint32Array;
  /** Per index: its row's place in the piece's answer. */
  slot: Uint32Array;
}

export class SplitTable {
  private readonly starts: Float64Array;

  constructor(
    readonly table: number,
    readonly dim: number,
    /** In row order, together rows [0, rows) of the table with no gap or overlap. */
    readonly pieces: readonly Piece[],
  ) {
    this.starts = Float64Array.from(pieces, (p) => p.start);
  }

  /** The piece holding row `row`: the last whose start is at or below it. */
  pieceOf(row: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= row) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  route(indices: Uint32Array): SplitRoute {
    const n = this.pieces.length;
    const seen = Array.from({ length: n }, () => new Map<number, number>());
    const asked: number[][] = Array.from({ length: n }, () => []);
    const piece = new Uint32Array(indices.length);
    const slot = new Uint32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      const p = this.pieceOf(indices[k]!);
      const local = indices[k]! - this.pieces[p]!.start;
      let s = seen[p]!.get(local);
      if (s === undefined) {
        s = asked[p]!.length;
        seen[p]!.set(local, s);
        asked[p]!.push(local);
      }
      piece[k] = p;
      slot[k] = s;
    }
    return { asks: asked.map((a) => Uint32Array.from(a)), piece, slot };
  }

  /**
   * Each sample's rows summed in its order from +0 (then times 1 / count for a mean of two or more), from the rows
   * each piece answered (`rows[p]`, its asks' rows in order, dim wide); a piece with no answer (the zero policy)
   * adds nothing.
   */
  pool(route: SplitRoute, offsets: Uint32Array, batch: number, pooling: Pooling, rows: readonly (Float32Array | undefined)[]): Float32Array {
    const dim = this.dim;
    const out = new Float32Array(batch * dim);
    for (let b = 0; b < batch; b++) {
      const o = b * dim;
      const first = offsets[b]!;
      const end = offsets[b + 1]!;
      for (let k = first; k < end; k++) {
        const r = rows[route.piece[k]!];
        if (!r) continue;
        const at = route.slot[k]! * dim;
        for (let d = 0; d < dim; d++) out[o + d]! += r[at + d]!;
      }
    }
    if (pooling === 'mean') meanInPlace(out, offsets, batch, dim);
    return out;
  }
}
