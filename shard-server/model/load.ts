// Loads a model from a file:// directory or an http(s):// base URL, verifying each file's size and sha256. The
// manifest is checked against itself (rows x dim x element size is each table's bytes, every file a plain relative
// path inside the artifact) and against the RecModel's spec.model before anything is read. A sparse shard reads
// only the tables its plan gives it. Failures name the file and the numbers; they never quote a file's contents.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BYTES, FORMAT, scaledRows, type FileRef, type Manifest, type TableManifest } from '../../contracts/model-format.js';
import { declaredTables, type TableDeclarations } from '../../contracts/model-tables.js';
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
    return {
      uri,
      async read(file) {
        checkArtifactPath(file);
        if (!new URL(file, base).href.startsWith(base)) throw new ModelLoadError(file, `resolves outside ${base}`);
        let res: Response;
        try {
          res = await fetch(new URL(file, base), { signal: AbortSignal.timeout(60_000) });
        } catch (e) {
          throw new ModelLoadError(file, `cannot fetch ${new URL(file, base)}: ${(e as Error).message}`);
        }
        if (!res.ok) throw new ModelLoadError(file, `GET ${new URL(file, base)} answered ${res.status}`);
        return new Uint8Array(await res.arrayBuffer());
      },
    };
  }
  const dir = uri.startsWith('file://') ? uri.slice('file://'.length) : uri;
  return {
    uri,
    async read(file) {
      checkArtifactPath(file);
      try {
        return new Uint8Array(await readFile(join(dir, file)));
      } catch (e) {
        throw new ModelLoadError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? `missing (looked in ${dir})` : (e as Error).message);
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
  meta: TableManifest;
  /** fp32 rows, or fp16 bit patterns. */
  data: Float32Array | Uint16Array;
  /** The WebAssembly memory holding an fp32 table's rows, for the SIMD kernel. */
  arena?: Arena;
}

/**
 * Tables are backed by shared memory, so worker threads read them without a copy; fp32 tables go into a
 * WebAssembly arena with `kernelSlots` scratch areas (one per thread that pools) when they fit in one.
 */
export async function loadTables(src: ModelSource, m: Manifest, names: string[], kernelSlots = 1): Promise<Map<string, EmbeddingTable>> {
  const out = new Map<string, EmbeddingTable>();
  for (const name of names) {
    const index = m.tables.findIndex((t) => t.name === name);
    if (index < 0) throw new ModelLoadError('manifest.json', `the plan assigns table "${name}", which the model does not have`);
    const meta = m.tables[index]!;
    const bytes = await readVerified(src, meta);
    const arena = meta.dtype === 'fp32' ? createArena(bytes.byteLength, kernelSlots) : undefined;
    if (arena) {
      new Uint8Array(arena.memory.buffer, arena.tableOffset, bytes.byteLength).set(bytes);
      out.set(name, { index, meta, data: new Float32Array(arena.memory.buffer, arena.tableOffset, bytes.byteLength / 4), arena });
      continue;
    }
    // copy into an aligned buffer owned by the table
    const buf = new SharedArrayBuffer(bytes.byteLength);
    new Uint8Array(buf).set(bytes);
    out.set(name, { index, meta, data: meta.dtype === 'fp16' ? new Uint16Array(buf) : new Float32Array(buf) });
  }
  return out;
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
    checkArtifactPath(t.file);
    const el = BYTES[t.dtype];
    if (el === undefined) throw new ModelLoadError(t.file, `table "${t.name}" has dtype ${JSON.stringify(t.dtype)}; expected fp32 or fp16`);
    for (const k of ['rows', 'dim', 'bytes'] as const)
      if (!Number.isSafeInteger(t[k]) || t[k] < (k === 'bytes' ? 0 : 1)) throw new ModelLoadError(t.file, `table "${t.name}" has ${k} ${JSON.stringify(t[k])}`);
    if (t.rows * t.dim * el !== t.bytes)
      throw new ModelLoadError(
        t.file,
        `table "${t.name}": ${t.rows} rows x ${t.dim} x ${el} bytes (${t.dtype}) is ${t.rows * t.dim * el} bytes, the manifest says ${t.bytes}`,
      );
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
        t.file,
        `table "${w.name}" is ${t.rows} x ${t.dim} ${t.dtype} in the artifact; the RecModel declares ${rows} x ${w.dim} ${w.dtype}` +
          (m.scale !== undefined ? ` (${w.rows} rows at scale ${m.scale})` : ''),
      );
  }
  if (want.length !== m.tables.length) {
    const extra = m.tables.filter((t) => !want.some((w) => w.name === t.name)).map((t) => t.name);
    throw new ModelLoadError('manifest.json', `the artifact has tables the RecModel does not declare: ${extra.slice(0, 5).join(', ')}`);
  }
}
