// `recshard serve --local`: the main and each sparse shard of a RecModel as processes on loopback, until a signal.
import { serveLocal } from '../local.js';
import { schedulingOf, type SchedulingFlags } from './load.js';
import { readModels } from './plan.js';

export interface ServeFlags extends SchedulingFlags {
  local: string;
  model?: string;
  scale: string;
  seed: string;
}

export async function serveCommand(opts: ServeFlags, print: (line: string) => void): Promise<void> {
  const rm = readModels(opts.local)[0]!;
  const d = await serveLocal(rm, { modelDir: opts.model, scale: Number(opts.scale), seed: Number(opts.seed), ...schedulingOf(opts), log: print });
  print(`${rm.metadata.name}: ${d.plan.strategy}, ${d.plan.shards.length} sparse shard(s), model in ${d.modelDir}`);
  for (const p of d.processes) print(`  ${p.name.padEnd(8)} http://127.0.0.1:${p.port}`);
  print(`predict: POST ${d.predictUrl}   (Ctrl-C stops)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await d.stop();
}
