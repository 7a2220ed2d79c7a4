#!/usr/bin/env node
// The shard-server process: flags (as the operator sets them in pods, or `recshard serve --local`), then
// startServer. SIGTERM drains in-flight requests before exit.
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { durationMs } from '../operator/lib/duration.js';
import { jsonLogger, type Level } from '../operator/lib/log.js';
import { DEFAULT_SCHEDULING, readPlanFile, startServer } from './server.js';

const env = process.env;
const flags = new Command('shard-server')
  .addOption(new Option('--role <role>', 'main or sparse').choices(['main', 'sparse']).makeOptionMandatory())
  .option('--shard <n>', 'shard index (sparse)')
  .requiredOption('--plan <file>', 'plan.json (from the plan ConfigMap)')
  .option('--model-config <file>', 'model.json (from the plan ConfigMap); its artifact.uri locates the model')
  .option('--model <uri>', 'model directory or URL; overrides model.json', env.RECSHARD_MODEL_URI)
  .option('--host <addr>', 'listen address', '0.0.0.0')
  .option('--port <n>', 'listen port', '8080')
  .option('--deadline-ms <n>', 'deadline of one predict, shard calls included', env.RECSHARD_DEADLINE_MS ?? '1000')
  .addOption(new Option('--failure-policy <p>', 'when a shard fails: fail the request, or use zero embeddings').choices(['fail', 'zero']).default(env.RECSHARD_FAILURE_POLICY ?? 'fail'))
  .option('--max-batch <n>', 'samples per request', '1024')
  .option('--max-body-bytes <n>', 'request body limit (a 1,000-item RMC2 query is about 16 MiB)', String(64 * 2 ** 20))
  .option('--probe-ms <n>', 'how often the main checks each shard', '1000')
  .addOption(new Option('--scheduler <mode>', 'main: auto tunes the batch size B online; fixed uses --batch-size (default: model.json serving.scheduler, else auto)').choices(['auto', 'fixed']))
  .option('--batch-size <n>', 'main: split queries into parts of B samples (auto: where tuning starts; default: model.json serving.batchSize, else 64)')
  .option('--workers <n>', 'main: worker threads that run request parts; 0 runs them on the event loop (default: the cores available)')
  .option('--accelerator <provider>', 'main: onnxruntime execution provider for whole large queries, e.g. cuda (default none)', env.RECSHARD_ACCELERATOR ?? 'none')
  .option('--log-level <level>', 'debug, info, warn, error', env.RECSHARD_LOG_LEVEL ?? 'info')
  .option('--emulate-service-ms <n>', 'testing: every request also holds one serial lane for N ms, a server of 1000/N requests/s that uses no CPU (autoscaling tests on small machines)', '0')
  .parse(process.argv)
  .opts();

const log = jsonLogger(flags.logLevel as Level, { component: 'shard-server', role: flags.role, ...(flags.shard !== undefined ? { shard: Number(flags.shard) } : {}) });
const plan = await readPlanFile(flags.plan);
interface ModelConfig {
  artifact?: { uri?: string };
  serving?: { scheduler?: 'auto' | 'fixed'; batchSize?: number; percentile?: number; workers?: number; latencyTarget?: string };
}
const config: ModelConfig = flags.modelConfig ? (JSON.parse(await readFile(flags.modelConfig, 'utf8')) as ModelConfig) : {};
const modelUri: string | undefined = flags.model ?? config.artifact?.uri;
const serving = config.serving ?? {};
const num = (flag: string | undefined, fallback: number | undefined) => (flag === undefined ? fallback : Number(flag));

const server = await startServer({
  role: flags.role,
  shard: flags.shard === undefined ? undefined : Number(flags.shard),
  plan,
  modelUri,
  host: flags.host,
  port: Number(flags.port),
  deadlineMs: Number(flags.deadlineMs),
  policy: flags.failurePolicy,
  maxBatch: Number(flags.maxBatch),
  maxBodyBytes: Number(flags.maxBodyBytes),
  probeMs: Number(flags.probeMs),
  emulateServiceMs: Number(flags.emulateServiceMs),
  scheduling: {
    mode: flags.scheduler ?? serving.scheduler ?? DEFAULT_SCHEDULING.mode,
    batchSize: num(flags.batchSize, serving.batchSize) ?? DEFAULT_SCHEDULING.batchSize,
    percentile: serving.percentile ?? DEFAULT_SCHEDULING.percentile,
    targetMs: serving.latencyTarget !== undefined ? durationMs(serving.latencyTarget) : undefined,
    workers: num(flags.workers, serving.workers),
    accelerator: flags.accelerator,
  },
  log,
});
log.info('listening', { port: server.port });

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info('draining', { signal });
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
