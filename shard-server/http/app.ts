// The shard-server's HTTP layer (express): the main's predict API or the sparse shard's lookup API, plus
// /healthz, /readyz and /metrics. Inference code lives in ../inference and imports no web framework.
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../../operator/lib/log.js';
import type { LookupService } from '../inference/lookup-service.js';
import type { Predictor } from '../inference/predictor.js';
import { CONTENT_TYPE, PREDICT_CONTENT_TYPE, encodeScores } from '../inference/protocol.js';
import { parsePredict, parsePredictBinary, type Limits } from '../inference/request.js';
import { BufferPool } from '../inference/buffer-pool.js';
import { readBody } from './buffers.js';
import { ErrorCode, ServeError } from './errors.js';
import type { ServerMetrics } from './metrics.js';

const isBinary = (req: Request) => req.is(PREDICT_CONTENT_TYPE) === PREDICT_CONTENT_TYPE;

export interface ServerState {
  /** Set once the model is loaded. */
  predictor?: Predictor;
  lookup?: LookupService;
  /** Why the server is not ready (loading, a bad file, unreachable shards). */
  notReady(): string | undefined;
}

export interface AppOptions {
  model: string;
  role: 'main' | 'sparse';
  /** A sparse shard's index: its own stages carry it in the `shard` label, so one shard's series can be selected. */
  shard?: number;
  limits: Limits;
  maxBodyBytes: number;
  metrics: ServerMetrics;
  log: Logger;
  /**
   * Testing: every predict or lookup also waits for one serial lane and holds it this long, so the process
   * behaves as a single server with this service time (latency grows with load, replicas add capacity) while
   * using no CPU: the autoscaling end-to-end test runs many replicas on a 2-core machine with it. 0: off.
   */
  emulateServiceMs?: number;
}

export function buildServerApp(state: ServerState, o: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  // No ETags: every predict and lookup answer is fresh, and hashing a megabyte of pooled rows per call is waste.
  app.set('etag', false);
  const m = o.metrics;
  const labels = m.labels;
  const own = o.role === 'sparse' && o.shard !== undefined ? String(o.shard) : '';

  app.get('/healthz', (_req, res) => void res.type('text/plain').send('ok\n'));
  app.get('/readyz', (_req, res) => {
    const why = state.notReady();
    res.status(why ? 503 : 200).type('text/plain').send(why ? `${why}\n` : 'ok\n');
  });
  app.get('/metrics', async (_req, res) => void res.type(m.registry.contentType).send(await m.registry.metrics()));

  let lane = Promise.resolve();
  const emulateMs = o.emulateServiceMs ?? 0;
  const emulated = async () => {
    const before = lane;
    let release = () => {};
    lane = new Promise<void>((r) => (release = r));
    await before;
    await new Promise((r) => setTimeout(r, emulateMs));
    release();
  };
  const track = (handler: (req: Request, res: Response) => Promise<void>) => async (req: Request, res: Response, next: NextFunction) => {
    m.inflight.inc(labels);
    const end = m.duration.startTimer({ ...labels, stage: 'end_to_end', shard: own });
    try {
      if (emulateMs > 0) await emulated();
      await handler(req, res);
    } catch (e) {
      next(e);
    } finally {
      end();
      m.inflight.dec(labels);
    }
  };

  if (o.role === 'main') {
    const tableIndex = new Map<string, number>();
    // Model metadata, for clients that build requests (the load generator): tables in protocol order.
    app.get('/v1/models/:name', (req, res) => {
      const p = state.predictor;
      if (req.params.name !== o.model) throw new ServeError(ErrorCode.ModelNotFound, `this server serves model ${o.model}`);
      if (!p) throw new ServeError(ErrorCode.NotReady, state.notReady() ?? 'not ready');
      const m = p.manifest;
      res.json({
        name: o.model, architecture: m.architecture, denseFeatures: m.denseFeatures, interaction: m.interaction,
        outputs: m.topMLP[m.topMLP.length - 1], scheduler: p.scheduler.state(), tables: m.tables.map((t) => ({ name: t.name, rows: t.rows, dim: t.dim, dtype: t.dtype, net: t.net, poolingFactor: t.poolingFactor })),
      });
    });
    const buffers = new BufferPool();
    app.post(
      '/v1/models/:target',
      express.json({ limit: o.maxBodyBytes, strict: false, type: (req) => !isBinary(req as Request) }),
      track(async (req, res) => {
        const raw = isBinary(req) ? await readBody(req, buffers, o.maxBodyBytes) : undefined;
        try {
          await predict(req, res, raw);
        } finally {
          // every view into the body is copied or encoded by the time predict settles
          if (raw) buffers.release(raw);
        }
      }),
    );
    const predict = async (req: Request, res: Response, raw: Uint8Array | undefined) => {
      if (req.params.target !== `${o.model}:predict`) throw new ServeError(ErrorCode.ModelNotFound, `no such endpoint: this server serves POST /v1/models/${o.model}:predict`);
      const p = state.predictor;
      if (!p) throw new ServeError(ErrorCode.NotReady, state.notReady() ?? 'not ready');
      if (!tableIndex.size) p.manifest.tables.forEach((t, i) => tableIndex.set(t.name, i));
      const binary = raw !== undefined;
      const input = binary ? parsePredictBinary(raw, p.manifest, o.limits) : parsePredict(req.body, p.manifest, o.limits, tableIndex);
      m.batch.observe(labels, input.batch);
      const result = await p.predict(input, {
        stage: (stage, seconds, shard) => m.duration.observe({ ...labels, stage, shard: shard === undefined ? '' : String(shard) }, seconds),
        fallback: (shard) => m.fallbacks.inc({ model: o.model, shard: String(shard) }),
      });
      m.parts.inc({ ...labels, executor: result.accelerator ? 'accelerator' : 'cpu' }, result.parts);
      let looked = 0;
      for (const s of input.sparse.values()) looked += s.indices.length;
      m.lookups.inc(labels, looked);
      if (binary) {
        const out = encodeScores(input.batch, result.outputs, result.scores);
        if (result.fallbacks.length) res.setHeader('x-recshard-zero-embedding-shards', result.fallbacks.join(','));
        res.type(PREDICT_CONTENT_TYPE).send(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
        return;
      }
      const scores: number[][] = [];
      for (let b = 0; b < input.batch; b++) scores.push(Array.from(result.scores.subarray(b * result.outputs, (b + 1) * result.outputs)));
      res.json({ model: o.model, scores, ...(result.fallbacks.length ? { degraded: { zeroEmbeddingShards: result.fallbacks } } : {}) });
    };
  } else {
    const buffers = new BufferPool();
    app.post(
      '/v1/lookup',
      (req, _res, next) => next(req.is(CONTENT_TYPE) ? undefined : new ServeError(ErrorCode.UnsupportedMediaType, `content-type must be ${CONTENT_TYPE}`)),
      track(async (req, res) => {
        const svc = state.lookup;
        if (!svc) throw new ServeError(ErrorCode.NotReady, state.notReady() ?? 'not ready');
        const body = await readBody(req, buffers, o.maxBodyBytes);
        const t = performance.now();
        let out: ReturnType<LookupService['handle']>;
        try {
          out = svc.handle(body, (bytes) => buffers.acquire(bytes));
        } finally {
          buffers.release(body);
        }
        m.duration.observe({ ...labels, stage: 'lookup', shard: own }, (performance.now() - t) / 1000);
        m.batch.observe(labels, out.batch);
        m.lookups.inc(labels, out.lookups);
        // the response buffer goes back to the pool once the socket is done with it
        let released = false;
        const release = () => {
          if (!released) buffers.release(out.response);
          released = true;
        };
        res.once('finish', release);
        res.once('close', release);
        res.type(CONTENT_TYPE).send(Buffer.from(out.response.buffer, out.response.byteOffset, out.response.byteLength));
      }),
    );
  }

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new ServeError(ErrorCode.NotFound, 'no such endpoint')));
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = toServeError(err);
    m.errors.inc({ ...labels, code: e.kind.code });
    if (e.status >= 500) o.log.error('request failed', { code: e.kind.code, error: e.message });
    else o.log.debug('request rejected', { code: e.kind.code, error: e.message });
    res.status(e.status).json(e.body());
  });
  return app;
}

/** Maps body-parser and unknown errors into the catalogue. */
function toServeError(err: unknown): ServeError {
  if (err instanceof ServeError) return err;
  const type = (err as { type?: string }).type;
  if (type === 'entity.parse.failed') return new ServeError(ErrorCode.InvalidJson, `body is not valid JSON: ${(err as Error).message}`);
  if (type === 'entity.too.large') return new ServeError(ErrorCode.BodyTooLarge, `body exceeds the limit of ${(err as { limit?: number }).limit} bytes`);
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return new ServeError(ErrorCode.UnsupportedMediaType, (err as Error).message);
  if (type === 'request.aborted' || type === 'request.size.invalid' || (err as { status?: number }).status === 400) return new ServeError(ErrorCode.InvalidRequest, (err as Error).message);
  return new ServeError(ErrorCode.Internal, (err as Error)?.message ?? String(err));
}
