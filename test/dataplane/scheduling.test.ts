// DeepRecSched in the main: a query split into parts of B samples across worker threads scores like the query
// run whole on the event loop, the parts really are B samples each, and the scheduler's state is visible in
// /metrics and the model metadata the operator reads into status.
import { afterAll, describe, expect, it } from 'vitest';
import { serveLocal, type LocalDeployment } from '../../cli/local.js';
import { modelSource, readManifest } from '../../shard-server/model/load.js';
import { predict, randomRequest, zooRecModel } from './helpers.js';

const running: LocalDeployment[] = [];
afterAll(async () => void (await Promise.all(running.map((d) => d.stop()))));

const metric = async (url: string, name: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name));
};

async function serve(name: string, o: { scheduler: 'auto' | 'fixed'; batchSize: number; workers: number }) {
  const d = await serveLocal(zooRecModel('dlrm-rmc1', name, { strategy: 'load-balanced', shards: 2 }), { scale: 0.001, seed: 11, ...o });
  running.push(d);
  return d;
}

describe('request splitting', () => {
  it('scores a 37-sample query the same whole on the event loop, whole on workers, and in parts of 5 and of 1', async () => {
    const configs = [
      { scheduler: 'fixed' as const, batchSize: 1024, workers: 0 },
      { scheduler: 'fixed' as const, batchSize: 1024, workers: 2 },
      { scheduler: 'fixed' as const, batchSize: 5, workers: 2 },
      { scheduler: 'fixed' as const, batchSize: 1, workers: 1 },
    ];
    const ds = await Promise.all(configs.map((c, i) => serve(`rmc1-split-${i}`, c)));
    const m = await readManifest(modelSource(ds[0]!.modelDir));
    const body = randomRequest(m, 37, 4);
    const scores: number[][] = [];
    for (const d of ds) {
      const r = await predict(d.predictUrl, body);
      expect(r.status).toBe(200);
      scores.push((r.json.scores as number[][]).flat());
    }
    for (const s of scores.slice(1)) s.forEach((v, i) => expect(v).toBeCloseTo(scores[0]![i]!, 5));

    // ceil(37 / 5) = 8 parts, each with its own shard calls, run on the workers
    expect(await metric(ds[2]!.mainUrl, 'recshard_request_parts_total')).toEqual([expect.stringMatching(/executor="cpu"} 8$/)]);
    expect(await metric(ds[3]!.mainUrl, 'recshard_request_parts_total')).toEqual([expect.stringMatching(/} 37$/)]);
    expect(await metric(ds[1]!.mainUrl, 'recshard_request_parts_total')).toEqual([expect.stringMatching(/} 1$/)]);
  });

  it('reports the scheduler in /metrics and in the model metadata', async () => {
    const d = await serve('rmc1-auto', { scheduler: 'auto', batchSize: 48, workers: 2 });
    expect(await metric(d.mainUrl, 'recshard_scheduler_batch_size')).toEqual(['recshard_scheduler_batch_size{model="rmc1-auto",role="main",mode="auto"} 48']);
    const info = (await (await fetch(`${d.mainUrl}/v1/models/rmc1-auto`)).json()) as { scheduler: unknown };
    expect(info.scheduler).toEqual({ mode: 'auto', batchSize: 48, windows: 0 });
  });
});
