// docs/benchmarks.md: each result with the machine, the command, the numbers side by side, the ratio against
// its target and a chart.
import type { AutoscalingResult } from './autoscaling/compare.js';
import type { CapacityResult, HotRowRun } from './capacity.js';
import { overheadParts } from './charts.js';
import type { KernelResult } from './kernel.js';
import type { Machine } from './lib.js';
import type { OperatorScaleResult } from './operator.js';
import type { OverheadRow } from './overhead.js';
import type { RolloutResult } from './rollout.js';
import type { ScaleOutResult } from './scaleout.js';
import type { SchedulingRow } from './scheduling.js';
import type { ServingResult } from './serving.js';

export interface BenchResults {
  command: string;
  quick: boolean;
  startedAt: string;
  durationS: number;
  machine: Machine;
  scheduling?: SchedulingRow[];
  scaleOut?: ScaleOutResult[];
  kernel?: KernelResult;
  overhead?: OverheadRow[];
  autoscaling?: AutoscalingResult;
  rollout?: RolloutResult;
  serving?: ServingResult;
  operator?: OperatorScaleResult;
  capacity?: CapacityResult;
  /** Per section key, the command and day that produced it, where `--only` reran it after the header's run. */
  produced?: Record<string, { command: string; day: string; machine: Machine }>;
}

const pct = (r: number) => `${(r * 100).toFixed(1)}%`;
/** The share by which b is below a (0 where a is 0). */
const cut = (a: number, b: number) => (a > 0 ? 1 - b / a : 0);
const SEEDS_DIFFER = 'the arrivals, routing and service times differ, the trace and the controllers do not';
const verdict = (ok: boolean) => (ok ? '**met**' : '**not met**');
const table = (head: string[], rows: (string | number)[][]) =>
  [`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
function schedulingSection(r: Required<BenchResults>, charts: Record<string, string>): string[] {
  const m = r.machine;
  const out: string[] = [];
  out.push("## 1. Scheduling: DeepRecSched's batch size B", '');
  out.push(
    "Latency-bounded throughput (the highest offered QPS whose p95 stays under the model's latency target, open-loop " +
      'Poisson arrivals) of a monolithic main with fixed B = whole query, fixed B over a sweep, and `serving.scheduler: ' +
      'auto` starting from B = 64 with no tuning by hand. Where this machine cannot serve the largest queries within ' +
      'the DeepRecSys target of a model even unloaded, the target is raised to 3x the unloaded p95 for every configuration ' +
      '(the table says so). Every configuration runs the same grid of load levels (placed by a calibration of the whole-query ' +
      'configuration); the capacity is interpolated where p95 crosses the target for good: the first miss that the next ' +
      'level confirms, since a lone miss between passes is a noise spike on this shared machine ("+" means the target ' +
      'held at every level, a lower bound; the JSON keeps every level).',
    '',
  );
  const sweep = r.scheduling[0]?.sweep.map((s) => `B = ${s.batchSize}`) ?? [];
  out.push(
    table(
      ['model', 'target p95', 'mean query', 'whole query', ...sweep, 'auto', 'auto ended at', 'auto / best fixed', 'auto / whole'],
      r.scheduling.map((s) => {
        const q = (c: { qps: number; censored?: boolean }) => `${c.qps}${c.censored ? '+' : ''}`;
        return [
          s.model,
          s.targetMs === s.modelTargetMs ? `${s.targetMs} ms` : `${s.targetMs} ms (model: ${s.modelTargetMs} ms)`,
          s.meanQuerySize,
          q(s.whole),
          ...s.sweep.map((x) => q(x.run)),
          q(s.auto),
          `B = ${s.auto.finalBatchSize}`,
          s.autoVsBest.toFixed(3),
          s.autoVsWhole.toFixed(3),
        ];
      }),
    ),
    '',
  );
  const within = r.scheduling.every((s) => s.autoVsBest >= 0.95);
  const worst = Math.min(...r.scheduling.map((s) => s.autoVsBest)).toFixed(3);
  const vsWhole = r.scheduling.map((s) => s.autoVsWhole);
  out.push(
    `Target: auto within 5% of the best fixed B on every model: ${verdict(within)} (worst ${worst}). ` +
      `Target: well above the whole-query default: auto / whole ranges ` +
      `${Math.min(...vsWhole).toFixed(2)}–${Math.max(...vsWhole).toFixed(2)} on ${m.cores} cores.`,
    '',
  );
  out.push(
    `Reading it: splitting a query buys parallelism across cores and costs a part's fixed work (a worker hand-off, ` +
      `two onnxruntime calls, its own shard calls). With ${m.cores} cores and the load generator on the same machine ` +
      `the parallelism is small, so the best B is large and whole queries are close to it; the paper's 2x needs many ` +
      `cores. No many-core machine was available to this run.`,
    '',
  );
  out.push(`![scheduling](${charts.scheduling})`, '');
  return out;
}

function scaleOutSection(r: Required<BenchResults>, charts: Record<string, string>): string[] {
  const out: string[] = [];
  out.push('## 2. The cost of scale-out', '');
  out.push(
    'The same model at the same offered load (half the monolithic latency-bounded throughput), served monolithic and ' +
      'distributed; every configuration uses whole-query scheduling so only the sharding differs. CPU is user + system ' +
      'time of every process of the deployment (main and shards) per 1,000 answered queries, from /proc.',
    '',
  );
  for (const s of r.scaleOut) {
    out.push(`### ${s.model}, ${s.offeredQps} QPS for ${s.seconds} s`, '');
    out.push(
      table(
        ['configuration', 'shards', 'p50 ms', 'p99 ms', 'p99 / mono', 'CPU s per 1000 q', 'CPU / mono', 'errors'],
        s.rows.map((x) => [x.config, x.shards, x.p50Ms, x.p99Ms, x.p99VsMono.toFixed(3), x.cpuSecondsPer1000, x.cpuVsMono.toFixed(3), x.errors]),
      ),
      '',
    );
    out.push(
      `Best distributed configuration: ${s.best.config}, p99 ${pct(s.best.p99VsMono - 1)} against monolithic. Target ` +
        `(within 5%): ${verdict(s.best.p99VsMono <= 1.05)}.`,
      '',
    );
    const g = s.split;
    if (g)
      out.push(
        `Contention or protocol: monolithic and ${g.config} measured again side by side. One query at a time ` +
          `(${g.oneClient.queries} queries): p50 ${g.oneClient.monoP50Ms} against ${g.oneClient.distP50Ms} ms, p99 ` +
          `${g.oneClient.monoP99Ms} against ${g.oneClient.distP99Ms} ms (${g.oneClient.p99VsMono.toFixed(3)}x; target within 5%: ` +
          `${verdict(g.oneClient.p99VsMono <= 1.05)}). At ${s.offeredQps} QPS with every process on both cores: p99 ` +
          `${g.shared.monoP99Ms} against ${g.shared.distP99Ms} ms (${g.shared.p99VsMono.toFixed(3)}x); with \`taskset\` putting ` +
          `the main alone on cpu 0 and the shards and load generator on cpu 1 (as if the shards had nodes of their own), ` +
          `${g.pinned.monoP99Ms} against ${g.pinned.distP99Ms} ms (${g.pinned.p99VsMono.toFixed(3)}x). So ` +
          `${pct(g.contentionShare)} of the gap is CPU contention between the main and its shards and ${pct(g.protocolShare)} ` +
          'is the protocol.',
        '',
      );
  }
  out.push(`![latency](${charts.scaleOutLatency})`, '', `![cpu](${charts.scaleOutCpu})`, '');
  return out;
}

function kernelSection(r: Required<BenchResults>, charts: Record<string, string>): string[] {
  const out: string[] = [];
  const k = r.kernel;
  out.push('## 3. Sparse lookups against the physical limit', '');
  out.push(
    `Pooled lookups per second on one core: the sparse shard's kernel (WebAssembly SIMD), the plain JavaScript loop ` +
      `it replaced, and two C kernels compiled by the benchmark (\`${k.compiler}\`, \`gcc ${k.flags}\`): the textbook ` +
      `loop and the same loop order as ours. Same table and indices files, ${k.batch} samples of ${k.pooling} uniform ` +
      `random lookups per call; and PyTorch ${k.torch}'s \`F.embedding_bag\` (sum, one thread, int64 indices as a ` +
      `PyTorch user passes them) over the same files. Memory read bandwidth measured by a streaming C reader: ${k.readGBps} GB/s.`,
    '',
  );
  out.push(
    table(
      [
        'table',
        'rows x dim',
        'recshard',
        'JS loop',
        'C textbook',
        'C our order',
        'PyTorch embedding_bag',
        'recshard / best C',
        'recshard / PyTorch',
        'bytes read',
        'of bandwidth',
      ],
      k.rows.map((x) => [
        `${x.table} (${x.tableMiB} MiB)`,
        `${x.rows} x ${x.dim}`,
        `${(x.wasm / 1e6).toFixed(1)} M/s`,
        `${(x.js / 1e6).toFixed(1)} M/s`,
        `${(x.cNaive / 1e6).toFixed(1)} M/s`,
        `${(x.cBlocked / 1e6).toFixed(1)} M/s`,
        `${(x.torch / 1e6).toFixed(1)} M/s`,
        x.wasmVsC.toFixed(3),
        x.wasmVsTorch.toFixed(3),
        `${x.wasmGBps} GB/s`,
        pct(x.wasmVsBandwidth),
      ]),
    ),
    '',
  );
  out.push(
    `Target: at least PyTorch's embedding_bag rate on every table: ${verdict(k.rows.every((x) => x.wasmVsTorch >= 1))}. ` +
      `Target: at least half the C kernel's rate: ${verdict(k.rows.every((x) => x.wasmVsC >= 0.5))} ` +
      `(worst ${Math.min(...k.rows.map((x) => x.wasmVsC)).toFixed(3)}). ` +
      `Random row reads in a table far larger than the caches are latency-bound, not bandwidth-bound: a streaming reader's ` +
      `bandwidth is the ceiling, and a row gather reaches the fraction shown.`,
    '',
  );
  out.push(`![kernel](${charts.kernel})`, '');
  return out;
}

function overheadSection(r: Required<BenchResults>, charts: Record<string, string>): string[] {
  const out: string[] = [];
  out.push('## 4. Server overhead', '');
  out.push(
    'One query at a time (closed loop, one client) through a monolithic main with whole-query scheduling, against the ' +
      'bare onnxruntime time of the same batch through the same two dense networks in-process (single-threaded sessions). ' +
      "Medians of the client's latency; the server's stage histograms give the means of its parts.",
    '',
  );
  const parts = overheadParts(r.overhead[0]!).map((p) => p.part);
  out.push(
    table(
      ['model', 'batch', 'end to end µs', 'bare onnxruntime µs', 'difference µs', 'difference %', ...parts.slice(1).map((p) => `${p} µs`)],
      r.overhead.map((x) => [
        x.model,
        x.batch,
        x.endToEndUs,
        x.bareOrtUs,
        x.overheadUs,
        x.overheadPct,
        ...overheadParts(x)
          .slice(1)
          .map((p) => Math.round(p.us)),
      ]),
    ),
    '',
  );
  out.push(
    'The difference is everything between the client and the dense compute: model work that bare onnxruntime does not ' +
      'do (embedding lookups, the interaction), onnxruntime running slower inside the busy server than alone, and the ' +
      'serving cost proper (HTTP, parsing the binary request, the scheduler, the hand-off to a worker thread and back, ' +
      "and the client's own HTTP stack). Stage times are means over the measured queries; end to end and bare are medians.",
    '',
  );
  out.push(`![overhead](${charts.overhead})`, '');
  return out;
}

const span = (xs: number[], digits = 0) => {
  const lo = Math.min(...xs),
    hi = Math.max(...xs);
  return lo === hi ? lo.toFixed(digits) : `${lo.toFixed(digits)}–${hi.toFixed(digits)}`;
};

/** One row per trace: the ranges over the seeds. */
function autoscalingTable(a: Required<BenchResults>['autoscaling']): string {
  return table(
    [
      'trace',
      'seconds over target: HPA',
      'recshard',
      'replica-seconds recshard / HPA',
      'reversals: HPA',
      'recshard',
      'the trace needs',
      'max replicas: HPA',
      'recshard',
      'target met on',
    ],
    a.traces.map((t) => [
      `${t.title} (${t.durationS >= 3600 ? `${t.durationS / 3600} h` : `${t.durationS / 60} min`})`,
      span(t.runs.map((r) => r.hpa.secondsOver)),
      span(t.runs.map((r) => r.recshard.secondsOver)),
      span(
        t.runs.map((r) => r.replicaSecondsRatio),
        3,
      ),
      span(t.runs.map((r) => r.hpa.reversals)),
      span(t.runs.map((r) => r.recshard.reversals)),
      t.inherentReversals,
      span(t.runs.map((r) => r.hpa.maxReplicas)),
      span(t.runs.map((r) => r.recshard.maxReplicas)),
      `${t.runs.filter((r) => r.met).length} of ${t.runs.length} seeds`,
    ]),
  );
}

/** The runs that missed the target, each with why. */
function missedRuns(a: Required<BenchResults>['autoscaling']): string[] {
  return a.traces.flatMap((t) =>
    t.runs
      .filter((r) => !r.met)
      .map((r) => {
        const why = [
          ...(r.recshard.secondsOver >= r.hpa.secondsOver && r.recshard.secondsOver > 0
            ? [`${r.recshard.secondsOver} s over against HPA's ${r.hpa.secondsOver}`]
            : []),
          ...(r.replicaSecondsRatio > 1.1 ? [`${r.replicaSecondsRatio.toFixed(3)}x HPA's replica-seconds`] : []),
          ...(r.recshard.reversals > t.inherentReversals ? [`${r.recshard.reversals} reversals where the trace needs ${t.inherentReversals}`] : []),
        ];
        return `${t.trace} seed ${r.seed} (${why.join('; ')})`;
      }),
  );
}

function autoscalingSection(r: Required<BenchResults>, charts: Record<string, string>): string[] {
  const out: string[] = [];
  const a = r.autoscaling;
  const p = a.policy;
  out.push('## 5. Latency autoscaling against the HPA algorithm', '');
  out.push(
    `A simulator (\`bench/autoscaling/\`) replays four traffic traces through pods that serve one request at a time ` +
      `in arrival order behind a Service that picks a ready pod at random, with service times drawn from a measured shard-server: ` +
      `${a.source} (mean ${a.service.meanMs} ms, p50 ${a.service.p50Ms} ms, p95 ${a.service.p95Ms} ms). New pods take ` +
      `${a.sim.startupMs / 1000} s to start and serve ${a.sim.warmupSlowdown}x slower for their first ${a.sim.warmupMs / 1000} ` +
      `s. Every ${a.sim.intervalMs / 1000} s each controller reads what Prometheus would give it over the last ${a.sim.windowMs / 1000} ` +
      `s (the p${a.percentile} and the request rate; recshard also the requests in flight) and sets the replicas. Target ` +
      `p${a.percentile} ${a.targetMs} ms (3x the p95 of a request alone); the base load keeps ${a.sim.initialReplicas} ` +
      `pods half busy (${a.baseQps} QPS); bounds 1 to ${p.main.max}.`,
    '',
  );
  out.push(
    `- **HPA**: the documented algorithm with default behaviour, fed the tail latency as an external metric: desired ` +
      `= ceil(ready pods x latency / target), nothing within a 10% tolerance, scale-down to the highest recommendation ` +
      `of the last 5 minutes, at most max(4 pods, 100%) added per 15 s.`,
  );
  out.push(
    `- **recshard**: the operator's control law (\`operator/autoscaling/law.ts\`) under a LatencyScalingPolicy with ` +
      `the CRD's defaults: tolerance ${p.tolerance} (add pods over ${Math.round((1 - p.tolerance) * 100)}% of the target, ` +
      `remove only under ${Math.round((1 - 2 * p.tolerance) * 100)}%), scale-down after ${p.scaleDown.stabilizationMs / 1000} ` +
      `s under the band, at most max(${p.scaleDown.maxPods} pod, ${p.scaleDown.maxPercent}%) removed per ${p.scaleDown.periodMs / 1000} ` +
      `s, at most max(${p.scaleUp.maxPods} pods, ${p.scaleUp.maxPercent}%) added per ${p.scaleUp.periodMs / 1000} s, ` +
      `${p.warmupMs / 1000} s warm-up.`,
    '',
  );
  out.push(`Each trace runs under ${a.seeds.length === 1 ? `seed ${a.seeds[0]}` : `${a.seeds.length} seeds (${a.seeds.join(', ')}): ${SEEDS_DIFFER}`}.`, '');
  out.push(autoscalingTable(a), '');
  out.push(
    `Target: fewer seconds over the target than HPA on every trace, at no more than 10% more replica-seconds, and no ` +
      `flapping (no more direction reversals than the trace itself calls for), under every seed: ${verdict(a.met)}. Ranges ` +
      `are over the seeds; the chart shows seed ${a.seeds[0]}.`,
    '',
  );
  const misses = missedRuns(a);
  out.push(`Not met: ${misses.length ? misses.join(', ') : 'none'}.`, '');
  out.push(
    'Reading it: the HPA algorithm treats a percentile like a utilisation. Far under the target the tail is the service ' +
      'time, so the ratio tells HPA to remove most pods, the queue then builds, the tail jumps past the target and the ' +
      'ratio adds pods back by the multiple the queue inflated it to: it oscillates, and after a step or a spike it overshoots ' +
      "to several times the pods it needs for minutes. recshard holds the window's tail inside a band under the target, " +
      'adds pods for the demand it measures (served rate plus the growth of the backlog, at a per-pod rate it knows holds ' +
      'the target) when overloaded, and removes them only to a per-pod rate it has already served under the band, never ' +
      "back to one that missed. Seconds over the target are counted one second at a time (the p95 of that second's arrivals): " +
      'with heavy-tailed service times a window p95 held at 70-90% of the target still leaves single seconds above it, ' +
      "so the verdicts move with the measured service times and the seed, and HPA's overshoot after a step or a spike " +
      "buys it seconds under the target at two to three times recshard's replica-seconds.",
    '',
  );
  out.push(`![autoscaling](${charts.autoscaling})`, '');
  return out;
}

function rolloutSection(r: RolloutResult, charts: Record<string, string>): string[] {
  const out: string[] = ['## 6. Re-sharding under load on real pods', ''];
  out.push(
    `Produced by \`${r.command}\` on ${r.startedAt.slice(0, 10)}. The local cluster with its real node (containerd, runc, ` +
      `the chart's operator), a DLRM-RMC1-shaped model of ${r.model.tables} tables (${r.model.totalMiB} MiB of fp32 rows) served ` +
      `${r.from}, open-loop load of ${r.qps} QPS (production query sizes) through the main's Service from inside the node, every ` +
      `answer recorded. Then \`kubectl apply\` of the same RecModel with strategy ${r.to}: its shards start beside the old ones ` +
      '(each loads its tables: start-up below), the main switches once all are available, and the old shards go after the last ' +
      'old main pod and the drain period (5 s here). Steady state: the same load in the seconds before the apply.',
    '',
  );
  out.push(
    table(
      ['', 'answered', 'failed', 'timeouts', 'p50', 'p99'],
      [
        ['steady state before', r.steady.answered, 0, 0, `${r.steady.p50Ms} ms`, `${r.steady.p99Ms} ms`],
        [`during the switch (${r.switchS} s)`, r.during.answered, r.during.failed, r.during.timeouts, `${r.during.p50Ms} ms`, `${r.during.p99Ms} ms`],
      ],
    ),
    '',
    `Apply to last old pod gone: **${r.switchS} s** (phases: ${r.phases.map((p) => `${p.phase} at ${p.atS} s`).join(', ')}). New shards' ` +
      `start-up (pod created to Ready, whole seconds): ${r.shardStartupS.join(', ')} s. Peak extra pods beside the running set: ` +
      `${r.peakExtraPods}. p99 during / steady: ${r.steady.p99Ms ? (r.during.p99Ms / r.steady.p99Ms).toFixed(2) : 'n/a'} ` +
      '(the new shards load on the same two cores that serve).',
    '',
  );
  if (charts.rollout) out.push(`![re-sharding under load](${charts.rollout})`, '');
  return out;
}

const us = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${Math.round(v)} µs`);

function servingSection(v: ServingResult, charts: Record<string, string>): string[] {
  const out: string[] = ['## 7. Serving speed against PyTorch eager', ''];
  const ver = v.versions;
  out.push(
    `The same model directory (${v.model}, \`examples/${v.file}\`, monolithic, rows scaled by 0.001) served three ways on ` +
      `this machine: recshard's main with whole-query scheduling (each query one part on one thread, as PyTorch runs it); ` +
      `PyTorch ${ver.torch} eager (\`nn.EmbeddingBag\` sum + \`nn.Linear\`, ` +
      `\`inference_mode\`, \`set_num_threads(1)\`, Python ${ver.python}, numpy ${ver.numpy}) behind Python's \`http.server\` ` +
      '(`bench/torch/dlrm.py`, its venv built once by `bench/torch/venv.sh`); and a node:http server that reads the body and ' +
      'answers a reply of the same size without computing anything, the floor of any HTTP server here. One client, one ' +
      `keep-alive connection per server, blocks of 20 queries in a rotating order, ${v.queriesPerBatch} queries per batch ` +
      `size and server; the same binary bodies to both models, whose scores agree within ${v.maxRelDiff.toExponential(1)} ` +
      "relative (checked on every answer). The model's own compute is the mean of the main's embedding, interaction and " +
      'MLP stages; the serving overhead is the p50 less that compute. CPU is what each server process used per query.',
    '',
  );
  out.push(
    table(
      [
        'batch',
        'recshard p50',
        'p99',
        'PyTorch p50',
        'p99',
        'recshard / PyTorch',
        'echo floor p50',
        'compute',
        'overhead',
        'overhead / echo',
        'CPU recshard',
        'CPU PyTorch',
      ],
      v.rows.map((x) => [
        x.batch,
        us(x.recshard.p50Us),
        us(x.recshard.p99Us),
        us(x.torch.p50Us),
        us(x.torch.p99Us),
        x.vsTorch.toFixed(3),
        us(x.echo.p50Us),
        us(x.computeUs),
        us(x.overheadUs),
        x.overheadVsEcho.toFixed(2),
        `${x.cpuMs.recshard} ms`,
        `${x.cpuMs.torch} ms`,
      ]),
    ),
    '',
  );
  out.push(
    table(
      ['process', 'resident (RSS)', 'table bytes', 'RSS over tables'],
      v.memory.map((x) => [
        x.role === 'main' ? 'main (monolithic)' : 'sparse shard (singular)',
        `${x.rssMiB} MiB`,
        `${x.tableMiB} MiB`,
        `${x.overheadMiB} MiB`,
      ]),
    ),
    '',
  );
  out.push(`![serving](${charts.serving})`, '');
  return out;
}

function operatorSection(o: OperatorScaleResult): string[] {
  const out: string[] = ['## 8. The operator at scale', ''];
  out.push(
    'The local control plane (kube-apiserver, etcd, controller-manager, scheduler) with KWOK nodes, whose pods become ' +
      'Ready without running: what is measured is the operator (`node --optimize-for-size dist/operator/main.js`, as its image runs it), the API ' +
      "server and etcd, on the same cores. Every 200 ms the benchmark reads the operator's event-loop delay (its own " +
      '`nodejs_eventloop_lag_max_seconds`, the worst since the last read), times its `/healthz` from outside and reads ' +
      'its RSS. A model is Ready once the Deployment controller has seen each Deployment and the pods are Ready: the ' +
      'controller-manager and the scheduler here run with `--kube-api-qps=100 --kube-api-burst=200`, as production ' +
      'control planes are configured (the default 20 per second makes a fleet wait on their rate limiters), and Ready ' +
      "lags the operator's part (every child written) by their work.",
    '',
  );
  const f = o.fleet;
  const b = o.big;
  const fair = o.fairness;
  out.push(
    table(
      ['phase', 'what', 'time', 'reconcile p99', 'applies', 'loop max', '/healthz max', 'peak RSS'],
      [
        [
          'fleet',
          `${f.models} RecModels (a main and a shard each) applied at once (eight kubectl applies side by side), to all Ready`,
          `${f.readyS} s`,
          `${f.reconcileP99S} s`,
          f.applies,
          `${f.loopMaxMs} ms`,
          `${f.healthzMaxMs} ms${f.healthzFailures ? ` (${f.healthzFailures} not 200)` : ''}`,
          `${f.rssPeakMiB} MiB`,
        ],
        [
          'large model',
          `${b.tables} tables on ${b.shards} load-balanced shards (${b.children} children), to Planned / every child written / Ready`,
          `${b.plannedS} s / ${b.appliedS} s / ${b.readyS} s`,
          '',
          b.applies,
          `${b.loopMaxMs} ms`,
          `${b.healthzMaxMs} ms${b.healthzFailures ? ` (${b.healthzFailures} not 200)` : ''}`,
          `${b.rssPeakMiB} MiB`,
        ],
        ...(fair
          ? [
              [
                'fairness',
                `an ordinary model applied right after two of ${fair.tables} tables on ${fair.shards} shards, to Planned / Ready (the two large ones Ready)`,
                `${fair.plannedS} s / ${fair.readyS} s (${fair.largeReadyS} s)`,
                '',
                '',
                `${fair.loopMaxMs} ms`,
                `${fair.healthzMaxMs} ms${fair.healthzFailures ? ` (${fair.healthzFailures} not 200)` : ''}`,
                `${fair.rssPeakMiB} MiB`,
              ],
            ]
          : []),
      ],
    ),
    '',
    `Idle, the fleet Ready and nothing changing, for ${o.idle.seconds} s: **${o.idle.applies} applies**, ${o.idle.reconciles} reconciles, ` +
      `${o.idle.cpuCores} cores of CPU, ${o.idle.rssMiB} MiB RSS.`,
    '',
  );
  return out;
}

interface Goal {
  goal: string;
  target: string;
  measured: string;
  met?: boolean;
  why: string;
}

/** Issue 17's goals, each as a ratio from this run's sections; a goal whose section did not run says so. */
function goals(r: BenchResults): Goal[] {
  const out: Goal[] = [];
  const absent = (goal: string, target: string, section: string) => out.push({ goal, target, measured: `not measured (run \`--only ${section}\`)`, why: '' });
  const v = r.serving;
  if (!v) {
    absent('end to end against PyTorch eager', '≤ 0.5x at batch 64 and 512, ≤ 1.0x at batch 1', 'serving');
    absent('serving overhead over the node:http echo floor', '≤ 1.2x', 'serving');
  } else {
    for (const x of v.rows) {
      const target = x.batch <= 1 ? 1 : 0.5;
      out.push({
        goal: `end to end against PyTorch eager, batch ${x.batch}`,
        target: `≤ ${target.toFixed(1)}x`,
        measured: `${x.vsTorch.toFixed(3)}x (${us(x.recshard.p50Us)} / ${us(x.torch.p50Us)})`,
        met: x.vsTorch <= target,
        why:
          x.vsTorch <= target
            ? ''
            : `the model's compute alone takes ${us(x.computeUs)} (${(x.computeUs / x.torch.p50Us).toFixed(2)}x PyTorch's whole request), ` +
              `the serving overhead ${us(x.overheadUs)}`,
      });
    }
    const worst = v.rows.reduce((a, b) => (b.overheadVsEcho > a.overheadVsEcho ? b : a));
    out.push({
      goal: 'serving overhead (p50 less compute) over the node:http echo floor',
      target: '≤ 1.2x',
      measured: v.rows.map((x) => `batch ${x.batch}: ${x.overheadVsEcho.toFixed(2)}x`).join(', '),
      met: worst.overheadVsEcho <= 1.2,
      why:
        worst.overheadVsEcho <= 1.2
          ? ''
          : `batch ${worst.batch}: ${us(worst.overheadUs)} over an echo of ${us(worst.echo.p50Us)}: parsing and copying the request, the ` +
            'scheduler, metrics, and a reply sent after a longer wait (the client has gone idle)',
    });
  }
  if (!r.kernel) absent('pooled lookups against PyTorch embedding_bag', '≥ 1.0x', 'kernel');
  else
    for (const x of r.kernel.rows)
      out.push({
        goal: `pooled lookups against PyTorch embedding_bag, ${x.table}`,
        target: '≥ 1.0x',
        measured: `${x.wasmVsTorch.toFixed(3)}x (${(x.wasm / 1e6).toFixed(1)} / ${(x.torch / 1e6).toFixed(1)} M/s)`,
        met: x.wasmVsTorch >= 1,
        why: x.wasmVsTorch >= 1 ? '' : `${(x.wasmVsC * 100).toFixed(0)}% of the C gather; WebAssembly has no prefetch instruction`,
      });
  if (!r.scaleOut) absent('sharding: CPU per query of the best distributed configuration', '≤ 1.15x monolithic', 'scaleout');
  else
    for (const s of r.scaleOut) {
      const dist = s.rows.filter((x) => x.config !== 'monolithic');
      const cheapest = dist.reduce((a, b) => (b.cpuVsMono < a.cpuVsMono ? b : a));
      out.push({
        goal: `sharding CPU per query, ${s.model}`,
        target: '≤ 1.15x monolithic',
        measured: `${cheapest.cpuVsMono.toFixed(3)}x (${cheapest.config})`,
        met: cheapest.cpuVsMono <= 1.15,
        why: cheapest.cpuVsMono <= 1.15 ? '' : 'every shard call costs an HTTP request and a reply on both sides; see section 2',
      });
      const split = s.split;
      if (split)
        out.push({
          goal: `sharding p99 at one client, ${s.model}`,
          target: '≤ 1.05x monolithic',
          measured: `${split.oneClient.p99VsMono.toFixed(3)}x (${split.config}: ${split.oneClient.distP99Ms} / ${split.oneClient.monoP99Ms} ms)`,
          met: split.oneClient.p99VsMono <= 1.05,
          why:
            split.oneClient.p99VsMono <= 1.05
              ? ''
              : `p50 ${split.oneClient.distP50Ms} against ${split.oneClient.monoP50Ms} ms: each shard call is a loopback HTTP request ` +
                'whose encoding, decoding and wake-ups add to the lookups themselves',
        });
      else absent(`sharding p99 at one client, ${s.model}`, '≤ 1.05x monolithic', 'scaleout (on 2 or more cores)');
      out.push({
        goal: `sharding p99 at half load, ${s.model}: contention or protocol`,
        target: 'report',
        measured: split
          ? `shared cores ${split.shared.p99VsMono.toFixed(3)}x, shards on a core of their own ${split.pinned.p99VsMono.toFixed(3)}x (${split.config})`
          : `${s.best.p99VsMono.toFixed(3)}x (${s.best.config}), not split`,
        why: split
          ? `${pct(split.contentionShare)} of the gap is CPU contention (pinning removed it), ${pct(split.protocolShare)} protocol`
          : 'run on 2 or more cores to split it',
      });
    }
  if (!r.scheduling) absent('DeepRecSched auto against the best fixed batch size', '≥ 0.95x on every model', 'scheduling');
  else {
    const worst = r.scheduling.reduce((a, b) => (b.autoVsBest < a.autoVsBest ? b : a));
    out.push({
      goal: 'DeepRecSched auto against the best fixed batch size',
      target: '≥ 0.95x on every model',
      measured: r.scheduling.map((s) => `${s.model.split(' ')[0]} ${s.autoVsBest.toFixed(3)}x`).join(', '),
      met: worst.autoVsBest >= 0.95,
      why: worst.autoVsBest >= 0.95 ? '' : `${worst.model}: auto ended at B = ${worst.auto.finalBatchSize}, the best fixed was B = ${worst.best.batchSize}`,
    });
  }
  if (v)
    out.push({
      goal: 'memory per process over table bytes (reported)',
      target: 'report',
      measured: v.memory.map((x) => `${x.role} ${x.overheadMiB} MiB`).join(', '),
      why: 'Node, onnxruntime and its sessions (main: on the event loop and in each worker), the kernel arenas',
    });
  else absent('memory per process over table bytes', 'report', 'serving');
  return out;
}

/** Issue 18's goals (the operator at scale) from section 8. */
function operatorGoals(r: BenchResults): Goal[] {
  const o = r.operator;
  if (!o) return [{ goal: 'the operator at scale', target: '', measured: 'not measured (run `--only operator`)', why: '' }];
  const loop = Math.max(o.fleet.loopMaxMs, o.big.loopMaxMs, o.fairness?.loopMaxMs ?? 0);
  return [
    {
      goal: `${o.fleet.models} RecModels applied at once, all Ready`,
      target: '< 60 s',
      measured: `${o.fleet.readyS} s`,
      met: o.fleet.readyS < 60,
      why: o.fleet.readyS < 60 ? '' : 'the API server, etcd and the operator share two cores',
    },
    {
      goal: 'operator peak RSS with the fleet',
      target: '< 200 MB',
      measured: `${o.fleet.rssPeakMiB} MiB`,
      met: o.fleet.rssPeakMiB * 1.048576 < 200,
      why:
        o.fleet.rssPeakMiB * 1.048576 < 200
          ? ''
          : 'Node.js, the client library and the CRD validators hold about 115 MiB before any model (with --optimize-for-size; ' +
            '145 MiB without); the caches are trimmed (controller/trim.ts)',
    },
    { goal: 'reconcile p99 (fleet)', target: 'report', measured: `${o.fleet.reconcileP99S} s over ${o.fleet.reconciles} reconciles`, why: '' },
    {
      goal: `idle operator: server-side applies per ${o.idle.seconds} s`,
      target: '0 (was 650 with 58 models)',
      measured: `${o.idle.applies} (${o.idle.cpuCores} cores)`,
      met: o.idle.applies === 0,
      why: '',
    },
    {
      goal: `${o.big.tables}-table, ${o.big.shards}-shard model planned and reconciled`,
      target: '< 10 s',
      measured: `Planned ${o.big.plannedS} s, every child written ${o.big.appliedS} s (Ready ${o.big.readyS} s)`,
      met: o.big.appliedS < 10,
      why:
        o.big.appliedS < 10
          ? ''
          : `the API server's work, not the operator's: a CPU profile of the operator over this phase is 80% idle, and the ` +
            `client library's serialisation costs 0.1 ms per apply (raw JSON 0.04 ms); the API server alone took 2,000 plain ` +
            `server-side applies, 16 at a time, in 9 s on this machine, and here shares the two cores with etcd, KWOK and the ` +
            `controller-manager making a ReplicaSet for each new Deployment`,
    },
    ...(o.fairness
      ? [
          {
            goal: `fairness: an ordinary model applied after two ${o.fairness.tables}-table models gets its status`,
            target: 'Planned < 5 s (was none for over 120 s)',
            measured: `Planned ${o.fairness.plannedS} s, Ready ${o.fairness.readyS} s (the large ones ${o.fairness.largeReadyS} s)`,
            met: o.fairness.plannedS < 5,
            why: o.fairness.plannedS < 5 ? '' : 'its reconcile waited behind the large models',
          },
        ]
      : []),
    {
      goal: "operator's event loop blocked at most",
      target: '≤ 50 ms',
      measured:
        `${loop} ms (/healthz at most ${Math.max(o.fleet.healthzMaxMs, o.big.healthzMaxMs)} ms, ` +
        `${o.fleet.healthzFailures + o.big.healthzFailures} not 200)`,
      met: loop <= 50,
      why:
        loop <= 50
          ? ''
          : `collector pauses of a heap that holds the large model's plan and ${o.big.children} children (one mark-compact of ` +
            `98 ms in a profile), and bursts of watch events handled in one turn of the loop; every reconcile step yields ` +
            `between steps and every 128 children`,
    },
  ];
}

/** Issue 19's goals (capacity beyond one server), from section 9. */
function capacityGoals(r: BenchResults): Goal[] {
  const c = r.capacity;
  if (!c) return [{ goal: 'capacity beyond one server', target: '', measured: 'not measured (run `--only capacity`)', why: '' }];
  const h = c.hotRows;
  const int8 = c.rowsPerShard.find((x) => x.dtype === 'int8')!;
  return [
    {
      goal: `a table ${(c.split.tableMiB / c.split.shardMiB).toFixed(1)}x a shard, split by rows: scores against the whole table`,
      target: 'bit-for-bit',
      measured: c.split.exact ? 'bit-for-bit' : 'differ',
      met: c.split.exact,
      why: c.split.exact ? '' : 'see section 9',
    },
    {
      goal: 'the split table: bytes the shards answer per query, against whole',
      target: 'report',
      measured:
        `${(c.split.split.answerKiB / c.split.whole.answerKiB).toFixed(2)}x (${c.split.split.answerKiB} / ${c.split.whole.answerKiB} KiB), ` +
        `p99 ${c.split.split.p99Ms} / ${c.split.whole.p99Ms} ms`,
      why: 'a piece answers each distinct row (the main pools in sample order, for exactness), not one pooled vector per sample',
    },
    {
      goal: `int8 rows per shard against fp32, dim ${c.dim}`,
      target: '4x',
      measured: `${int8.vsFp32.toFixed(2)}x`,
      met: int8.vsFp32 >= 4,
      why: int8.vsFp32 >= 4 ? '' : `each row also holds an fp32 scale and bias (8 bytes on ${c.dim}): 4x only as dim grows`,
    },
    {
      goal: 'int8 against fp32: largest pooled and score error (reported)',
      target: 'report',
      measured:
        `pooled ${c.int8.pooledMaxAbs.toExponential(2)}, scores ${c.int8.scoreMaxAbs.toExponential(2)}; ` +
        `kernel ${c.int8.kernel.speedup.toFixed(2)}x fp32's rate`,
      why: 'the int8 kernel widens, converts, scales and biases each value: compute-bound where fp32 is not',
    },
    {
      goal: `hot-row cache, ${h.model} load-balanced/${h.shards} at Zipf ${h.zipf}: bytes sent to shards`,
      target: '≥ 50% fewer',
      measured: `${pct(cut(h.off.shardRequestKiB, h.on.shardRequestKiB))} fewer`,
      met: cut(h.off.shardRequestKiB, h.on.shardRequestKiB) >= 0.5,
      why: '',
    },
    {
      goal: 'hot-row cache: shard CPU per query',
      target: '≥ 50% less',
      measured:
        `${pct(cut(h.off.shardCpuMs, h.on.shardCpuMs))} less (${h.on.shardCpuMs} / ${h.off.shardCpuMs} ms; ` +
        `main ${h.on.mainCpuMs} / ${h.off.mainCpuMs} ms)`,
      met: cut(h.off.shardCpuMs, h.on.shardCpuMs) >= 0.5,
      why:
        cut(h.off.shardCpuMs, h.on.shardCpuMs) >= 0.5
          ? ''
          : "at scaled rows every table is cache-resident: a shard's cost is its per-request HTTP and encoding work, which the cache does not remove",
    },
    {
      goal: 'hot-row cache: p99 and answers',
      target: 'p99 down, exact',
      measured: `p99 ${h.on.p99Ms} / ${h.off.p99Ms} ms; scores within ${h.maxRelDiff.toExponential(1)}`,
      met: h.on.p99Ms < h.off.p99Ms && h.maxRelDiff === 0,
      why: "the main adds the cached rows' sum to the shard's once: equal within fp32 rounding, not bit for bit; p99 moves within noise",
    },
  ];
}

function goalsSection(r: BenchResults): string[] {
  const row = (g: Goal) => [g.goal, g.target, g.measured, g.met === undefined ? '' : verdict(g.met), g.why];
  return [
    '## Goals of issue 19 (capacity beyond one server)',
    '',
    table(['goal', 'target', 'measured', 'verdict', 'reason, where not met'], capacityGoals(r).map(row)),
    '',
    '## Goals of issue 18 (the operator at scale)',
    '',
    table(['goal', 'target', 'measured', 'verdict', 'reason, where not met'], operatorGoals(r).map(row)),
    '',
    '## Goals of issue 17 (serving speed)',
    '',
    table(['goal', 'target', 'measured', 'verdict', 'reason, where not met'], goals(r).map(row)),
    '',
  ];
}

function capacitySection(c: CapacityResult): string[] {
  const q = c.int8;
  const s = c.split;
  return [
    '## 9. Capacity beyond one server: int8 tables and tables split by rows',
    '',
    `Rows of a dim-${c.dim} table one ${c.shardMemory} shard holds (the planner's sizes: an int8 row is its bytes padded to 4 plus an fp32 ` +
      `scale and bias):`,
    '',
    table(
      ['dtype', 'bytes per row', 'rows per shard', 'against fp32'],
      c.rowsPerShard.map((x) => [x.dtype, x.rowBytes, x.rows.toLocaleString('en'), `${x.vsFp32.toFixed(2)}x`]),
    ),
    '',
    `**int8 accuracy.** ${q.model} (${q.tables} tables), quantised row-wise by the generator from the very values of the fp32 model of ` +
      `the same seed; ${q.queries} queries of 64 samples at Zipf 1.05, sum pooling: the largest difference of any pooled element is ` +
      `${q.pooledMaxAbs.toExponential(2)}, of any score ${q.scoreMaxAbs.toExponential(2)} (scores up to ${q.scoreMax.toFixed(3)}; ` +
      `each element is within half its row's step, test/unit/dataplane/int8.test.ts). **Pooling speed**, the SIMD kernels on one core, ` +
      `${q.kernel.rows.toLocaleString('en')} rows of dim ${c.dim} (far larger than the caches), 256 samples of 80 uniform lookups: ` +
      `fp32 ${(q.kernel.fp32 / 1e6).toFixed(1)} M/s, int8 ${(q.kernel.int8 / 1e6).toFixed(1)} M/s (${q.kernel.speedup.toFixed(2)}x).`,
    '',
    `**A table split by rows** (${s.tableMiB} MiB of fp32 rows over shards of ${s.shardMiB} MiB: ${s.pieces} pieces) against the same ` +
      `table whole on one larger shard, load-balanced, queries of ${s.batch} samples at Zipf ${s.zipf} one at a time; "answered" is ` +
      `the bytes the shards answer per query, counted from the queries as the main routes them (a pooled vector per sample and ` +
      `table; for a split table a row per distinct index of each piece). Scores bit-for-bit equal: ${verdict(s.exact)}.`,
    '',
    table(
      ['', 'p50', 'p99', 'answered per query'],
      [
        ['whole', `${s.whole.p50Ms} ms`, `${s.whole.p99Ms} ms`, `${s.whole.answerKiB} KiB`],
        [`split (${s.pieces} pieces)`, `${s.split.p50Ms} ms`, `${s.split.p99Ms} ms`, `${s.split.answerKiB} KiB`],
      ],
    ),
    '',
    ...hotRowLines(c.hotRows),
  ];
}

function hotRowLines(h: CapacityResult['hotRows']): string[] {
  const bytesCut = cut(h.off.shardRequestKiB, h.on.shardRequestKiB);
  const cpuCut = cut(h.off.shardCpuMs, h.on.shardCpuMs);
  const met = bytesCut >= 0.5 && cpuCut >= 0.5 && h.on.p99Ms < h.off.p99Ms && h.maxRelDiff <= 1e-5;
  const row = (name: string, r: HotRowRun) => [
    name,
    `${r.p50Ms} ms`,
    `${r.p99Ms} ms`,
    r.shardLookups.toLocaleString('en'),
    `${r.shardRequestKiB} KiB`,
    `${r.shardCpuMs} ms`,
    `${r.mainCpuMs} ms`,
    pct(r.hitRate),
  ];
  return [
    `**The hot-row cache.** ${h.model} (rows scaled: ${h.tableKiB} KiB of tables) load-balanced over ${h.shards} shards, queries of ` +
      `${h.batch} samples at Zipf ${h.zipf} one at a time, without and with a cache of ${h.cacheKiB} KiB in the main (a quarter of ` +
      `the rows), chosen from the same traffic. Indices and their request bytes are those the shards pooled; CPU is per query.`,
    '',
    table(['', 'p50', 'p99', 'indices to shards', 'sent to shards', 'shard CPU', 'main CPU', 'hit rate'], [row('no cache', h.off), row('cache', h.on)]),
    '',
    `Bytes sent to shards ${pct(bytesCut)} fewer, shard CPU ${pct(cpuCut)} less, p99 ${h.on.p99Ms} against ${h.off.p99Ms} ms, scores ` +
      `within ${h.maxRelDiff.toExponential(1)} of the largest (the main adds the cached rows' sum to the shard's once: fp32 rounding). ` +
      `Target (at least 50% fewer bytes and shard CPU, p99 down, answers within 1e-5): ${verdict(met)}.`,
    '',
  ];
}

export function renderReport(r: BenchResults, charts: Record<string, string>): string {
  const m = r.machine;
  const out: string[] = [
    '# Benchmarks',
    '',
    `Produced by \`${r.command}\` on ${r.startedAt.slice(0, 10)}, in ${Math.floor(r.durationS / 60)} min ${Math.round(r.durationS % 60)} ` +
      `s${r.quick ? ' (quick mode: smoke-test sizes, not for reading numbers from)' : ''}.`,
    '',
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}. Every process of a measurement ` +
      `(the load generator, the main, the shards) shares those cores, and ratios are measured side by side in one run; ` +
      `these machines are noisy, so read differences of a few percent as ties.`,
    '',
    'Models are the DeepRecInfra shapes of `examples/` with table rows scaled by 0.001 (so several fit in memory at ' +
      'once) and query sizes from the production-like distribution (lognormal, median 60, capped at 1,000) unless stated.',
    '',
  ];
  out.push(...goalsSection(r));
  // a section rerun by --only says so under its heading (the rollout section names its command itself)
  const section = (key: string, lines: string[]) => {
    const p = r.produced?.[key];
    if (p && (p.command !== r.command || p.day !== r.startedAt.slice(0, 10) || p.machine.cpuModel !== r.machine.cpuModel))
      lines.splice(2, 0, `Produced by \`${p.command}\` on ${p.day}, ${p.machine.cores} cores (${p.machine.cpuModel}).`, '');
    out.push(...lines);
  };
  if (r.scheduling) section('scheduling', schedulingSection(r as Required<BenchResults>, charts));
  if (r.scaleOut) section('scaleOut', scaleOutSection(r as Required<BenchResults>, charts));
  if (r.kernel) section('kernel', kernelSection(r as Required<BenchResults>, charts));
  if (r.overhead) section('overhead', overheadSection(r as Required<BenchResults>, charts));
  if (r.autoscaling) section('autoscaling', autoscalingSection(r as Required<BenchResults>, charts));
  if (r.rollout) out.push(...rolloutSection(r.rollout, charts));
  if (r.serving) section('serving', servingSection(r.serving, charts));
  if (r.operator) section('operator', operatorSection(r.operator));
  if (r.capacity) section('capacity', capacitySection(r.capacity));
  out.push('## Reproducing', '', '```', r.command, '```', '', 'Raw results: [bench/results.json](bench/results.json).', '');
  return out.join('\n');
}
