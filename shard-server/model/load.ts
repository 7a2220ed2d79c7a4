// Loads a model from a file:// directory or an http(s):// base URL, verifying each file's size and sha256. A
// sparse shard reads only the tables its plan gives it. Failures name the file and the reason.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FORMAT, type FileRef, type Manifest, type TableManifest } from './manifest.js';

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
  const bytes = await src.read('manifest.json');
  let m: Manifest;
  try {
    m = JSON.parse(new TextDecoder().decode(bytes)) as Manifest;
  } catch (e) {
    throw new ModelLoadError('manifest.json', `not valid JSON: ${(e as Error).message}`);
  }
  if (m.format !== FORMAT) throw new ModelLoadError('manifest.json', `format is ${JSON.stringify(m.format)}, expected ${FORMAT}`);
  return m;
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
}

/** shared: back the tables with SharedArrayBuffers, so worker threads can read them without a copy. */
export async function loadTables(src: ModelSource, m: Manifest, names: string[], shared = false): Promise<Map<string, EmbeddingTable>> {
  const out = new Map<string, EmbeddingTable>();
  for (const name of names) {
    const index = m.tables.findIndex((t) => t.name === name);
    if (index < 0) throw new ModelLoadError('manifest.json', `the plan assigns table "${name}", which the model does not have`);
    const meta = m.tables[index]!;
    const bytes = await readVerified(src, meta);
    // copy into an aligned buffer owned by the table
    const buf = shared ? new SharedArrayBuffer(bytes.byteLength) : new ArrayBuffer(bytes.byteLength);
    new Uint8Array(buf).set(bytes);
    out.set(name, { index, meta, data: meta.dtype === 'fp16' ? new Uint16Array(buf) : new Float32Array(buf) });
  }
  return out;
}
