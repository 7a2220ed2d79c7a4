// Loads a model from a file:// directory or an http(s):// base URL, verifying each file's size and sha256. The
// manifest is checked against itself (rows x dim x element size is each table's bytes, every file a plain relative
// path inside the artifact) and against the RecModel's spec.model before anything is read. A sparse shard reads
// only the tables its plan gives it. Failures name the file and the numbers; they never quote a file's contents.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FORMAT, rowBytes, scaledRows, type FileRef, type Manifest, type TableManifest } from '../../contracts/model-format.js';
import { declaredTables, type TableDeclarations } from '../../contracts/model-tables.js';
import { pieceRows } from '../../contracts/plan.js';
import { createArena, type Arena } from '../kernels/pool.js';

export class ModelLoadError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'ModelLoadError';
  }
}

export interface ModelSource {
  uri: string;
  read(file: string): Promise<Uint8Array>;
  /** The file's bytes in order, a buffer at a time (a server that keeps part of a file never holds all of it). */
  stream(file: string): AsyncIterable<Uint8Array>;
}

/** A file an artifact names must be a plain relative path below its base: no scheme, no root, no "..", no "\\". */
export function checkArtifactPath(file: unknown): string {
  if (typeof file !== 'string' || file === '') throw new ModelLoadError('manifest.json', `a file name is ${JSON.stringify(file)}, not a relative path`);
  const bad =
    /^[a-z][a-z0-9+.-]*:/i.test(file) ||
    file.startsWith('/') ||
    file.includes('\\') ||
    file.includes('\0') ||
    file.split('/').some((p) => p === '..' || p === '');
  if (bad) throw new ModelLoadError(file, 'the manifest names a file outside the model directory (paths must be relative, without ".." or a scheme)');
  return file;
}

export function modelSource(uri: string): ModelSource {
  if (uri.startsWith('http://') || uri.startsWith('https://')) {
    const base = uri.endsWith('/') ? uri : `${uri}/`;
    const get = async (file: string): Promise<Response> => {
      checkArtifactPath(file);
      if (!new URL(file, base).href.startsWith(base)) throw new ModelLoadError(file, `resolves outside ${base}`);
      let res: Response;
      try {
        res = await fetch(new URL(file, base), { signal: AbortSignal.timeout(60_000) });
      } catch (e) {
        throw new ModelLoadError(file, `cannot fetch ${new URL(file, base)}: ${(e as Error).message}`);
      }
      if (!res.ok) throw new ModelLoadError(file, `GET ${new URL(file, base)} answered ${res.status}`);
      return res;
    };
    return {
      uri,
      async read(file) {
        return new Uint8Array(await (await get(file)).arrayBuffer());
      },
      async *stream(file) {
        const res = await get(file);
        if (!res.body) return;
        try {
          for await (const chunk of res.body) yield chunk;
        } catch (e) {
          throw new ModelLoadError(file, `reading ${new URL(file, base)}: ${(e as Error).message}`);
        }
      },
    };
  }
  const dir = uri.startsWith('file://') ? uri.slice('file://'.length) : uri;
  const failed = (file: string, e: unknown) =>
    new ModelLoadError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? `missing (looked in ${dir})` : (e as Error).message);
  return {
    uri,
    async read(file) {
      checkArtifactPath(file);
      try {
        return new Uint8Array(await readFile(join(dir, file)));
      } catch (e) {
        throw failed(file, e);
      }
    },
    async *stream(file) {
      checkArtifactPath(file);
      try {
        for await (const chunk of createReadStream(join(dir, file), { highWaterMark: 1 << 20 })) yield chunk as Buffer;
      } catch (e) {
        throw failed(file, e);
      }
    },
  };
}

export async function readManifest(src: ModelSource): Promise<Manifest> {
  return (await readManifestDigest(src)).manifest;
}

/** The manifest and the sha256 of its bytes (the artifact version every lookup carries). */
export async function readManifestDigest(src: ModelSource): Promise<{ manifest: Manifest; sha256: string }> {
  const bytes = await src.read('manifest.json');
  let m: Manifest;
  try {
    m = JSON.parse(new TextDecoder().decode(bytes)) as Manifest;
  } catch (e) {
    // V8's message quotes the text around the error: only the position is said
    const at = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new ModelLoadError('manifest.json', `not valid JSON${at !== undefined ? ` (at byte ${at})` : ''}`);
  }
  if (typeof m !== 'object' || m === null || m.format !== FORMAT)
    throw new ModelLoadError('manifest.json', `format is ${JSON.stringify((m as Partial<Manifest> | null)?.format)?.slice(0, 40)}, expected ${FORMAT}`);
  return { manifest: m, sha256: createHash('sha256').update(bytes).digest('hex') };
}

export async function readVerified(src: ModelSource, ref: FileRef): Promise<Uint8Array> {
  const bytes = await src.read(ref.file);
  if (bytes.byteLength !== ref.bytes) throw new ModelLoadError(ref.file, `size is ${bytes.byteLength} bytes, manifest says ${ref.bytes}`);
  const sum = createHash('sha256').update(bytes).digest('hex');
  if (sum !== ref.sha256) throw new ModelLoadError(ref.file, `sha256 is ${sum}, manifest says ${ref.sha256} (corrupt or changed file)`);
  return bytes;
}

export interface EmbeddingTable {
  index: number;
  /** The table as this server holds it: a piece of a split table has its piece's rows (and bytes). */
  meta: TableManifest;
  /** fp32 rows, fp16 bit patterns, or int8 rows (bytes, then each row's fp32 scale and bias). */
  data: TableData;
  /** The WebAssembly memory holding an fp32 or int8 table's rows, for the SIMD kernels. */
  arena?: Arena;
  /** Set on a piece of a split table: its rows [start, end) of the table's `rows`. */
  piece?: { start: number; end: number; rows: number };
}

export type TableData = Float32Array | Uint16Array | Uint8Array;

/** The typed view of a table's rows by its dtype: `bytes` at `offset` of `buffer`. */
export function tableView(dtype: TableManifest['dtype'], buffer: ArrayBufferLike, offset: number, bytes: number): TableData {
  if (dtype === 'fp16') return new Uint16Array(buffer, offset, bytes / 2);
  if (dtype === 'int8') return new Uint8Array(buffer, offset, bytes);
  return new Float32Array(buffer, offset, bytes / 4);
}

/** A table a server loads: all of it (its name), or one piece of a split table. */
export type TableWanted = string | { table: string; piece: number; pieces: number };

/**
 * Tables are backed by shared memory, so worker threads read them without a copy; fp32 and int8 tables go into a
 * WebAssembly arena with `kernelSlots` scratch areas (one per thread that pools) when they fit in one. A piece
 * reads only its rows: the chunks that hold them, or the one file streamed through its hash.
 */
export async function loadTables(src: ModelSource, m: Manifest, wanted: TableWanted[], kernelSlots = 1): Promise<Map<string, EmbeddingTable>> {
  const out = new Map<string, EmbeddingTable>();
  for (const w of wanted) {
    const name = typeof w === 'string' ? w : w.table;
    if (out.has(name)) throw new ModelLoadError('plan.json', `the plan gives this server table "${name}" twice (whole or in pieces)`);
    const index = m.tables.findIndex((t) => t.name === name);
    if (index < 0) throw new ModelLoadError('manifest.json', `the plan assigns table "${name}", which the model does not have`);
    const whole = m.tables[index]!;
    const { start, end } = typeof w === 'string' ? { start: 0, end: whole.rows } : pieceRows(whole.rows, w.piece, w.pieces);
    const bytes = (end - start) * rowBytes(whole.dim, whole.dtype);
    const arena = whole.dtype !== 'fp16' && bytes > 0 ? createArena(bytes, kernelSlots, whole.dtype) : undefined;
    // an arena for the SIMD kernel, else an aligned buffer owned by the table
    const buf = arena ? arena.memory.buffer : new SharedArrayBuffer(bytes);
    const at = arena ? arena.tableOffset : 0;
    await readRows(src, whole, start, end, new Uint8Array(buf, at, bytes));
    const meta = typeof w === 'string' ? whole : { ...whole, rows: end - start, bytes };
    const data = tableView(whole.dtype, buf, at, bytes);
    out.set(name, { index, meta, data, ...(arena ? { arena } : {}), ...(typeof w === 'string' ? {} : { piece: { start, end, rows: whole.rows } }) });
  }
  return out;
}

/** Rows [start, end) of a table into `dest`, each file they come from checked against its size and sha256. */
async function readRows(src: ModelSource, t: TableManifest, start: number, end: number, dest: Uint8Array): Promise<void> {
  const row = rowBytes(t.dim, t.dtype);
  const [from, to] = [start * row, end * row];
  if (t.chunks) {
    let at = 0; // the chunk's first byte in the table
    for (const c of t.chunks) {
      const next = at + c.rows * row;
      if (next > from && at < to) {
        const bytes = await readVerified(src, c);
        dest.set(bytes.subarray(Math.max(from, at) - at, Math.min(to, next) - at), Math.max(from, at) - from);
      }
      at = next;
    }
    return;
  }
  const ref = { file: t.file!, sha256: t.sha256!, bytes: t.bytes };
  if (from === 0 && to === t.bytes) return dest.set(await readVerified(src, ref));
  const hash = createHash('sha256');
  let at = 0;
  for await (const chunk of src.stream(ref.file)) {
    hash.update(chunk);
    const next = at + chunk.byteLength;
    if (next > from && at < to) dest.set(chunk.subarray(Math.max(from, at) - at, Math.min(to, next) - at), Math.max(from, at) - from);
    at = next;
  }
  if (at !== ref.bytes) throw new ModelLoadError(ref.file, `size is ${at} bytes, manifest says ${ref.bytes}`);
  const sum = hash.digest('hex');
  if (sum !== ref.sha256) throw new ModelLoadError(ref.file, `sha256 is ${sum}, manifest says ${ref.sha256} (corrupt or changed file)`);
}

/**
 * The manifest against itself and, when given, against the RecModel's spec.model (model.json): every file a
 * plain relative path, each table's bytes equal to rows x dim x its element size, the tables and dense features
 * those the spec declares. The error names the file or table and both numbers.
 */
export function checkManifest(m: Manifest, spec?: unknown): void {
  if (!Array.isArray(m.tables) || !m.dense || typeof m.dense !== 'object') throw new ModelLoadError('manifest.json', 'has no tables or no dense section');
  for (const ref of [m.dense.bottom, m.dense.top]) if (ref) checkArtifactPath(ref.file);
  for (const t of m.tables) {
    const where = fileOf(t);
    if (!['fp32', 'fp16', 'int8'].includes(t.dtype))
      throw new ModelLoadError(where, `table "${t.name}" has dtype ${JSON.stringify(t.dtype)}; expected fp32, fp16 or int8`);
    for (const k of ['rows', 'dim', 'bytes'] as const)
      if (!Number.isSafeInteger(t[k]) || t[k] < (k === 'bytes' ? 0 : 1)) throw new ModelLoadError(where, `table "${t.name}" has ${k} ${JSON.stringify(t[k])}`);
    const row = rowBytes(t.dim, t.dtype);
    if (t.rows * row !== t.bytes)
      throw new ModelLoadError(
        where,
        `table "${t.name}": ${t.rows} rows x ${row} bytes (dim ${t.dim}, ${t.dtype}) is ${t.rows * row} bytes, the manifest says ${t.bytes}`,
      );
    if ((t.chunks === undefined) === (t.file === undefined))
      throw new ModelLoadError('manifest.json', `table "${t.name}" must have either a file or chunks, not ${t.file === undefined ? 'neither' : 'both'}`);
    if (t.file !== undefined) checkArtifactPath(t.file);
    else checkChunks(t, row);
  }
  const model = spec as (TableDeclarations & { denseFeatures?: number }) | undefined;
  if (!model || typeof model !== 'object' || (!Array.isArray(model.tables) && !Array.isArray(model.tableGroups))) return;
  if (model.denseFeatures !== undefined && model.denseFeatures !== m.denseFeatures)
    throw new ModelLoadError(
      'manifest.json',
      `the artifact takes ${m.denseFeatures} dense features; the RecModel's spec.model.denseFeatures is ${model.denseFeatures}`,
    );
  const have = new Map(m.tables.map((t) => [t.name, t]));
  const want = declaredTables(model);
  for (const w of want) {
    const t = have.get(w.name);
    if (!t) throw new ModelLoadError('manifest.json', `the RecModel declares table "${w.name}", which the artifact does not have`);
    // a generated model at a scale below 1 serves the spec it was generated from (rows scaled), or a spec that
    // declares the scaled rows (the kind walkthrough's)
    const rows = t.rows === w.rows ? w.rows : scaledRows(w.rows, m.scale);
    if (t.rows !== rows || t.dim !== w.dim || t.dtype !== w.dtype)
      throw new ModelLoadError(
        fileOf(t),
        `table "${w.name}" is ${t.rows} x ${t.dim} ${t.dtype} in the artifact; the RecModel declares ${rows} x ${w.dim} ${w.dtype}` +
          (m.scale !== undefined ? ` (${w.rows} rows at scale ${m.scale})` : ''),
      );
  }
  if (want.length !== m.tables.length) {
    const extra = m.tables.filter((t) => !want.some((w) => w.name === t.name)).map((t) => t.name);
    throw new ModelLoadError('manifest.json', `the artifact has tables the RecModel does not declare: ${extra.slice(0, 5).join(', ')}`);
  }
}

/** The file an error about a table names: its file, or its first chunk's. */
const fileOf = (t: TableManifest): string => t.file ?? t.chunks?.[0]?.file ?? 'manifest.json';

/** A chunked table's chunks: plain relative paths, each rows x row bytes, together the table's rows. */
function checkChunks(t: TableManifest, row: number): void {
  if (!Array.isArray(t.chunks) || t.chunks.length === 0) throw new ModelLoadError('manifest.json', `table "${t.name}": chunks must be a non-empty list`);
  let rows = 0;
  for (const [i, c] of t.chunks.entries()) {
    checkArtifactPath(c?.file);
    if (!Number.isSafeInteger(c.rows) || c.rows < 1 || c.bytes !== c.rows * row)
      throw new ModelLoadError(
        c.file,
        `table "${t.name}" chunk ${i}: ${JSON.stringify(c.rows)} rows x ${row} bytes is not its ${JSON.stringify(c.bytes)} bytes`,
      );
    rows += c.rows;
  }
  if (rows !== t.rows) throw new ModelLoadError('manifest.json', `table "${t.name}": its chunks hold ${rows} rows, the table has ${t.rows}`);
}
