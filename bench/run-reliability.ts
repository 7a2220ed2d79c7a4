#!/usr/bin/env node
// `make bench-reliability` (also the last step of `make bench`): the data plane's reliability figures on real
// shard-server processes (bench/reliability.ts), written to docs/reliability.md with the command that made them.
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { serveLocal, type LocalDeployment, type LocalOptions } from '../cli/local.js';
import type { ModelInfo } from '../contracts/model-info.js';
import { buildQueries } from '../loadgen/workload.js';
import { ZOO } from '../models/zoo.js';
import type { RecModel, RecModelSpec } from '../operator/api/v1alpha1/index.js';
import { log, machine } from './lib.js';
import { measureHedging, measureOverload, measureShardFault, round, type FaultResult, type HedgingResult, type OverloadResult } from './reliability.js';

const flags = new Command('bench-reliability')
  .option('--quick', 'short runs (numbers are not meaningful)')
  .option('--out <file>', 'where the report goes', 'docs/reliability.md')
  .parse(process.argv)
  .opts<{ quick?: boolean; out: string }>();
const quick = flags.quick === true;
const DEADLINE_MS = 1000;

function model(name: string): RecModel {
  const spec = {
    model: structuredClone(ZOO['dlrm-rmc1']!) as RecModelSpec['model'],
    sharding: { strategy: 'load-balanced' as const, shards: 2, shardMemory: '64Gi' },
  };
  return { apiVersion: 'recshard.io/v1alpha1', kind: 'RecModel', metadata: { name }, spec };
}

async function withDeployment<T>(
  name: string,
  o: Partial<LocalOptions>,
  size: number,
  fn: (d: LocalDeployment, qs: ReturnType<typeof buildQueries>) => Promise<T>,
) {
  const d = await serveLocal(model(name), { scale: 0.001, seed: 5, deadlineMs: DEADLINE_MS, ...o });
  try {
    const info = (await (await fetch(`${d.mainUrl}/v1/models/${name}`)).json()) as ModelInfo;
    return await fn(d, buildQueries(info, { sizes: { kind: 'fixed', size }, zipf: 0, seed: 3, pool: 64 }));
  } finally {
    await d.stop();
  }
}

const seconds = quick ? 4 : 20;
log('== overload: a serial lane of 8 ms per request (capacity without using the cores)');
const lane = await withDeployment('rel-lane', { emulateServiceMs: 8 }, 4, (d, qs) => measureOverload(d, qs, { factor: 3, seconds, deadlineMs: DEADLINE_MS }));
log(JSON.stringify(lane));
log('== overload: real compute (256-sample queries; every core serves, the client included)');
const cpu = await withDeployment('rel-cpu', {}, 256, (d, qs) => measureOverload(d, qs, { factor: 3, seconds, deadlineMs: DEADLINE_MS }));
log(JSON.stringify(cpu));
const faults: FaultResult[] = [];
for (const policy of ['fail', 'zero'] as const)
  for (const fault of ['kill', 'stop'] as const) {
    log(`== shard fault: ${policy} policy, ${fault}`);
    const r = await withDeployment(`rel-${policy}-${fault}`, { failurePolicy: policy }, 64, (d, qs) =>
      measureShardFault(d, qs, { policy, fault, shard: 'shard-1', qps: 20, warmS: quick ? 2 : 5, faultS: quick ? 3 : 10, afterS: quick ? 2 : 5 }),
    );
    log(JSON.stringify(r));
    faults.push(r);
  }

const STRAGGLER = { name: 'shard-0-r1', pauseMs: 150, everyMs: 1000 };
const HEDGE_WINDOW_S = quick ? 3 : 10;
const HEDGE_ROUNDS = quick ? 1 : 3;
const hedging: HedgingResult[] = [];
for (const hedge of [true, false]) {
  log(`== hedging ${hedge ? 'on' : 'off'}: windows with and without a straggler replica`);
  const r = await withDeployment('rel-hedge', { shardReplicas: 2, hedgePercentile: hedge ? 95 : 0 }, 16, (d, qs) =>
    measureHedging(d, qs, { qps: 50, windowS: HEDGE_WINDOW_S, rounds: HEDGE_ROUNDS, hedging: hedge, straggler: STRAGGLER }),
  );
  log(JSON.stringify(r));
  hedging.push(r);
}

const m = machine();
const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
const pct = (share: number) => `${Math.round(share * 100)}%`;
const overloadHeader = [
  'main',
  'capacity (QPS)',
  'offered (QPS)',
  'sent',
  '200',
  '503 OVERLOADED',
  'sheds within 10 ms: client / main',
  'shed latency',
  '504',
  'other',
  'admitted latency p50 / p99 / max',
  "the main's own: within the deadline, p99",
  '/healthz p50 / p99 (client)',
  "the main's event-loop delay p99 / max",
  'main RSS (MiB)',
  'recovery (ms)',
];
const overloadRow = (label: string, r: OverloadResult) =>
  row([
    label,
    r.capacityQps,
    r.offeredQps,
    r.sent,
    r.ok,
    `${r.shed} (${pct(r.excessShedFraction)} of the excess)`,
    `${pct(r.shedWithin10ms)} / ${pct(r.serverShedWithin10ms)}`,
    `${r.shedLatencyMs.p50} / ${r.shedLatencyMs.p99}`,
    r.deadlineMisses,
    r.other,
    `${r.admittedLatencyMs.p50} / ${r.admittedLatencyMs.p99} / ${r.admittedLatencyMs.max}`,
    `${pct(r.server.withinDeadline)}, p99 ≤ ${r.server.p99AtMostMs}`,
    `${r.healthzMs.p50} / ${r.healthzMs.p99}`,
    `${r.eventLoopDelayMs.p99} / ${r.eventLoopDelayMs.max}`,
    `${r.rssMiB.before} → ${r.rssMiB.peak}`,
    r.recoveryMs,
  ]);
const faultHeader = ['policy', 'fault', 'sent', '200', 'failed', 'p50 / p99 / max', 'main ready', 'whole again after (ms)'];
const faultRow = (r: FaultResult) =>
  row([
    r.policy,
    r.fault === 'kill' ? 'SIGKILL, then restart' : 'SIGSTOP, then SIGCONT',
    r.during.sent,
    r.during.ok,
    r.during.failed,
    `${r.during.p50Ms} / ${r.during.p99Ms} / ${r.during.maxMs}`,
    pct(r.mainReadyShare),
    r.recoveredMs,
  ]);
const hedgeHeader = ['hedging', 'straggler', 'sent', 'failed', 'latency p50 / p99 / max', 'shard lookups', 'hedged', 'hedges that won', 'extra calls'];
const hedgeRows = (r: HedgingResult) =>
  (['without', 'with'] as const).map((which) =>
    row([
      r.hedging ? 'after the p95' : 'off',
      which === 'with' ? `${STRAGGLER.name} frozen ${STRAGGLER.pauseMs} ms every ${STRAGGLER.everyMs} ms` : 'none',
      r[which].sent,
      r[which].failed,
      `${r[which].latencyMs.p50} / ${r[which].latencyMs.p99} / ${r[which].latencyMs.max}`,
      r[which].shardCalls,
      r[which].hedges,
      r[which].hedgeWins,
      `${round(r[which].extraLoad * 100, 2)}%`,
    ]),
  );
const stragglerCost = (r: HedgingResult) => `${round((r.with.latencyMs.p99 / r.without.latencyMs.p99 - 1) * 100, 1)}%`;
const [hedged, unhedged] = hedging as [HedgingResult, HedgingResult];
const table = (header: string[], rows: string[]) => [row(header), row(header.map(() => '---')), ...rows].join('\n');
const command = quick ? 'npx tsx bench/run-reliability.ts --quick' : 'make bench-reliability';
const when = `${new Date().toISOString().slice(0, 10)}${quick ? ' (quick: short runs, numbers not meaningful)' : ''}`;

const doc = `# Reliability of the data plane

Measured with \`${command}\` on ${m.cores} cores of ${m.cpuModel}, Node ${m.node}, ${when}.
Real shard-server processes on loopback (\`serve --local\`): DLRM-RMC1 at scale 0.001, load-balanced over 2 sparse
shards, the main's default deadline ${DEADLINE_MS} ms, default admission limits (\`--max-inflight\` 4 per core, at
least 8; \`--max-queue\` 256). The load generator is open loop (Poisson arrivals) and measures every latency from
the query's scheduled arrival, in the same process as the probes.

## Overload: three times the capacity

The capacity is first measured closed loop (16 clients back to back), then three times that rate is offered for
${seconds} s. Latencies in ms (p50 / p99, and max where given).

${table(overloadHeader, [overloadRow('serial lane, 8 ms', lane), overloadRow('real compute', cpu)])}

- **Serial lane**: the main's capacity is an emulated serial lane (\`--emulate-service-ms=8\`), so the cores have
  room to refuse the excess; this row measures admission control itself. **Real compute**: every core serves (the
  main's workers, both shards and the client share two cores), so refusing the excess competes with the work,
  and the client's own lag (sending three times what the machine serves, from the same two cores) is in every
  client-side number; the main's own histogram (arrival to reply, the series the autoscaler reads) shows what the
  server did with what it admitted.
- A request is admitted when the wait the queue predicts (its position over the slots, times the moving average
  of a slot's time) is at most half its remaining budget and, with one more service time, meets its deadline; the
  rest get 503 OVERLOADED with \`Retry-After: 1\` before their body is read. A waiter whose deadline its work would
  overrun is shed when its turn comes (the sheds slower than 10 ms).
- \`/healthz\`, \`/readyz\` and \`/metrics\` bypass admission: a probe waits only for the main's event loop, whose
  delay over the run (prom-client's \`nodejs_eventloop_lag_p99_seconds\` and \`_max_seconds\`) is in the table; the
  client's figure adds its own lag.
- Recovery: from the last arrival until one query is answered within twice the unloaded median.

## A sparse shard down under load

20 QPS of 64-sample queries; shard 1 is killed (then restarted) or frozen (then continued) for ${quick ? 3 : 10} s.
Latencies of the queries that arrived while it was down, in ms.

${table(faultHeader, faults.map(faultRow))}

- The main stays ready (its own readiness); \`/readyz?verbose\` lists \`[-]shard-1 failed: ...\` and
  \`recshard_shard_up{shard="1"}\` is 0.
- A circuit breaker per shard opens after 3 failed calls or probes in a row (at once on a version mismatch, and
  under the zero policy when a call has no answer after max(100 ms, 10 × the shard's usual latency)); while it is
  open, calls fail at once. Under the fail policy a frozen shard costs the calls already sent their deadline and
  the circuit then answers 503 SHARD_UNAVAILABLE at once; under the zero policy the calls in flight are answered
  with zero embeddings as the circuit opens. After 500 ms one trial call goes through; it, or a passing probe,
  closes the circuit.

## Hedged shard calls: a straggler replica

Every sparse shard has two replicas (\`serve --local --shard-replicas 2\`); 50 QPS of 16-sample queries. The
straggler is one replica of shard 0 frozen (SIGSTOP) ${STRAGGLER.pauseMs} ms every ${STRAGGLER.everyMs} ms, as a pod paused by garbage
collection or CPU throttling would be. Each deployment runs ${HEDGE_ROUNDS} pairs of ${HEDGE_WINDOW_S} s windows, one without the
straggler and one with it, interleaved (the machine drifts; these 2 cores also run the client and 5 processes).
Latencies in ms, end to end at the client, over all windows of a kind.

${table(hedgeHeader, [...hedgeRows(hedged), ...hedgeRows(unhedged)])}

- The straggler adds **${stragglerCost(hedged)}** to the p99 with hedging, at ${round(hedged.with.extraLoad * 100, 2)}% extra shard calls;
  **${stragglerCost(unhedged)}** without.
- The main sends each call to the replica with the fewest calls in flight, weighted by how much slower than the
  fastest it has recently been; a call with no answer after the shard's recent p95 (\`--hedge-percentile\`) is
  re-sent to another replica that usually answers sooner, the first answer wins and the other call is cut. Each
  call earns 0.05 of a hedge (at most 5 saved up), so hedges never exceed 5% of the calls
  (\`recshard_shard_hedged_calls_total\`, \`recshard_shard_hedge_wins_total\`).
`;
writeFileSync(flags.out, doc);
log(`wrote ${flags.out}`);
