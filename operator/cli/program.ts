// The recshard command line: commands as functions that return their output (tested directly), wired into commander.
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { parseAllDocuments } from 'yaml';
import { checkEnvelope, formatFieldErrors, resolveSpec, type RecModel } from '../api/v1alpha1/index.js';
import { formatPlan, type OutputFormat } from '../planner/format.js';
import { planModel } from '../planner/plan.js';
import { formatBytes } from '../lib/quantity.js';
import { generateModel } from '../../shard-server/model/generate.js';
import { ARCHITECTURES, ZOO } from '../../shard-server/model/zoo.js';
import { serveLocal } from '../../shard-server/local.js';

/** Thrown for user errors: printed without a stack, exit code 1. */
export class CliError extends Error {}

/** Reads every RecModel document of a YAML or JSON file. */
export function readRecModels(file: string): RecModel[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const docs = parseAllDocuments(text);
  const out: RecModel[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length) throw new CliError(`${file}: invalid YAML: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    const envelope = checkEnvelope(value);
    if (envelope.length) throw new CliError(`${file}: not a RecModel: ${formatFieldErrors(envelope)}`);
    out.push(value as RecModel);
  }
  if (!out.length) throw new CliError(`${file}: no RecModel found`);
  return out;
}

export function planCommand(file: string, format: OutputFormat): string {
  return readRecModels(file)
    .map((rm) => {
      const resolved = resolveSpec(rm.spec);
      if (!resolved.ok) throw new CliError(`RecModel ${rm.metadata.name} is invalid: ${formatFieldErrors(resolved.errors)}`);
      const result = planModel(resolved.spec);
      if (!result.ok) throw new CliError(`RecModel ${rm.metadata.name}: plan is ${result.error.reason}: ${result.error.message}`);
      return formatPlan(rm.metadata.name, result.plan, format);
    })
    .join(format === 'yaml' ? '---\n' : '\n');
}

export function buildProgram(name = 'recshard'): Command {
  const program = new Command(name).description('Serve sharded neural recommendation models on Kubernetes').showHelpAfterError();
  program
    .command('plan')
    .description('print the shard plan of a RecModel file: tables, bytes, capacity and expected lookups per shard')
    .argument('<file>', 'RecModel YAML or JSON (several documents allowed)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json', 'yaml']).default('table'))
    .action((file: string, opts: { output: OutputFormat }) => {
      process.stdout.write(planCommand(file, opts.output));
    });
  const model = program.command('model').description('model artifacts');
  model
    .command('generate')
    .description('write a DeepRecInfra model with deterministic random weights (manifest, ONNX dense nets, table files)')
    .addOption(new Option('--arch <arch>', 'architecture').choices(ARCHITECTURES).makeOptionMandatory())
    .option('--scale <s>', 'multiply table rows (a laptop-sized model: 0.001)', '0.001')
    .option('--seed <n>', 'random seed; the same seed gives the same bytes', '1')
    .requiredOption('--out <dir>', 'output directory')
    .action((opts: { arch: string; scale: string; seed: string; out: string }) => {
      process.stdout.write(generateCommand(opts.arch, Number(opts.scale), Number(opts.seed), opts.out));
    });
  program
    .command('serve')
    .description('serve a RecModel locally: the main and each sparse shard as processes on loopback')
    .requiredOption('--local <file>', 'RecModel file (the first RecModel in it)')
    .option('--model <dir>', 'model directory (default: generate one from the RecModel)')
    .option('--scale <s>', 'row scale of a generated model', '0.001')
    .option('--seed <n>', 'seed of a generated model', '1')
    .action(async (opts: { local: string; model?: string; scale: string; seed: string }) => {
      const rm = readRecModels(opts.local)[0]!;
      const d = await serveLocal(rm, { modelDir: opts.model, scale: Number(opts.scale), seed: Number(opts.seed), log: (l) => console.log(l) });
      console.log(`${rm.metadata.name}: ${d.plan.strategy}, ${d.plan.shards.length} sparse shard(s), model in ${d.modelDir}`);
      for (const p of d.processes) console.log(`  ${p.name.padEnd(8)} http://127.0.0.1:${p.port}`);
      console.log(`predict: POST ${d.predictUrl}   (Ctrl-C stops)`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await d.stop();
    });
  return program;
}

export function generateCommand(arch: string, scale: number, seed: number, out: string): string {
  const shape = ZOO[arch];
  if (!shape) throw new CliError(`unknown architecture ${arch}; one of ${ARCHITECTURES.join(', ')}`);
  if (!(scale > 0 && scale <= 1)) throw new CliError(`--scale must be in (0, 1], got ${scale}`);
  const resolved = resolveSpec({ model: shape });
  if (!resolved.ok) throw new Error(formatFieldErrors(resolved.errors));
  const m = generateModel({ name: arch, model: resolved.spec.model, seed, scale, outDir: out });
  const bytes = m.tables.reduce((n, t) => n + t.bytes, 0);
  return `wrote ${arch} to ${out}: ${m.tables.length} tables (${formatBytes(bytes)}), dense ${m.denseFeatures} -> [${m.bottomMLP.join(',')}] -> ${m.interaction} (${m.topInput}) -> [${m.topMLP.join(',')}]\n`;
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
