// Tables stored in chunk files, and a shard loading only the rows of its piece of a split table.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../../contracts/model-format.js';
import { pieceRows } from '../../../contracts/plan.js';
import { generateModel } from '../../../models/generate.js';
import { ZOO } from '../../../models/zoo.js';
import { resolveSpec } from '../../../operator/api/v1alpha1/index.js';
import { checkManifest, loadTables, modelSource, type ModelSource, type TableData } from '../../../shard-server/model/load.js';

let dir: string;
let plain: Manifest;
let chunked: Manifest;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'recshard-chunks-'));
  const r = resolveSpec({ model: structuredClone(ZOO['ncf']!), sharding: { strategy: 'singular' } });
  if (!r.ok) throw new Error('spec');
  // ncf at 1%: 1,400 and 280 rows of dim 64 (358,400 and 71,680 bytes); chunks of 64 KiB are 256 rows
  plain = generateModel({ name: 'ncf', model: r.spec.model, seed: 3, scale: 0.01, outDir: join(dir, 'plain') });
  chunked = generateModel({ name: 'ncf', model: r.spec.model, seed: 3, scale: 0.01, outDir: join(dir, 'chunked'), chunkBytes: 64 << 10 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A source that records the files it is asked for. */
function recording(src: ModelSource): ModelSource & { files: string[] } {
  const files: string[] = [];
  return {
    uri: src.uri,
    files,
    read: (f) => (files.push(f), src.read(f)),
    stream: (f) => (files.push(f), src.stream(f)),
  };
}

const bytesOf = (t: { data: TableData }) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

describe('chunked tables', () => {
  it('the generator writes a large table as chunks of whole rows with the same values, a small one as one file', () => {
    const big = chunked.tables.find((t) => t.rows === 1400)!;
    expect(big.file).toBeUndefined();
    expect(big.chunks!.map((c) => c.rows)).toEqual([256, 256, 256, 256, 256, 120]);
    expect(big.chunks![0]!.file).toBe(`tables/${big.name}/000000.bin`);
    const joined = Buffer.concat(big.chunks!.map((c) => readFileSync(join(dir, 'chunked', c.file))));
    const flat = plain.tables.find((t) => t.name === big.name)!;
    expect(joined.equals(readFileSync(join(dir, 'plain', flat.file!)))).toBe(true);
    expect(() => checkManifest(chunked)).not.toThrow();
  });

  it('a whole table loads the same from chunks as from one file', async () => {
    const names = plain.tables.map((t) => t.name);
    const a = await loadTables(modelSource(join(dir, 'plain')), plain, names);
    const b = await loadTables(modelSource(join(dir, 'chunked')), chunked, names);
    for (const n of names) expect(bytesOf(b.get(n)!).equals(bytesOf(a.get(n)!))).toBe(true);
  });

  it('a piece reads only the chunks that hold its rows, and holds only its rows', async () => {
    const big = chunked.tables.find((t) => t.rows === 1400)!;
    const whole = (await loadTables(modelSource(join(dir, 'plain')), plain, [big.name])).get(big.name)!;
    const src = recording(modelSource(join(dir, 'chunked')));
    // piece 1 of 3: rows 466..932, in chunks 1, 2 and 3 (rows 256..1023)
    const piece = (await loadTables(src, chunked, [{ table: big.name, piece: 1, pieces: 3 }])).get(big.name)!;
    expect(src.files).toEqual([1, 2, 3].map((i) => `tables/${big.name}/00000${i}.bin`));
    expect(pieceRows(1400, 1, 3)).toEqual({ start: 466, end: 933 });
    expect(piece.piece).toEqual({ start: 466, end: 933, rows: 1400 });
    expect(piece.meta.rows).toBe(467);
    expect(piece.data.length).toBe(467 * 64);
    expect(bytesOf(piece).equals(bytesOf({ data: whole.data.subarray(466 * 64, 933 * 64) }))).toBe(true);
  });

  it('a piece of a table in one file streams the file through its checksum, holding only its rows', async () => {
    const big = plain.tables.find((t) => t.rows === 1400)!;
    const whole = (await loadTables(modelSource(join(dir, 'plain')), plain, [big.name])).get(big.name)!;
    const piece = (await loadTables(modelSource(join(dir, 'plain')), plain, [{ table: big.name, piece: 2, pieces: 3 }])).get(big.name)!;
    expect(bytesOf(piece).equals(bytesOf({ data: whole.data.subarray(933 * 64) }))).toBe(true);
    // a byte changed outside the piece's rows is still caught
    const file = join(dir, 'plain', big.file!);
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[10] = bad[10]! ^ 0xff;
    writeFileSync(file, bad);
    try {
      await expect(loadTables(modelSource(join(dir, 'plain')), plain, [{ table: big.name, piece: 2, pieces: 3 }])).rejects.toThrow(
        new RegExp(`^${big.file}: sha256 is [0-9a-f]{64}, manifest says ${big.sha256} \\(corrupt or changed file\\)$`),
      );
    } finally {
      writeFileSync(file, good);
    }
  });

  it('a corrupt chunk is named; chunks that do not add up to the table are refused before anything is read', async () => {
    const big = chunked.tables.find((t) => t.rows === 1400)!;
    const file = join(dir, 'chunked', big.chunks![2]!.file);
    const good = readFileSync(file);
    writeFileSync(file, good.subarray(0, good.length - 4));
    try {
      await expect(loadTables(modelSource(join(dir, 'chunked')), chunked, [{ table: big.name, piece: 1, pieces: 3 }])).rejects.toThrow(
        `${big.chunks![2]!.file}: size is ${good.length - 4} bytes, manifest says ${good.length}`,
      );
    } finally {
      writeFileSync(file, good);
    }
    const short = structuredClone(chunked);
    short.tables.find((t) => t.name === big.name)!.chunks!.pop();
    expect(() => checkManifest(short)).toThrow(`manifest.json: table "${big.name}": its chunks hold 1280 rows, the table has 1400`);
    const both = structuredClone(chunked);
    both.tables.find((t) => t.name === big.name)!.file = 'tables/x.bin';
    expect(() => checkManifest(both)).toThrow(`manifest.json: table "${big.name}" must have either a file or chunks, not both`);
    const wrong = structuredClone(chunked);
    wrong.tables.find((t) => t.name === big.name)!.chunks![0]!.rows = 255;
    expect(() => checkManifest(wrong)).toThrow(`table "${big.name}" chunk 0: 255 rows x 256 bytes is not its 65536 bytes`);
  });
});
