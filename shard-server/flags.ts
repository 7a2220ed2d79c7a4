// The shard-server's flags, from the one table in contracts/shard-server-args.ts, with this server's defaults
// (some from the environment). parseFlags is what main.ts runs and what the contract tests feed the operator's
// pod args to.
import { Command, Option } from 'commander';
import { SHARD_SERVER_FLAGS, type ShardServerArgs } from '../contracts/shard-server-args.js';

export type ParsedFlags = ShardServerArgs &
  Required<
    Pick<
      ShardServerArgs,
      | 'host'
      | 'port'
      | 'deadlineMs'
      | 'failurePolicy'
      | 'maxBatch'
      | 'maxBodyBytes'
      | 'probeMs'
      | 'hedgePercentile'
      | 'accelerator'
      | 'logLevel'
      | 'shutdownDelayMs'
      | 'emulateServiceMs'
    >
  >;

function defaults(env: NodeJS.ProcessEnv): Partial<Record<keyof ShardServerArgs, string>> {
  return {
    model: env.RECSHARD_MODEL_URI,
    host: '0.0.0.0',
    port: '8080',
    deadlineMs: env.RECSHARD_DEADLINE_MS ?? '1000',
    failurePolicy: env.RECSHARD_FAILURE_POLICY ?? 'fail',
    maxBatch: '1024',
    maxBodyBytes: String(64 * 2 ** 20),
    probeMs: '1000',
    hedgePercentile: '95',
    accelerator: env.RECSHARD_ACCELERATOR ?? 'none',
    logLevel: env.RECSHARD_LOG_LEVEL ?? 'info',
    shutdownDelayMs: env.RECSHARD_SHUTDOWN_DELAY_MS ?? '0',
    emulateServiceMs: env.RECSHARD_EMULATE_SERVICE_MS ?? '0',
  };
}

export function flagsCommand(env: NodeJS.ProcessEnv = process.env): Command {
  const cmd = new Command('shard-server').exitOverride().configureOutput({ writeErr: () => {} });
  const d = defaults(env);
  for (const [key, spec] of Object.entries(SHARD_SERVER_FLAGS) as [keyof ShardServerArgs, (typeof SHARD_SERVER_FLAGS)[keyof ShardServerArgs]][]) {
    const o = new Option(`${spec.flag} ${spec.value}`, spec.description);
    if (spec.choices) o.choices(spec.choices);
    if (d[key] !== undefined) o.default(d[key]);
    if (spec.required) o.makeOptionMandatory();
    cmd.addOption(o);
  }
  return cmd;
}

/** Parses argv (without node and the script); a bad flag or value throws an Error that names it. */
export function parseFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedFlags {
  const cmd = flagsCommand(env);
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    // --help has been printed: the caller exits 0
    if ((e as { exitCode?: number }).exitCode === 0) throw e;
    throw new Error((e as Error).message.replace(/^error: /, ''));
  }
  const raw = cmd.opts<Record<string, string | undefined>>();
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SHARD_SERVER_FLAGS)) {
    const v = raw[key];
    if (v === undefined) continue;
    if (spec.number) {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`${spec.flag} must be a number, got ${JSON.stringify(v)}`);
      out[key] = n;
    } else out[key] = v;
  }
  return out as unknown as ParsedFlags;
}
