// The shard-server's HTTP layer in process (supertest), per role: a sparse shard over tables in memory, and a main
// over a small generated model run inline; every error reply from the one error handler and the catalogue.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request, { type Response, type Test } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, ServeError } from '../../../contracts/errors.js';
import type { ModelInfo } from '../../../contracts/model-info.js';
import { decodeResponse, encodeRequest, LOOKUP_CONTENT_TYPE } from '../../../contracts/wire/lookup.js';
import { decodeScores, PREDICT_CONTENT_TYPE } from '../../../contracts/wire/predict.js';
import { versionWord, type LookupVersion } from '../../../contracts/wire/versions.js';
import { realClock } from '../../../lib/clock.js';
import { silentLogger } from '../../../lib/log.js';
import { buildQueries } from '../../../loadgen/workload.js';
import { generateModel } from '../../../models/generate.js';
import { resolveSpec } from '../../../operator/api/v1alpha1/index.js';
import { buildServerApp, type ServerState } from '../../../shard-server/http/app.js';
import { ServerMetrics } from '../../../shard-server/http/metrics.js';
import { LookupService } from '../../../shard-server/inference/lookup-service.js';
import { ShardClient } from '../../../shard-server/inference/shard-client.js';
import { modelSource, readManifest, type EmbeddingTable } from '../../../shard-server/model/load.js';
import { DEFAULT_SCHEDULING, loadMain, type MainRole } from '../../../shard-server/roles.js';

const limits = { maxBatch: 64, maxIndicesPerSample: 16 };
/** Admission control and deadlines as the server sets them, on the real clock. */
const serving = { maxJsonBytes: 1 << 16, maxInflight: 8, maxQueue: 16, deadlineMs: 1000, now: () => Date.now() };
/** The serving version the shards here serve: plan.json's version and the manifest's sha256, a word of each. */
const version: LookupVersion = { plan: versionWord('0a1b2c3d'), artifact: versionWord('5eed0f00') };

/** The body as bytes, whatever its content type. */
const bytes = (t: Test) =>
  t.buffer(true).parse((res, cb) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => cb(null, Buffer.concat(chunks)));
  });
const view = (r: Response) => new Uint8Array(r.body as Buffer);

function table(index: number, rows: number, dim: number): EmbeddingTable {
  const data = Float32Array.from({ length: rows * dim }, (_, i) => index * 1000 + i);
  return { index, meta: { name: `t${index}`, rows, dim, dtype: 'fp32', net: 'n', poolingFactor: 2, file: '', sha256: '', bytes: rows * dim * 4 }, data };
}

describe('the sparse role', () => {
  const state: ServerState = { stopping: false, notReady: () => (state.lookup ? undefined : 'loading model'), checks: () => [] };
  const metrics = new ServerMetrics('m', 'sparse');
  const app = buildServerApp(state, { model: 'm', role: 'sparse', shard: 1, limits, maxBodyBytes: 1 << 16, ...serving, metrics, log: silentLogger });
  const lookup = { version, batch: 2, lookups: [{ table: 3, pooling: 'sum' as const, offsets: Uint32Array.of(0, 2, 3), indices: Uint32Array.of(0, 4, 9) }] };

  it('is live at once and ready once its tables are loaded; until then a lookup is a 503 that says why', async () => {
    await request(app).get('/healthz').expect(200, 'ok\n');
    await request(app).get('/readyz').expect(503, 'loading model\n');
    const r = await bytes(
      request(app)
        .post('/v1/lookup')
        .set('content-type', LOOKUP_CONTENT_TYPE)
        .send(Buffer.from(encodeRequest(lookup))),
    );
    expect(r.status).toBe(503);
    expect(JSON.parse(Buffer.from(r.body as Buffer).toString())).toEqual({ error: { code: 'NOT_READY', message: 'loading model' } });
    state.lookup = new LookupService(new Map([['t3', table(3, 10, 4)]]), limits.maxBatch, version, limits.maxIndicesPerSample);
    await request(app).get('/readyz').expect(200, 'ok\n');
  });

  it('answers a lookup with the pooled rows of each sample', async () => {
    const r = await bytes(
      request(app)
        .post('/v1/lookup')
        .set('content-type', LOOKUP_CONTENT_TYPE)
        .send(Buffer.from(encodeRequest(lookup))),
    );
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(LOOKUP_CONTENT_TYPE);
    const [out] = decodeResponse(view(r), lookup);
    // sample 0: rows 0 and 4; sample 1: row 9 (values 3000 + row * 4 + d)
    const row = (k: number) => [0, 1, 2, 3].map((d) => 3000 + k * 4 + d);
    expect(Array.from(out!.values)).toEqual([...row(0).map((v, d) => v + row(4)[d]!), ...row(9)]);
    expect(out).toMatchObject({ table: 3, dim: 4 });
  });

  it("refuses what it cannot serve with the catalogue's code, and counts each", async () => {
    const bad = { ...lookup, lookups: [{ ...lookup.lookups[0]!, indices: Uint32Array.of(0, 4, 10) }] };
    const range = await request(app)
      .post('/v1/lookup')
      .set('content-type', LOOKUP_CONTENT_TYPE)
      .send(Buffer.from(encodeRequest(bad)));
    expect(range.status).toBe(400);
    expect(range.body.error).toEqual({ code: 'INDEX_OUT_OF_RANGE', message: 'tables[0].indices[2] = 10 is out of range: table "t3" has 10 rows' });
    const json = await request(app).post('/v1/lookup').send({ lookups: [] });
    expect(json.status).toBe(415);
    expect(json.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const big = await request(app)
      .post('/v1/lookup')
      .set('content-type', LOOKUP_CONTENT_TYPE)
      .send(Buffer.alloc(1 << 17));
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('BODY_TOO_LARGE');
    const none = await request(app).post('/v1/models/m:predict').send({});
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe('NOT_FOUND');
    const text = (await request(app).get('/metrics')).text;
    expect(text).toMatch(/^recshard_errors_total\{model="m",role="sparse",code="INDEX_OUT_OF_RANGE"\} 1$/m);
    // the lookups that reached the handler: not ready, served, out of range, too large (the 415 never got there)
    expect(text).toMatch(/^recshard_request_duration_seconds_count\{model="m",role="sparse",stage="end_to_end",shard="1"\} 4$/m);
  });
});

describe('a shard holding a piece of a split table', () => {
  const state: ServerState = { stopping: false, notReady: () => undefined, checks: () => [] };
  const app = buildServerApp(state, {
    model: 'm',
    role: 'sparse',
    shard: 2,
    limits,
    maxBodyBytes: 1 << 16,
    ...serving,
    metrics: new ServerMetrics('m', 'sparse'),
    log: silentLogger,
  });
  // rows 20..29 of a 40-row table, held as its rows 0..9
  state.lookup = new LookupService(
    new Map([['t5', { ...table(5, 10, 4), piece: { start: 20, end: 30, rows: 40 } }]]),
    limits.maxBatch,
    version,
    limits.maxIndicesPerSample,
  );
  const ask = (pooling: 'rows' | 'sum', indices: number[]) => ({
    version,
    batch: 2,
    lookups: [{ table: 5, pooling, offsets: Uint32Array.of(0, 0, indices.length), indices: Uint32Array.from(indices) }],
  });
  const post = (req: ReturnType<typeof ask>) =>
    request(app)
      .post('/v1/lookup')
      .set('content-type', LOOKUP_CONTENT_TYPE)
      .send(Buffer.from(encodeRequest(req)));

  it('answers each row asked for, in order (the main pools them)', async () => {
    const req = ask('rows', [7, 0, 7]);
    const r = await bytes(post(req));
    expect(r.status).toBe(200);
    const row = (k: number) => [0, 1, 2, 3].map((d) => 5000 + k * 4 + d);
    expect(Array.from(decodeResponse(view(r), req)[0]!.values)).toEqual([...row(7), ...row(0), ...row(7)]);
  });

  it('refuses a pooled lookup and a row outside the piece, naming the rows it holds', async () => {
    const pooled = await post(ask('sum', [1]));
    expect([pooled.status, pooled.body.error.code]).toEqual([400, 'INVALID_FIELD']);
    expect(pooled.body.error.message).toBe('tables[0]: this shard holds a piece of table "t5", which answers rows (pooling 2) only');
    const outside = await post(ask('rows', [3, 10]));
    expect(outside.status).toBe(400);
    expect(outside.body.error.message).toBe('tables[0].indices[1] = 10 is out of range: this shard holds 10 rows of table "t5" (rows 20..29)');
  });
});

describe('a lookup planned for another version', () => {
  const state: ServerState = { stopping: false, notReady: () => undefined, checks: () => [] };
  const metrics = new ServerMetrics('m', 'sparse');
  const app = buildServerApp(state, { model: 'm', role: 'sparse', shard: 0, limits, maxBodyBytes: 1 << 16, ...serving, metrics, log: silentLogger });
  state.lookup = new LookupService(new Map([['t3', table(3, 10, 4)]]), limits.maxBatch, version, limits.maxIndicesPerSample);
  const lookups = [{ table: 3, pooling: 'sum' as const, offsets: Uint32Array.of(0, 1), indices: Uint32Array.of(2) }];
  const post = (v: LookupVersion) =>
    request(app)
      .post('/v1/lookup')
      .set('content-type', LOOKUP_CONTENT_TYPE)
      .send(Buffer.from(encodeRequest({ version: v, batch: 1, lookups })));
  // the plan word alone differs (another table assignment), then the artifact word alone (other weights, same plan)
  const otherPlan = { plan: versionWord('0a1b2c3e'), artifact: version.artifact };
  const otherArtifact = { plan: version.plan, artifact: versionWord('5eed0f01') };

  it('is refused with 409 VERSION_MISMATCH naming both versions, and counted; its own version is served', async () => {
    const plan = await post(otherPlan);
    expect(plan.status).toBe(409);
    expect(plan.body.error).toEqual({
      code: 'VERSION_MISMATCH',
      message: 'lookup planned for plan 0a1b2c3e, artifact 5eed0f00; this shard serves plan 0a1b2c3d, artifact 5eed0f00',
    });
    const artifact = await post(otherArtifact);
    expect([artifact.status, artifact.body.error.code]).toEqual([409, 'VERSION_MISMATCH']);
    expect(artifact.body.error.message).toBe('lookup planned for plan 0a1b2c3d, artifact 5eed0f01; this shard serves plan 0a1b2c3d, artifact 5eed0f00');
    // the same lookup of the shard's own version gets its row
    const ok = await bytes(post(version));
    expect(ok.status).toBe(200);
    expect(Array.from(decodeResponse(view(ok), { batch: 1, lookups })[0]!.values)).toEqual([3008, 3009, 3010, 3011]);
    const text = (await request(app).get('/metrics')).text;
    expect(text).toMatch(/^recshard_errors_total\{model="m",role="sparse",code="VERSION_MISMATCH"\} 2$/m);
  });

  describe("the main's client of that shard", () => {
    let server: Server;
    let endpoint: string;
    /** Lookup requests the shard received. */
    let received = 0;

    beforeAll(async () => {
      server = createServer((req, res) => {
        if (req.url === '/v1/lookup') received++;
        app(req, res);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    const deadline = () => Date.now() + 5_000;

    it('of another version gets a ServeError SHARD_VERSION_MISMATCH and reports each refusal', async () => {
      let mismatches = 0;
      const client = new ShardClient({ shard: 0, endpoint, tables: [3], clock: realClock, version: otherArtifact, onVersionMismatch: () => mismatches++ });
      received = 0;
      const err = await client.lookup({ batch: 1, lookups }, deadline()).catch((e: unknown) => e);
      client.stop();
      expect(err).toBeInstanceOf(ServeError);
      expect((err as ServeError).kind).toBe(ErrorCode.ShardVersionMismatch);
      expect((err as ServeError).body().error.code).toBe('SHARD_VERSION_MISMATCH');
      expect((err as ServeError).status).toBe(503);
      expect((err as ServeError).message).toContain(`shard 0 (${endpoint}) serves another version than this main (plan 0a1b2c3d, artifact 5eed0f01)`);
      expect((err as ServeError).message).toContain('VERSION_MISMATCH');
      // every lookup the shard refused was reported, none that it did not get
      expect(received).toBeGreaterThan(0);
      expect(mismatches).toBe(received);
      expect(client.up).toBe(false);
    });

    it('of the same version gets the rows and reports nothing', async () => {
      let mismatches = 0;
      const client = new ShardClient({ shard: 0, endpoint, tables: [3], clock: realClock, version, onVersionMismatch: () => mismatches++ });
      const [out] = await client.lookup({ batch: 1, lookups }, deadline());
      client.stop();
      expect(Array.from(out!.values)).toEqual([3008, 3009, 3010, 3011]);
      expect(mismatches).toBe(0);
      expect(client.up).toBe(true);
    });
  });
});

describe('the main role', () => {
  const dir = mkdtempSync(join(tmpdir(), 'recshard-http-'));
  const state: ServerState = { stopping: false, notReady: () => (state.predictor ? undefined : 'loading model'), checks: () => [] };
  const metrics = new ServerMetrics('m', 'main');
  const app = buildServerApp(state, { model: 'm', role: 'main', limits, maxBodyBytes: 1 << 16, ...serving, metrics, log: silentLogger });
  let main: MainRole;
  let info: ModelInfo;

  beforeAll(async () => {
    const r = resolveSpec({
      model: {
        architecture: 'custom',
        denseFeatures: 3,
        bottomMLP: [4],
        topMLP: [4, 1],
        interaction: 'dot',
        tables: [
          { name: 'a', rows: 30, dim: 4 },
          { name: 'b', rows: 9, dim: 4, poolingFactor: 2 },
        ],
      },
      sharding: { strategy: 'monolithic' },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    generateModel({ name: 'm', model: r.spec.model, seed: 5, scale: 1, outDir: dir });
    const src = modelSource(dir);
    main = await loadMain(
      src,
      await readManifest(src),
      {
        plan: { model: 'm', version: '0a1b2c3d', main: { tables: ['a', 'b'] }, shards: [] },
        version,
        scheduling: { ...DEFAULT_SCHEDULING, workers: 0 },
        policy: 'fail',
        probeMs: 1000,
        log: silentLogger,
        clock: realClock,
      },
      metrics,
    );
  });
  afterAll(async () => {
    await main?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says it is loading until the predictor is there', async () => {
    const r = await request(app).get('/v1/models/m');
    expect(r.status).toBe(503);
    expect(r.body.error).toEqual({ code: 'NOT_READY', message: 'loading model' });
    state.predictor = main.predictor;
    info = (await request(app).get('/v1/models/m').expect(200)).body;
    expect(info).toMatchObject({
      name: 'm',
      architecture: 'custom',
      denseFeatures: 3,
      interaction: 'dot',
      outputs: 1,
      scheduler: { mode: 'auto', batchSize: 64 },
    });
    expect(info.tables.map((t) => [t.name, t.rows, t.dim, t.poolingFactor])).toEqual([
      ['a', 30, 4, 1],
      ['b', 9, 4, 2],
    ]);
  });

  it('predicts the same scores from JSON and from the binary form the load generator sends', async () => {
    const [q] = buildQueries(info, { sizes: { kind: 'fixed', size: 3 }, zipf: 0, seed: 2, pool: 1 });
    const binary = await bytes(request(app).post('/v1/models/m:predict').set('content-type', PREDICT_CONTENT_TYPE).send(Buffer.from(q!.body)));
    expect(binary.status).toBe(200);
    const { batch, outputs, scores } = decodeScores(view(binary));
    expect([batch, outputs]).toEqual([3, 1]);
    // the same query, written as JSON from the binary body's own fields
    const u = new Uint32Array(q!.body.buffer, q!.body.byteOffset, q!.body.byteLength / 4);
    const dense = Array.from({ length: 3 }, (_, b) => Array.from(new Float32Array(u.buffer, u.byteOffset + 16 + b * 12, 3)));
    let p = 4 + 9 + 1;
    const sparse: Record<string, number[][]> = {};
    for (const name of ['a', 'b']) {
      p += 2;
      const offsets = Array.from(u.subarray(p, p + 4));
      p += 4;
      sparse[name] = [0, 1, 2].map((s) => Array.from(u.subarray(p + offsets[s]!, p + offsets[s + 1]!)));
      p += offsets[3]!;
    }
    const json = await request(app).post('/v1/models/m:predict').send({ dense, sparse }).expect(200);
    expect(json.body.scores).toEqual(Array.from(scores).map((s) => [s]));
    expect(json.body.model).toBe('m');
  });

  it('serves a binary predict on the fast path and, for any variant of it, through express with the same bytes and errors', async () => {
    const [q] = buildQueries(info, { sizes: { kind: 'fixed', size: 4 }, zipf: 0, seed: 3, pool: 1 });
    const body = Buffer.from(q!.body);
    const post = (path: string, type: string, b: Buffer) => bytes(request(app).post(path).set('content-type', type).send(b));
    const before = metrics.errors.get();
    const fast = await post('/v1/models/m:predict', PREDICT_CONTENT_TYPE, body);
    const viaExpress = await post('/v1/models/m:predict?trace=1', `${PREDICT_CONTENT_TYPE}; v=1`, body);
    expect([fast.status, viaExpress.status]).toEqual([200, 200]);
    expect(fast.headers['content-type']).toBe(PREDICT_CONTENT_TYPE);
    expect(Buffer.compare(view(fast), view(viaExpress))).toBe(0);
    // a truncated body: the same catalogue reply from both paths
    const bad = body.subarray(0, 20);
    const e1 = await post('/v1/models/m:predict', PREDICT_CONTENT_TYPE, bad);
    const e2 = await post('/v1/models/m:predict?x', PREDICT_CONTENT_TYPE, bad);
    expect(e1.status).toBeGreaterThanOrEqual(400);
    expect(e1.status).toBeLessThan(500);
    expect([e2.status, e2.headers['content-type']]).toEqual([e1.status, e1.headers['content-type']]);
    const json = (r: Response) => JSON.parse(Buffer.from(r.body as Buffer).toString()) as { error: { code: string; message: string } };
    expect(json(e1)).toEqual(json(e2));
    expect(json(e1).error.code).toMatch(/^[A-Z_]+$/);
    const counted = (await metrics.errors.get()).values.reduce((n, v) => n + v.value, 0) - (await before).values.reduce((n, v) => n + v.value, 0);
    expect(counted).toBe(2);
    // a server shutting down closes each connection after its reply, on the fast path too
    state.stopping = true;
    try {
      const last = await post('/v1/models/m:predict', PREDICT_CONTENT_TYPE, body);
      expect([last.status, last.headers.connection]).toEqual([200, 'close']);
    } finally {
      state.stopping = false;
    }
  });

  it.each([
    ['an unknown table', { dense: [[0, 0, 0]], sparse: { zz: [[1]] } }, 400, 'UNKNOWN_TABLE', 'sparse.zz: the model has no table "zz"'],
    ['a row out of range', { dense: [[0, 0, 0]], sparse: { b: [[9]] } }, 400, 'INDEX_OUT_OF_RANGE', 'sparse.b[0][0] = 9 is out of range: table "b" has 9 rows'],
    ['a short dense row', { dense: [[0, 0]] }, 400, 'INVALID_FIELD', 'dense[0] has 2 values; the model takes 3'],
    ['too many samples', { dense: Array.from({ length: 65 }, () => [0, 0, 0]) }, 413, 'BATCH_TOO_LARGE', 'batch of 65 samples exceeds the limit of 64'],
  ])('refuses %s with a 4xx that names the field', async (_name, body, status, code, message) => {
    const r = await request(app).post('/v1/models/m:predict').send(body);
    expect(r.status).toBe(status);
    expect(r.body.error).toEqual({ code, message });
  });

  it("maps the body parser's and the router's failures into the catalogue", async () => {
    const badJson = await request(app).post('/v1/models/m:predict').set('content-type', 'application/json').send('{"dense": [');
    expect([badJson.status, badJson.body.error.code]).toEqual([400, 'INVALID_JSON']);
    const big = await request(app)
      .post('/v1/models/m:predict')
      .set('content-type', 'application/json')
      .send(`{"dense": [${'0,'.repeat(40_000)}0]}`);
    expect([big.status, big.body.error.code]).toEqual([413, 'BODY_TOO_LARGE']);
    const verb = await request(app).post('/v1/models/m:explain').send({});
    expect([verb.status, verb.body.error.code]).toEqual([404, 'MODEL_NOT_FOUND']);
    const other = await request(app).get('/v1/models/other');
    expect(other.body.error).toEqual({ code: 'MODEL_NOT_FOUND', message: 'this server serves model m' });
    const text = (await request(app).get('/metrics')).text;
    expect(text).toMatch(/^recshard_errors_total\{model="m",role="main",code="INVALID_JSON"\} 1$/m);
    expect(text).toMatch(/^recshard_request_duration_seconds_count\{model="m",role="main",stage="end_to_end",shard=""\} \d+$/m);
  });
});
