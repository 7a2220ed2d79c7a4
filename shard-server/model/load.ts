// Loads a model from a file:// directory or an http(s):// base URL, verifying each file's size and sha256. A
// sparse shard reads only the tables its plan gives it. Failures name the file and the reason.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FORMAT, type FileRef, type Manifest, type TableManifest } from '../../contracts/model-format.js';
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

export function modelSource(uri: string): ModelSource {
  if (uri.startsWith('http://') || uri.startsWith('https://')) {
    const base = uri.endsWith('/') ? uri : `${uri}/`;
    return {
      uri,
      async read(file) {
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
    throw new ModelLoadError('manifest.json', `not valid JSON: ${(e as Error).message}`);
  }
  if (m.format !== FORMAT) throw new ModelLoadError('manifest.json', `format is ${JSON.stringify(m.format)}, expected ${FORMAT}`);
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
