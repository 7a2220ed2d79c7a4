// Checks that the PyTorch baseline (bench/torch/dlrm.py) computes what recshard computes: the same binary
// predict bodies posted to recshard's monolithic local server and to the torch server of the same model
// directory must give the same scores within 1e-5 relative, for a dot model (DLRM-RMC1), a concat model without
// a bottom MLP (Wide&Deep) and fp16 tables (no example has them, so DLRM-RMC1 with its tables made fp16), each
// with sum pooling, mean pooling and a request that leaves tables out. Exits non-zero on a mismatch.
//   npx tsx bench/torch-check.ts
import type { ModelInfo } from '../contracts/model-info.js';
import { decodePredict, decodeScores, encodePredict, PREDICT_CONTENT_TYPE } from '../contracts/wire/predict.js';
import type { RecModel } from '../operator/api/v1alpha1/index.js';
import { example, log, queries, serve } from './lib.js';
import { startTorchServer, torchPython, torchVersions } from './torch.js';

const TOLERANCE = 1e-5;

async function post(url: string, body: Uint8Array): Promise<{ status: number; bytes: Uint8Array }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': PREDICT_CONTENT_TYPE }, body: body as unknown as BodyInit });
  return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
}

async function scores(url: string, body: Uint8Array): Promise<Float32Array> {
  const r = await post(url, body);
  if (r.status !== 200) throw new Error(`${url} answered ${r.status}: ${new TextDecoder().decode(r.bytes)}`);
  return decodeScores(r.bytes).scores;
}

/** The same request with mean pooling (word 3 of the header). */
function withMean(body: Uint8Array): Uint8Array {
  const copy = body.slice();
  new Uint32Array(copy.buffer)[3] = 1;
  return copy;
}

/** The same request naming only the even tables: the others must pool to zeros. */
function evenTablesOnly(body: Uint8Array, info: ModelInfo): Uint8Array {
  const tables: { table: number; offsets: Uint32Array; indices: Uint32Array }[] = [];
  const h = decodePredict(body, { maxBatch: 1 << 20, denseFeatures: info.denseFeatures }, (_, l) => {
    if (l.table % 2 === 0) tables.push({ table: l.table, offsets: l.offsets, indices: l.indices });
  });
  return encodePredict(h.batch, info.denseFeatures, h.pooling, h.dense, tables);
}

/** An fp16 copy of an example: every table group stored as fp16. */
function asFp16(rm: RecModel, name: string): RecModel {
  const model = { ...rm.spec.model, tableGroups: rm.spec.model.tableGroups?.map((g) => ({ ...g, dtype: 'fp16' as const })) };
  return { ...rm, metadata: { ...rm.metadata, name }, spec: { ...rm.spec, model } };
}

async function check(python: string, label: string, rm: RecModel): Promise<number> {
  const { d, info } = await serve(rm);
  const torch = await startTorchServer(python, d.modelDir, rm.metadata.name).catch(async (e: unknown) => {
    await d.stop();
    throw e;
  });
  try {
    let maxRel = 0;
    let lo = Infinity;
    let hi = -Infinity;
    const variants: Record<string, number> = {};
    for (const q of queries(info, 'fixed:64', 8)) {
      for (const [variant, body] of [
        ['sum', q.body],
        ['mean', withMean(q.body)],
        ['some tables', evenTablesOnly(q.body, info)],
      ] as const) {
        const [want, got] = await Promise.all([scores(d.predictUrl, body), scores(torch.predictUrl, body)]);
        if (want.length !== got.length) throw new Error(`${label} ${variant}: ${got.length} scores from torch, ${want.length} from recshard`);
        for (let i = 0; i < want.length; i++) {
          const diff = Math.abs(got[i]! - want[i]!) / Math.max(Math.abs(want[i]!), 1e-12);
          const rel = Number.isNaN(diff) ? Infinity : diff; // a NaN score is a mismatch, not a pass
          maxRel = Math.max(maxRel, rel);
          variants[variant] = Math.max(variants[variant] ?? 0, rel);
          lo = Math.min(lo, want[i]!);
          hi = Math.max(hi, want[i]!);
        }
      }
    }
    // equal scores mean equal computations only if the scores depend on the inputs
    if (hi - lo < 1e-4) throw new Error(`${label}: recshard's scores barely vary (${lo} .. ${hi}); the check would prove nothing`);
    // a bad request is refused with a 400 and the server goes on serving
    const bad = queries(info, 'fixed:4', 1)[0]!.body.slice();
    new Uint32Array(bad.buffer)[3] = 7;
    const refused = await post(torch.predictUrl, bad);
    if (refused.status !== 400) throw new Error(`${label}: torch answered ${refused.status} to an invalid pooling, not 400`);
    if (!(await fetch(`${torch.url}/healthz`)).ok) throw new Error(`${label}: torch server unhealthy after a bad request`);
    const per = Object.entries(variants)
      .map(([v, r]) => `${v} ${r.toExponential(2)}`)
      .join(', ');
    log(`${label}: max relative difference ${maxRel.toExponential(2)} (${per}); scores ${lo.toFixed(4)} .. ${hi.toFixed(4)}`);
    return maxRel;
  } finally {
    await Promise.all([torch.stop(), d.stop()]);
  }
}

const python = await torchPython();
log(`torch baseline: ${JSON.stringify(torchVersions(python))}`);
const rmc1 = example('dlrm-rmc1.yaml'); // the first RecModel of each example file is its monolithic one
const cases: [string, RecModel][] = [
  ['dlrm-rmc1 (dot, fp32)', rmc1],
  ['wide-and-deep (concat, no bottom MLP)', example('wide-and-deep.yaml')],
  ['dlrm-rmc1 fp16 tables', asFp16(rmc1, 'rmc1-fp16')],
];
let failed = false;
for (const [label, rm] of cases) {
  const rel = await check(python, label, rm);
  if (!(rel <= TOLERANCE)) {
    log(`${label}: MISMATCH, over ${TOLERANCE} relative`);
    failed = true;
  }
}
log(failed ? 'torch-check: FAILED' : `torch-check: every model within ${TOLERANCE} relative`);
process.exit(failed ? 1 : 0);
