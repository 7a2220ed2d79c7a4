#!/usr/bin/env node
// The shard-server process: flags (as the operator sets them in pods, or `recshard serve --local`), plan.json and
// model.json, then startServer. SIGTERM (or, under a Node parent, the parent's IPC channel closing) drains in-flight
// requests before exit.
import { readFile } from 'node:fs/promises';
import { parseModelConfig } from '../contracts/model-config.js';
import { parseServingPlan } from '../contracts/plan.js';
import { durationMs } from '../lib/duration.js';
import { jsonLogger, type Level } from '../lib/log.js';
import { parseQuantity } from '../lib/quantity.js';
import { parseFlags, type ParsedFlags } from './flags.js';
import { DEFAULT_SCHEDULING, startServer, type ServerOptions } from './server.js';

let flags: ParsedFlags;
try {
  flags = parseFlags(process.argv.slice(2));
} catch (e) {
  if ((e as { exitCode?: number }).exitCode === 0) process.exit(0);
  process.stderr.write(`shard-server: ${(e as Error).message}\n`);
  process.exit(2);
}

const log = jsonLogger(flags.logLevel as Level, { component: 'shard-server', role: flags.role, ...(flags.shard !== undefined ? { shard: flags.shard } : {}) });
// Started by a Node parent with an IPC channel (`recshard serve --local`): when the parent goes, however it goes
// (stopped, SIGKILLed, crashed), the channel closes and the process ends: at once while it loads, then as on SIGTERM.
// Pods have no channel.
let onParentGone: () => void = () => process.exit(0);
if (process.send) process.on('disconnect', () => onParentGone());

/** What stops the server before it serves (a port in use, a bad file): one line, exit 1. */
function fatal(e: unknown): never {
  log.error('cannot start', { error: (e as Error).message });
  process.exit(1);
}

/** plan.json and model.json; a file that cannot be read or says nothing usable ends the process, naming the field. */
async function readConfig() {
  try {
    const plan = parseServingPlan(await readFile(flags.plan, 'utf8'), flags.plan);
    const config = flags.modelConfig ? parseModelConfig(await readFile(flags.modelConfig, 'utf8'), flags.modelConfig) : undefined;
    return { plan, config };
  } catch (e) {
    return fatal(e);
  }
}
const { plan, config } = await readConfig();
const serving = config?.serving ?? {};

/** --tls-cert, --tls-key and --tls-ca go together. */
function tlsFiles(): Pick<ServerOptions, 'tls' | 'tlsReloadMs'> {
  const given = [flags.tlsCert, flags.tlsKey, flags.tlsCa].filter((f) => f !== undefined).length;
  if (given === 0) return {};
  if (given < 3) return fatal(new Error('--tls-cert, --tls-key and --tls-ca must be given together'));
  const reload = Number(process.env.RECSHARD_TLS_RELOAD_MS); // testing: how often the files are re-read
  return { tls: { cert: flags.tlsCert!, key: flags.tlsKey!, ca: flags.tlsCa! }, ...(reload > 0 ? { tlsReloadMs: reload } : {}) };
}

const options: ServerOptions = {
  role: flags.role,
  shard: flags.shard,
  plan,
  modelUri: flags.model ?? config?.artifact.uri,
  expectedModel: config?.model,
  host: flags.host,
  port: flags.port,
  ...(flags.metricsPort !== undefined ? { metricsPort: flags.metricsPort } : {}),
  deadlineMs: flags.deadlineMs,
  policy: flags.failurePolicy,
  maxBatch: flags.maxBatch,
  maxBodyBytes: flags.maxBodyBytes,
  maxJsonBytes: flags.maxJsonBytes,
  maxInflight: flags.maxInflight,
  maxQueue: flags.maxQueue,
  maxConnections: flags.maxConnections,
  probeMs: flags.probeMs,
  hedgePercentile: flags.hedgePercentile,
  hotRows: {
    bytes: flags.hotRowCacheBytes ?? (serving.hotRowCache !== undefined ? parseQuantity(serving.hotRowCache) : 0),
    refreshMs: flags.hotRowRefreshMs ?? 10_000,
  },
  emulateServiceMs: flags.emulateServiceMs,
  ...tlsFiles(),
  scheduling: {
    mode: flags.scheduler ?? serving.scheduler ?? DEFAULT_SCHEDULING.mode,
    batchSize: flags.batchSize ?? serving.batchSize ?? DEFAULT_SCHEDULING.batchSize,
    percentile: serving.percentile ?? DEFAULT_SCHEDULING.percentile,
    targetMs: serving.latencyTarget !== undefined ? durationMs(serving.latencyTarget) : undefined,
    workers: flags.workers ?? serving.workers,
    accelerator: flags.accelerator,
  },
  log,
};
const server = await startServer(options).catch(fatal);
log.info('listening', { port: server.port, metricsPort: server.metricsPort });

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info('shutting down', { signal, delayMs: flags.shutdownDelayMs });
  await server.close(10_000, flags.shutdownDelayMs);
  process.exit(0);
};
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
onParentGone = () => void stop('disconnect');
