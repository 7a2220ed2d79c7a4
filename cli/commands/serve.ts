// `recshard serve --local`: the main and each sparse shard of a RecModel (each shard in --shard-replicas processes)
// as supervised processes on loopback, until a signal. Each child exits with this process, however it ends.
import { int } from '../errors.js';
import { serveLocal } from '../local.js';
import { schedulingOf, type SchedulingFlags } from './load.js';
import { readModels } from './plan.js';

export interface ServeFlags extends SchedulingFlags {
  local: string;
  model?: string;
  scale: string;
  seed: string;
  shardReplicas?: string;
}

export async function serveCommand(opts: ServeFlags, print: (line: string) => void): Promise<void> {
  const rm = readModels(opts.local)[0]!;
  const shardReplicas = int('shard-replicas', opts.shardReplicas ?? '1', 1);
  const d = await serveLocal(rm, {
    modelDir: opts.model,
    scale: Number(opts.scale),
    seed: Number(opts.seed),
    shardReplicas,
    ...schedulingOf(opts),
    log: print,
  });
  const replicas = shardReplicas > 1 ? ` x ${shardReplicas} replicas` : '';
  print(`${rm.metadata.name}: ${d.plan.strategy}, ${d.plan.shards.length} sparse shard(s)${replicas}, model in ${d.modelDir}`);
  const width = Math.max(8, ...d.processes.map((p) => p.name.length));
  for (const p of d.processes) print(`  ${p.name.padEnd(width)} http://127.0.0.1:${p.port}`);
  print(`predict: POST ${d.predictUrl}   (Ctrl-C stops)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await d.stop();
}
