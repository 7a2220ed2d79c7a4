// The recshard command line: commands as functions that return their output (tested directly), wired into commander.
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { parseAllDocuments } from 'yaml';
import { checkEnvelope, formatFieldErrors, resolveSpec, type RecModel } from '../api/v1alpha1/index.js';
import { formatPlan, type OutputFormat } from '../planner/format.js';
import { planModel } from '../planner/plan.js';

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
