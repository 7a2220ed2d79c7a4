// The recshard command line: each command is a function in commands/ that returns its output (tested directly);
// this file wires them into commander.
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { ARCHITECTURES } from '../models/zoo.js';
import type { OutputFormat } from '../operator/planner/format.js';
import { capacityCommand, formatLoadResult, loadCommand, type CapacityFlags, type LoadFlags } from './commands/load.js';
import { generateCommand } from './commands/model.js';
import { hpaRulesCommand, planCommand } from './commands/plan.js';
import { serveCommand, type ServeFlags } from './commands/serve.js';
import { CliError } from './errors.js';

function planCommands(program: Command): void {
  program
    .command('plan')
    .description('print the shard plan of a RecModel file: tables, bytes, capacity and expected lookups per shard')
    .argument('<file>', 'RecModel YAML or JSON (several documents allowed)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json', 'yaml']).default('table'))
    .action((file: string, opts: { output: OutputFormat }) => {
      process.stdout.write(planCommand(file, opts.output));
    });
  program
    .command('hpa-rules')
    .description('print the prometheus-adapter externalRules that serve the latency metric of LatencyScalingPolicies with actuator HPA')
    .argument('<file>', 'YAML or JSON with one or more LatencyScalingPolicy documents')
    .action((file: string) => {
      process.stdout.write(hpaRulesCommand(file));
    });
}

function modelCommands(program: Command): void {
  program
    .command('model')
    .description('model artifacts')
    .command('generate')
    .description('write a DeepRecInfra model with deterministic random weights (manifest, ONNX dense nets, table files)')
    .addOption(new Option('--arch <arch>', 'architecture').choices(ARCHITECTURES).makeOptionMandatory())
    .option('--scale <s>', 'multiply table rows (a laptop-sized model: 0.001)', '0.001')
    .option('--seed <n>', 'random seed; the same seed gives the same bytes', '1')
    .requiredOption('--out <dir>', 'output directory')
    .option(
      '--chunk-size <quantity>',
      'tables larger than this are written as chunk files of this size (a shard holding some rows reads only their chunks)',
      '64Mi',
    )
    .action((opts: { arch: string; scale: string; seed: string; out: string; chunkSize: string }) => {
      process.stdout.write(generateCommand(opts.arch, Number(opts.scale), Number(opts.seed), opts.out, opts.chunkSize));
    });
}

/** The main's scheduling, for a RecModel served with --local (overrides its spec.serving). */
function withScheduling(cmd: Command): Command {
  return cmd
    .addOption(new Option('--scheduler <mode>', 'local main: auto tunes the batch size online, fixed uses --batch-size').choices(['auto', 'fixed']))
    .option('--batch-size <n>', 'local main: samples per request part (B)')
    .option('--workers <n>', 'local main: worker threads (0 = on the event loop)');
}

/** The options load and bench capacity share: where the main is, and what queries to send it. */
function withTargetAndWorkload(cmd: Command): Command {
  cmd
    .option('--url <url>', 'base URL of a main, e.g. http://127.0.0.1:8080')
    .option('--model <name>', 'model name at that URL')
    .option('--local <file>', 'bring up the RecModel in this file locally (as serve --local) and load it')
    .option('--sizes <spec>', 'query sizes: fixed:N, normal:MEAN,SD, lognormal:MU,SIGMA, production, file:PATH', 'production')
    .option('--zipf <s>', 'Zipf exponent of row popularity (0 = uniform)', '0')
    .option('--seed <n>', 'seed of sizes, rows and arrivals', '1')
    .option('--timeout-ms <n>', 'client timeout per query', '5000')
    .option('--deadline-ms <n>', "each query's budget, sent to the main as x-recshard-timeout-ms (default: the main's --deadline-ms)")
    .option('--pool <n>', 'distinct queries generated and cycled', '256')
    .option('--scale <s>', 'row scale of a model generated for --local', '0.001');
  return withScheduling(cmd);
}

function servingCommands(program: Command): void {
  withScheduling(program.command('serve'))
    .description('serve a RecModel locally: the main and each sparse shard as processes on loopback')
    .requiredOption('--local <file>', 'RecModel file (the first RecModel in it)')
    .option('--model <dir>', 'model directory (default: generate one from the RecModel)')
    .option('--scale <s>', 'row scale of a generated model', '0.001')
    .option('--seed <n>', 'seed of a generated model', '1')
    .option('--shard-replicas <n>', 'processes per sparse shard, each on its own port (the main balances over them)', '1')
    .action((opts: ServeFlags) => serveCommand(opts, (l) => console.log(l)));
  withTargetAndWorkload(program.command('load').description('open-loop DeepRecInfra load against a main (Poisson arrivals, HDR latency histogram)'))
    .option('--qps <n>', 'offered queries per second', '50')
    .option('--duration <s>', 'seconds of load', '10')
    .option('--json <file>', 'write the results as JSON to this file')
    .option('--record <file>', 'write every answer as a JSON line (query index, due time, latency, status, scores or error)')
    .action(async (opts: LoadFlags) => {
      // Ctrl-C or SIGTERM ends the run early: answers in flight are waited for and the results still written
      const stop = new AbortController();
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
      const result = await loadCommand(opts, process.stderr.isTTY === true, stop.signal);
      process.stdout.write(formatLoadResult(result));
      if (opts.json) writeFileSync(opts.json, JSON.stringify(result, null, 2) + '\n');
    });
  const bench = program.command('bench').description('benchmarks');
  withTargetAndWorkload(bench.command('capacity').description('latency-bounded throughput: the highest QPS whose tail latency stays under the target'))
    .option('--target-ms <ms>', "latency target (default: the RecModel's spec.serving.latencyTarget)")
    .option('--percentile <p>', 'percentile held under the target', '95')
    .option('--level-seconds <s>', 'seconds of load at each level', '5')
    .option('--start-qps <n>', 'first load level', '5')
    .option('--precision <r>', 'stop when the failing level is within this ratio of the passing one', '1.1')
    .option('--max-levels <n>', 'at most this many levels', '12')
    .option('--json <file>', 'write the search as JSON')
    .action(async (opts: CapacityFlags) => {
      const r = await capacityCommand(opts, (l) => process.stderr.write(`${l}\n`));
      process.stdout.write(
        `${r.model}: latency-bounded throughput ${r.qps} QPS at p${r.percentile} <= ${r.targetMs} ms (query sizes ${r.sizes}, ${r.levels.length} levels)\n`,
      );
      if (opts.json) writeFileSync(opts.json, JSON.stringify(r, null, 2) + '\n');
    });
}

export function buildProgram(name = 'recshard'): Command {
  const program = new Command(name).description('Serve sharded neural recommendation models on Kubernetes').showHelpAfterError();
  planCommands(program);
  modelCommands(program);
  servingCommands(program);
  return program;
}

export async function main(argv: string[], name?: string): Promise<void> {
  try {
    await buildProgram(name).parseAsync(argv);
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}
