// The main role's routes: the model's metadata (contracts/model-info.ts) and predictions, JSON or binary
// (contracts/wire/predict.ts), run by the Predictor.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Response, Router } from 'express';
import { DEGRADED_HEADER, modelPath, predictPath } from '../../../contracts/endpoints.js';
import { ErrorCode, ServeError } from '../../../contracts/errors.js';
import type { ModelInfo } from '../../../contracts/model-info.js';
import { encodeScores, PREDICT_CONTENT_TYPE } from '../../../contracts/wire/predict.js';
import { BufferPool } from '../../inference/buffer-pool.js';
import type { Predictor, PredictResult } from '../../inference/predictor.js';
import { parsePredict, parsePredictBinary, type Limits, type PredictInput } from '../../inference/request.js';
import { readBody } from '../buffers.js';
import type { FastRoute } from '../fast.js';
import type { ServerMetrics } from '../metrics.js';
import type { RequestScope, Track } from '../track.js';

export interface MainState {
  /** Set once the model is loaded. */
  predictor?: Predictor;
  notReady(): string | undefined;
}

export interface MainRouteOptions {
  model: string;
  limits: Limits;
  maxBodyBytes: number;
  /** JSON bodies' own limit: parsed, a JSON byte costs about 15 bytes of memory. */
  maxJsonBytes: number;
  metrics: ServerMetrics;
}

const isBinary = (req: Request) => req.is(PREDICT_CONTENT_TYPE) === PREDICT_CONTENT_TYPE;

/** A body of any type but the binary one, as JSON (UTF-8, the only charset JSON has), parsed; errors name what is wrong, never echo the body. */
function parseJsonBody(req: Request, bytes: Uint8Array): unknown {
  const charset = /charset=([^;\s]+)/i.exec(req.get('content-type') ?? '')?.[1]?.toLowerCase();
  if (charset && charset !== 'utf-8' && charset !== 'utf8')
    throw new ServeError(ErrorCode.UnsupportedMediaType, `unsupported charset ${JSON.stringify(charset)}: JSON is UTF-8`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ServeError(ErrorCode.InvalidJson, 'body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    // V8's message quotes the body around the error; only its position is said
    const at = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new ServeError(ErrorCode.InvalidJson, `body is not valid JSON${at !== undefined ? ` (at byte ${at})` : text.trim() ? '' : ' (it is empty)'}`);
  }
}

/** GET /v1/models/NAME: tables in protocol order, for clients that build requests (the load generator). */
export function modelInfo(model: string, p: Predictor): ModelInfo {
  const m = p.manifest;
  return {
    name: model,
    architecture: m.architecture,
    denseFeatures: m.denseFeatures,
    interaction: m.interaction,
    outputs: m.topMLP[m.topMLP.length - 1]!,
    scheduler: p.scheduler.state(),
    tables: m.tables.map((t) => ({ name: t.name, rows: t.rows, dim: t.dim, dtype: t.dtype, net: t.net, poolingFactor: t.poolingFactor })),
  };
}

function replyBinary(res: ServerResponse, input: PredictInput, result: PredictResult): void {
  const out = encodeScores(input.batch, result.outputs, result.scores);
  const headers: Record<string, string | number> = { 'content-type': PREDICT_CONTENT_TYPE, 'content-length': out.byteLength };
  if (result.fallbacks.length) headers[DEGRADED_HEADER] = result.fallbacks.join(',');
  res.writeHead(200, headers);
  res.end(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
}

function replyJson(res: Response, model: string, input: PredictInput, result: PredictResult): void {
  const scores: number[][] = [];
  for (let b = 0; b < input.batch; b++) scores.push(Array.from(result.scores.subarray(b * result.outputs, (b + 1) * result.outputs)));
  res.json({ model, scores, ...(result.fallbacks.length ? { degraded: { zeroEmbeddingShards: result.fallbacks } } : {}) });
}

/**
 * The express routes of the main, and its hot one (a binary predict) as a fast route that the server takes before
 * express (http/fast.ts); express serves the same predict for any other request that reaches it.
 */
export function mainRoutes(app: Router, state: MainState, o: MainRouteOptions, track: Track): FastRoute {
  const m = o.metrics;
  const parts = { cpu: m.parts.labels({ ...m.labels, executor: 'cpu' }), accelerator: m.parts.labels({ ...m.labels, executor: 'accelerator' }) };
  const hooks = {
    stage: (stage: string, seconds: number, shard?: number) => m.stage(stage, shard === undefined ? '' : String(shard)).observe(seconds),
    fallback: (shard: number) => m.fallbacks.inc(m.shardLabels(shard)),
  };
  const ready = () => {
    const p = state.predictor;
    if (!p) throw new ServeError(ErrorCode.NotReady, state.notReady() ?? 'not ready');
    return p;
  };
  app.get(`${modelPath(':name')}`, (req, res) => {
    if (req.params.name !== o.model) throw new ServeError(ErrorCode.ModelNotFound, `this server serves model ${o.model}`);
    res.json(modelInfo(o.model, ready()));
  });

  const tableIndex = new Map<string, number>();
  const predict = async (p: Predictor, raw: Uint8Array | undefined, json: unknown, scope: RequestScope) => {
    if (!tableIndex.size) p.manifest.tables.forEach((t, i) => tableIndex.set(t.name, i));
    const input = raw !== undefined ? parsePredictBinary(raw, p.manifest, o.limits) : parsePredict(json, p.manifest, o.limits, tableIndex);
    m.own.batch.observe(input.batch);
    const result = await p.predict(input, scope, hooks);
    parts[result.accelerator ? 'accelerator' : 'cpu'].inc(result.parts);
    let looked = 0;
    for (const s of input.sparse.values()) looked += s.indices.length;
    m.own.lookups.inc(looked);
    return { input, result };
  };
  const buffers = new BufferPool();
  const binary = async (req: IncomingMessage, res: ServerResponse, scope: RequestScope) => {
    const p = ready();
    const body = await readBody(req, buffers, o.maxBodyBytes, scope.signal);
    let r: Awaited<ReturnType<typeof predict>>;
    try {
      r = await predict(p, body, undefined, scope);
    } finally {
      // every view into the body is copied or encoded by the time predict settles
      buffers.release(body);
    }
    replyBinary(res, r.input, r.result);
  };
  app.post(
    `${modelPath(':target')}`,
    track(async (req: Request, res: Response, scope) => {
      // what can be refused without the body is refused before it is read
      if (req.params.target !== `${o.model}:predict`)
        throw new ServeError(ErrorCode.ModelNotFound, `no such endpoint: this server serves POST ${modelPath(o.model)}:predict`);
      if (isBinary(req)) return binary(req, res, scope);
      const p = ready();
      const body = await readBody(req, buffers, o.maxJsonBytes, scope.signal);
      try {
        const r = await predict(p, undefined, parseJsonBody(req, body), scope);
        replyJson(res, o.model, r.input, r.result);
      } finally {
        buffers.release(body);
      }
    }),
  );
  return { path: predictPath(o.model), contentType: PREDICT_CONTENT_TYPE, handle: track(binary) };
}
