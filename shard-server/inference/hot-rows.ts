// The main's cache of hot rows (spec.serving.hotRowCache). Under skewed traffic a few rows take most lookups: the
// main counts the rows its queries name (a sample of each query's indices, so counting costs a few hundred map
// updates per table per query), keeps the most used per byte within its budget, refreshed from their shards every
// few seconds, and pools their lookups itself. A shard is then sent only the other indices and pools those; the
// main adds its sum of the cached rows, in each sample's order, to the shard's sum. The answer equals the unsplit
// pooling up to fp32 rounding (the two partial sums are added once), not bit for bit.
import type { Pooling } from '../../contracts/wire/sections.js';
import { createArena } from '../kernels/pool.js';
import type { EmbeddingTable } from '../model/load.js';
import { meanInPlace, poolInto } from './embeddings.js';

/** Indices counted per table per query, at most. */
export const SAMPLED_PER_QUERY = 256;
/** Counted rows kept per table, at most: past it, counts are halved and the rows counted once dropped. */
export const COUNTED_PER_TABLE = 1 << 16;

/** Tables up to this many rows find a row's slot in an array of rows (4 bytes a row); larger ones in a map. */
export const DENSE_SLOTS_MAX_ROWS = 1 << 22;

export interface CachedTable {
  dim: number;
  /** Row -> its place in `values`, -1 when not cached. */
  slotOf(row: number): number;
  /** The same as an array over the table's rows, where the table is small enough (DENSE_SLOTS_MAX_ROWS). */
  dense?: Int32Array;
  /** The cached rows as a table of their own (in a kernel arena), row i at slot i. */
  rows: EmbeddingTable;
  values: Float32Array;
}

/** A table's lookup for its shard with the cached rows taken out, and those rows (their slots in the cache). */
export interface CacheSplit {
  offsets: Uint32Array;
  indices: Uint32Array;
  /** Each sample's cached rows, in its order: slots[hitOffsets[b] .. hitOffsets[b + 1]). */
  hitOffsets: Uint32Array;
  slots: Uint32Array;
  rows: EmbeddingTable;
}

export class HotRows {
  private readonly counts = new Map<number, Map<number, number>>();
  private readonly cached = new Map<number, CachedTable>();
  private turn = 0;
  hits = 0;
  misses = 0;

  constructor(
    /** The shapes of the tables whose rows may be cached (whole tables held by shards). */
    private readonly shapes: ReadonlyMap<number, { dim: number; rows: number }>,
    readonly budgetBytes: number,
  ) {}

  get cachedBytes(): number {
    let n = 0;
    for (const c of this.cached.values()) n += c.values.byteLength;
    return n;
  }

  /** Counts a sample of a query's indices of a table (every k-th from a rotating start). */
  observe(table: number, indices: Uint32Array): void {
    if (!this.shapes.has(table) || indices.length === 0) return;
    let counts = this.counts.get(table);
    if (!counts) this.counts.set(table, (counts = new Map()));
    const step = Math.max(1, Math.ceil(indices.length / SAMPLED_PER_QUERY));
    for (let k = this.turn++ % step; k < indices.length; k += step) counts.set(indices[k]!, (counts.get(indices[k]!) ?? 0) + step);
    if (counts.size > COUNTED_PER_TABLE) decay(counts);
  }

  /** The rows to hold now, per table: the most counted per byte (count / row bytes) that fit the budget together. */
  choose(): Map<number, Uint32Array> {
    const all: { table: number; row: number; worth: number; bytes: number }[] = [];
    for (const [table, counts] of this.counts) {
      const bytes = this.shapes.get(table)!.dim * 4;
      for (const [row, n] of counts) if (n > 1) all.push({ table, row, worth: n / bytes, bytes });
    }
    all.sort((a, b) => b.worth - a.worth || a.table - b.table || a.row - b.row);
    const out = new Map<number, number[]>();
    let left = this.budgetBytes;
    for (const r of all) {
      if (r.bytes > left) continue;
      left -= r.bytes;
      const own = out.get(r.table) ?? [];
      own.push(r.row);
      out.set(r.table, own);
    }
    for (const counts of this.counts.values()) decay(counts); // recent traffic weighs more than old
    return new Map([...out].map(([t, rows]) => [t, Uint32Array.from(rows.sort((a, b) => a - b))]));
  }

  /** Holds `rows` of a table from now on (their values as the shard answered them, dim wide, in order). */
  install(table: number, rows: Uint32Array, values: Float32Array): void {
    const { dim, rows: tableRows } = this.shapes.get(table)!;
    let slotOf: (row: number) => number;
    let dense: Int32Array | undefined;
    if (tableRows <= DENSE_SLOTS_MAX_ROWS) {
      const slots = (dense = new Int32Array(tableRows).fill(-1));
      rows.forEach((r, i) => (slots[r] = i));
      slotOf = (row) => slots[row]!;
    } else {
      const map = new Map(Array.from(rows, (r, i) => [r, i]));
      slotOf = (row) => map.get(row) ?? -1;
    }
    // the cached rows pool in the SIMD kernel, on the event loop (kernel slot 0)
    const arena = values.byteLength > 0 ? createArena(values.byteLength, 1) : undefined;
    const data = arena ? new Float32Array(arena.memory.buffer, arena.tableOffset, values.length) : values;
    if (arena) data.set(values);
    const meta = { name: `hot-${table}`, rows: rows.length, dim, dtype: 'fp32' as const, net: '', poolingFactor: 0, bytes: values.byteLength };
    this.cached.set(table, {
      dim,
      slotOf,
      ...(dense ? { dense } : {}),
      rows: { index: table, meta, data, ...(arena ? { arena } : {}) },
      values: data,
    });
  }

  /** The rows of a table held now. */
  held(table: number): CachedTable | undefined {
    return this.cached.get(table);
  }

  /** Forgets a table's rows (those no longer among the hottest). */
  drop(table: number): void {
    this.cached.delete(table);
  }

  /** A table's lookup without its cached rows, or undefined when none of its rows is cached. */
  split(table: number, offsets: Uint32Array, indices: Uint32Array, batch: number): CacheSplit | undefined {
    const c = this.cached.get(table);
    if (!c) return undefined;
    const keep = new Uint32Array(indices.length);
    const kept = new Uint32Array(batch + 1);
    const slots = new Uint32Array(indices.length);
    const hitOffsets = new Uint32Array(batch + 1);
    let n = 0;
    let h = 0;
    const dense = c.dense;
    for (let b = 0; b < batch; b++) {
      for (let k = offsets[b]!, end = offsets[b + 1]!; k < end; k++) {
        const row = indices[k]!;
        const s = dense ? dense[row]! : c.slotOf(row);
        if (s < 0) keep[n++] = row;
        else slots[h++] = s;
      }
      kept[b + 1] = n;
      hitOffsets[b + 1] = h;
    }
    this.hits += h;
    this.misses += n;
    return { offsets: kept, indices: keep.subarray(0, n), hitOffsets, slots: slots.subarray(0, h), rows: c.rows };
  }
}

/** Each sample's cached rows summed in its order from +0 (the SIMD kernel): batch x dim. */
export function cachedSum(split: CacheSplit, batch: number): Float32Array {
  const out = new Float32Array(batch * split.rows.meta.dim);
  if (split.slots.length) poolInto(split.rows, split.hitOffsets, split.slots, batch, 'sum', out);
  return out;
}

/** The cached rows' sum plus the shard's sum of the others (absent: it was sent none), then a mean if asked. */
export function combine(sum: Float32Array, shardSum: Float32Array | undefined, offsets: Uint32Array, batch: number, pooling: Pooling): Float32Array {
  const dim = sum.length / batch;
  if (shardSum) for (let i = 0; i < sum.length; i++) sum[i]! += shardSum[i]!;
  if (pooling === 'mean') meanInPlace(sum, offsets, batch, dim);
  return sum;
}

function decay(counts: Map<number, number>): void {
  for (const [row, n] of counts) {
    if (n <= 1) counts.delete(row);
    else counts.set(row, n >> 1);
  }
}
