// Bad input gets a 4xx from the error catalogue with a message naming the field, and never a 5xx or a dead
// server: table-driven cases, then 10,000 random malformed bodies against the main and 3,000 against a shard.
import { connect } from 'node:net';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveLocal, type LocalDeployment } from '../../cli/local.js';
import type { Manifest } from '../../contracts/model-format.js';
import { LOOKUP_CONTENT_TYPE, LOOKUP_MAGIC } from '../../contracts/wire/lookup.js';
import { PREDICT_CONTENT_TYPE, PREDICT_MAGIC, decodeScores, encodePredict } from '../../contracts/wire/predict.js';
import { readManifest, modelSource } from '../../shard-server/model/load.js';
import { predict, randomRequest, zooRecModel } from './helpers.js';

let d: LocalDeployment;
let manifest: Manifest;
let valid: ReturnType<typeof randomRequest>;
let validScores: number[][];

beforeAll(async () => {
  d = await serveLocal(zooRecModel('dlrm-rmc2', 'rmc2', { strategy: 'load-balanced', shards: 2 }), { scale: 0.0005, seed: 3, maxBodyBytes: 16 * 2 ** 20 });
  manifest = await readManifest(modelSource(d.modelDir));
  valid = randomRequest(manifest, 4, 11);
  const r = await predict(d.predictUrl, valid);
  expect(r.status).toBe(200);
  validScores = r.json.scores;
});

afterAll(async () => {
  await d?.stop();
});

async function raw(url: string, body: string | Uint8Array, contentType = 'application/json') {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body: body as BodyInit });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

describe('bad requests to the main', () => {
  const dense = () => structuredClone(valid.dense)!;
  const sparse = () => structuredClone(valid.sparse);
  const cases: [string, () => string | object, number, string, RegExp][] = [
    ['malformed JSON', () => '{"dense": [[1, 2]', 400, 'INVALID_JSON', /not valid JSON/],
    ['NaN (not JSON)', () => '{"dense": [[NaN]]}', 400, 'INVALID_JSON', /not valid JSON/],
    ['body not an object', () => '[1,2,3]', 400, 'INVALID_FIELD', /body must be a JSON object/],
    ['wrong dense width', () => ({ dense: [[1, 2, 3]], sparse: {} }), 400, 'INVALID_FIELD', /dense\[0\] has 3 values; the model takes 256/],
    [
      'non-number dense value',
      () => ({ dense: dense().map((r, i) => (i === 1 ? r.map((v, j) => (j === 5 ? 'x' : v)) : r)), sparse: sparse() }),
      400,
      'INVALID_FIELD',
      /dense\[1\]\[5\] must be a finite number/,
    ],
    ['unknown table', () => ({ dense: dense(), sparse: { ...sparse(), 'no-such-table': [[1], [1], [1], [1]] } }), 400, 'UNKNOWN_TABLE', /sparse.no-such-table/],
    [
      'index out of range',
      () => ({ dense: dense(), sparse: { ...sparse(), 'user-emb-0': [[0], [1], [manifest.tables[0]!.rows], [2]] } }),
      400,
      'INDEX_OUT_OF_RANGE',
      /sparse.user-emb-0\[2\]\[0\] = \d+ is out of range: table "user-emb-0" has \d+ rows/,
    ],
    [
      'negative index',
      () => ({ dense: dense(), sparse: { 'user-emb-1': [[0], [-1], [1], [2]] } }),
      400,
      'INVALID_FIELD',
      /sparse.user-emb-1\[1\]\[0\] must be a non-negative integer/,
    ],
    [
      'non-integer index',
      () => ({ dense: dense(), sparse: { 'user-emb-1': [[0], [1.5], [1], [2]] } }),
      400,
      'INVALID_FIELD',
      /sparse.user-emb-1\[1\]\[0\] must be a non-negative integer/,
    ],
    [
      'index lists of the wrong count',
      () => ({ dense: dense(), sparse: { 'user-emb-1': [[0]] } }),
      400,
      'INVALID_FIELD',
      /sparse.user-emb-1 must be an array of 4 index lists/,
    ],
    ['unknown field', () => ({ dense: dense(), sparse: sparse(), extra: 1 }), 400, 'INVALID_FIELD', /unknown field "extra"/],
    ['bad pooling', () => ({ dense: dense(), sparse: sparse(), pooling: 'max' }), 400, 'INVALID_FIELD', /pooling must be "sum" or "mean"/],
    [
      'too many samples',
      () => ({ dense: Array.from({ length: 1025 }, () => new Array(256).fill(0)) }),
      413,
      'BATCH_TOO_LARGE',
      /1025 samples exceeds the limit of 1024/,
    ],
    ['body over the size limit', () => `{"dense": [[${'0,'.repeat(9_000_000)}0]]}`, 413, 'BODY_TOO_LARGE', /exceeds the limit/],
  ];

  it.each(cases)('%s -> %i %s', async (_name, make, status, code, message) => {
    const body = make();
    const r = await raw(d.predictUrl, typeof body === 'string' ? body : JSON.stringify(body));
    expect(r.status).toBe(status);
    expect(r.json.error.code).toBe(code);
    expect(r.json.error.message).toMatch(message);
  });

  it('a body over the limit gets its 413 every time it is sent in full, and one that trickles costs its connection', async () => {
    // the reply goes before the body is read; the rest is discarded meanwhile, so the connection is not reset under it
    const big = `{"dense": [[${'0,'.repeat(9_000_000)}0]]}`;
    for (let i = 0; i < 10; i++) expect((await raw(d.predictUrl, big)).status).toBe(413);
    // 100 MB declared, a byte every 50 ms: the 413 at once, the connection cut within about a second
    const url = new URL(d.predictUrl);
    const socket = connect(Number(url.port), url.hostname);
    let reply = '';
    const t0 = Date.now();
    socket.on('data', (c: Buffer) => (reply += c.toString('latin1')));
    socket.write(`POST ${url.pathname} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{`);
    const trickle = setInterval(() => socket.write('0'), 50);
    const closedAfter = await new Promise<number>((resolve) => {
      socket.on('close', () => resolve(Date.now() - t0));
      socket.on('error', () => {});
    });
    clearInterval(trickle);
    expect(reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(reply).toContain('BODY_TOO_LARGE');
    expect(closedAfter).toBeGreaterThan(500);
    expect(closedAfter).toBeLessThan(3000);
  });

  it('an unknown model name is a 404', async () => {
    const r = await raw(d.predictUrl.replace('rmc2:predict', 'other:predict'), JSON.stringify(valid));
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe('MODEL_NOT_FOUND');
  });
});

/** Random mutations of a valid body: cut, splice bytes, swap values for random JSON, nest, duplicate. */
function mutate(base: string, g: ReturnType<typeof xoroshiro128plus>): string {
  const u = () => (g.next() >>> 0) / 2 ** 32;
  const pick = <T>(xs: T[]) => xs[Math.floor(u() * xs.length)]!;
  const junk = () =>
    pick(['null', 'true', '-1', '1e309', '"x"', '[]', '{}', '[[[]]]', '-0.5', '4294967296', '"\\u0000"', '1.0e-400', '{"a":', ']', '}', ',', ':', '"', '\\']);
  let s = base;
  const n = 1 + Math.floor(u() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(u() * (s.length + 1));
    switch (Math.floor(u() * 6)) {
      case 0:
        s = s.slice(0, at);
        break;
      case 1:
        s = s.slice(0, at) + junk() + s.slice(at);
        break;
      case 2:
        s = s.slice(0, at) + s.slice(at + 1 + Math.floor(u() * 20));
        break;
      case 3:
        s = s.replace(/-?\d+(\.\d+)?(e-?\d+)?/, junk());
        break;
      case 4:
        s = s.slice(0, at) + String.fromCharCode(Math.floor(u() * 256)) + s.slice(at);
        break;
      default:
        s = `{"dense": ${junk()}, "sparse": ${pick([junk(), s])}}`;
    }
  }
  return s;
}

describe('fuzzing', () => {
  it('10,000 random malformed bodies to the main: zero 5xx, and it still answers correctly', async () => {
    const g = xoroshiro128plus(2026);
    const small = JSON.stringify({
      dense: valid.dense!.slice(0, 2),
      sparse: Object.fromEntries(
        Object.entries(valid.sparse)
          .slice(0, 6)
          .map(([k, v]) => [k, v.slice(0, 2)]),
      ),
    });
    const statuses = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      const res = await fetch(d.predictUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: mutate(small, g) });
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
    const fiveXX = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
    expect(fiveXX, JSON.stringify([...statuses])).toBe(0);
    expect(statuses.get(400)).toBeGreaterThan(5_000);
    const again = await predict(d.predictUrl, valid);
    expect(again.status).toBe(200);
    expect(again.json.scores).toEqual(validScores);
  });

  it('3,000 random binary bodies to a sparse shard: zero 5xx', async () => {
    const g = xoroshiro128plus(7);
    const u = () => g.next() >>> 0;
    const shardUrl = `http://127.0.0.1:${d.processes.find((p) => p.name === 'shard-0')!.port}/v1/lookup`;
    const statuses = new Map<number, number>();
    for (let i = 0; i < 3_000; i++) {
      const words = new Uint32Array(1 + (u() % 40));
      for (let j = 0; j < words.length; j++) words[j] = u() % 4 === 0 ? u() : u() % 16;
      if (u() % 2) words[0] = LOOKUP_MAGIC;
      const bytes = new Uint8Array(words.buffer).subarray(0, words.byteLength - (u() % 3 === 0 ? u() % 4 : 0));
      const r = await raw(shardUrl, bytes, LOOKUP_CONTENT_TYPE);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    expect(
      [...statuses].filter(([s]) => s >= 500),
      JSON.stringify([...statuses]),
    ).toEqual([]);
    const wrongType = await raw(shardUrl, new Uint8Array(8), 'application/json');
    expect(wrongType.status).toBe(415);
    expect((await fetch(`${shardUrl.replace('/v1/lookup', '/readyz')}`)).status).toBe(200);
  });
});

describe('binary predict', () => {
  function binaryOf(req: ReturnType<typeof randomRequest>, batch: number) {
    const dense = new Float32Array(req.dense!.flat());
    const tables = Object.entries(req.sparse).map(([name, lists]) => {
      const offsets = new Uint32Array(batch + 1);
      lists.forEach((l, i) => (offsets[i + 1] = offsets[i]! + l.length));
      return { table: manifest.tables.findIndex((t) => t.name === name), offsets, indices: new Uint32Array(lists.flat()) };
    });
    return encodePredict(batch, manifest.denseFeatures, 'sum', dense, tables);
  }

  it('gives the same scores as the JSON form', async () => {
    const res = await fetch(d.predictUrl, { method: 'POST', headers: { 'content-type': PREDICT_CONTENT_TYPE }, body: binaryOf(valid, 4) as BodyInit });
    expect(res.status).toBe(200);
    const { batch, outputs, scores } = decodeScores(new Uint8Array(await res.arrayBuffer()));
    expect([batch, outputs]).toEqual([4, 1]);
    expect(Array.from(scores).map((v) => [v])).toEqual(validScores);
  });

  it('rejects a bad index, a wrong dense width and random bytes with 4xx', async () => {
    const bad = structuredClone(valid);
    bad.sparse['item-emb-3']![0]![0] = manifest.tables.find((t) => t.name === 'item-emb-3')!.rows;
    const r1 = await raw(d.predictUrl, binaryOf(bad, 4), PREDICT_CONTENT_TYPE);
    expect([r1.status, r1.json.error.code]).toEqual([400, 'INDEX_OUT_OF_RANGE']);
    const body = binaryOf(valid, 4);
    new Uint32Array(body.buffer)[2] = 13;
    const r2 = await raw(d.predictUrl, body, PREDICT_CONTENT_TYPE);
    expect(r2.json.error.message).toBe('denseFeatures is 13; the model takes 256');
    const g = xoroshiro128plus(5);
    for (let i = 0; i < 500; i++) {
      const junk = new Uint32Array(1 + ((g.next() >>> 0) % 64)).map(() => ((g.next() >>> 0) % 3 === 0 ? g.next() >>> 0 : (g.next() >>> 0) % 8));
      if (i % 2) junk[0] = PREDICT_MAGIC;
      const r = await raw(d.predictUrl, new Uint8Array(junk.buffer), PREDICT_CONTENT_TYPE);
      expect(r.status).toBeLessThan(500);
    }
  });
});
