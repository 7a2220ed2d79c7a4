// The benchmark charts, as Vega-Lite specifications rendered to SVG by Vega (no browser needed).
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { AutoscalingResult } from './autoscaling/compare.js';
import type { KernelResult } from './kernel.js';
import type { OverheadRow } from './overhead.js';
import type { RolloutResult } from './rollout.js';
import type { ScaleOutResult } from './scaleout.js';
import type { SchedulingRow } from './scheduling.js';
import type { ServingResult } from './serving.js';

export async function svg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const out = await view.toSVG();
  view.finalize();
  return out;
}

const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: { font: 'Helvetica, Arial, sans-serif', view: { stroke: null } } } as const;

export function schedulingChart(rows: SchedulingRow[]): TopLevelSpec {
  const values = rows.flatMap((r) => [
    { model: r.model, config: 'whole query', qps: r.whole.qps },
    ...r.sweep.map((s) => ({ model: r.model, config: `B = ${s.batchSize}`, qps: s.run.qps })),
    { model: r.model, config: 'auto', qps: r.auto.qps },
  ]);
  const order = ['whole query', ...(rows[0]?.sweep.map((s) => `B = ${s.batchSize}`) ?? []), 'auto'];
  return {
    ...base,
    title: { text: "Latency-bounded throughput by scheduler (p95 under each model's target)", subtitle: 'higher is better' },
    data: { values },
    mark: 'bar',
    encoding: {
      column: { field: 'model', type: 'nominal', title: null, header: { labelFontSize: 12 } },
      x: { field: 'config', type: 'nominal', sort: order, title: null, axis: { labelAngle: -40 } },
      y: { field: 'qps', type: 'quantitative', title: 'QPS' },
      color: { field: 'config', type: 'nominal', sort: order, legend: null, scale: { scheme: 'tableau10' } },
    },
    width: 130,
    height: 220,
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

export function scaleOutChart(results: ScaleOutResult[], metric: 'p99Ms' | 'cpuSecondsPer1000'): TopLevelSpec {
  const values = results.flatMap((r) =>
    r.rows.flatMap((row) => [
      { model: r.model, config: row.config, value: row[metric], percentile: 'p99' },
      ...(metric === 'p99Ms' ? [{ model: r.model, config: row.config, value: row.p50Ms, percentile: 'p50' }] : []),
    ]),
  );
  const order = results[0]?.rows.map((r) => r.config) ?? [];
  const title = metric === 'p99Ms' ? 'Latency at the same offered load, by sharding' : 'CPU seconds per 1,000 queries, all processes, by sharding';
  return {
    ...base,
    title: { text: title, subtitle: 'lower is better' },
    data: { values: metric === 'p99Ms' ? values : values.filter((v) => v.percentile === 'p99') },
    mark: 'bar',
    encoding: {
      column: { field: 'model', type: 'nominal', title: null },
      x: { field: 'config', type: 'nominal', sort: order, title: null, axis: { labelAngle: -40 } },
      ...(metric === 'p99Ms' ? { xOffset: { field: 'percentile', type: 'nominal', sort: ['p50', 'p99'] } } : {}),
      y: { field: 'value', type: 'quantitative', title: metric === 'p99Ms' ? 'ms' : 'CPU s / 1000 queries' },
      color:
        metric === 'p99Ms'
          ? { field: 'percentile', type: 'nominal', sort: ['p50', 'p99'], title: null }
          : { field: 'config', type: 'nominal', sort: order, legend: null },
    },
    width: 220,
    height: 220,
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

export function kernelChart(k: KernelResult): TopLevelSpec {
  const values = k.rows.flatMap((r) => [
    { table: `${r.table} (${r.tableMiB} MiB)`, kernel: 'JavaScript loop', mlps: r.js / 1e6 },
    { table: `${r.table} (${r.tableMiB} MiB)`, kernel: 'recshard (WebAssembly SIMD)', mlps: r.wasm / 1e6 },
    { table: `${r.table} (${r.tableMiB} MiB)`, kernel: 'C, textbook loop', mlps: r.cNaive / 1e6 },
    { table: `${r.table} (${r.tableMiB} MiB)`, kernel: 'C, our loop order', mlps: r.cBlocked / 1e6 },
    ...(r.torch ? [{ table: `${r.table} (${r.tableMiB} MiB)`, kernel: 'PyTorch embedding_bag', mlps: r.torch / 1e6 }] : []),
  ]);
  const order = ['JavaScript loop', 'recshard (WebAssembly SIMD)', 'C, textbook loop', 'C, our loop order', 'PyTorch embedding_bag'];
  return {
    ...base,
    title: {
      text: 'Pooled lookups per second on one core',
      subtitle: `dim ${k.rows[0]?.dim}, ${k.pooling} lookups per sample; C by ${k.compiler.split(' ')[0]} ${k.flags}`,
    },
    data: { values },
    ...facetedBars({ column: 'table', bar: 'kernel', order, y: 'mlps', yTitle: 'million lookups / s', width: 200 }),
  } as TopLevelSpec;
}

/** Bars of `bar` (in `order`, one colour each) for every value of `column`, each panel on its own y scale. */
function facetedBars(o: { column: string; columnOrder?: string[]; bar: string; order: string[]; y: string; yTitle: string; width: number }) {
  return {
    mark: 'bar',
    encoding: {
      column: { field: o.column, type: 'nominal', title: null, ...(o.columnOrder ? { sort: o.columnOrder } : {}) },
      x: { field: o.bar, type: 'nominal', sort: o.order, title: null, axis: { labelAngle: -40 } },
      y: { field: o.y, type: 'quantitative', title: o.yTitle },
      color: { field: o.bar, type: 'nominal', sort: o.order, legend: null },
    },
    width: o.width,
    height: 220,
    resolve: { scale: { y: 'independent' } },
  };
}

export function overheadChart(rows: OverheadRow[]): TopLevelSpec {
  const parts = overheadParts(rows[0]!).map((p) => p.part);
  const values = rows.flatMap((r) => overheadParts(r).map((p, i) => ({ model: r.model, ...p, order: i })));
  return {
    ...base,
    title: { text: `Where one query's time goes (batch ${rows[0]?.batch}; µs, medians and stage means)` },
    data: { values },
    mark: 'bar',
    encoding: {
      y: { field: 'model', type: 'nominal', title: null },
      x: { field: 'us', type: 'quantitative', title: 'µs', stack: 'zero' },
      color: { field: 'part', type: 'nominal', sort: parts, title: null, legend: { orient: 'bottom', columns: 2, labelLimit: 400 } },
      order: { field: 'order', type: 'quantitative' },
    },
    width: 560,
    height: 90,
  } as TopLevelSpec;
}

/** One query's time, split: bare onnxruntime, what onnxruntime took beyond that in the server, the model's other
 * work, the rest of the server, and the client and transport. */
export function overheadParts(r: OverheadRow): { part: string; us: number }[] {
  const dense = Math.max(r.server.dense, r.bareOrtUs);
  return [
    { part: 'onnxruntime, bare', us: r.bareOrtUs },
    { part: 'onnxruntime in the server, beyond bare', us: dense - r.bareOrtUs },
    { part: 'embedding lookups', us: r.server.embeddings },
    { part: 'interaction', us: r.server.interaction },
    { part: 'server: HTTP, parsing, scheduling, worker hand-off', us: Math.max(0, r.server.endToEnd - dense - r.server.embeddings - r.server.interaction) },
    { part: 'client and transport', us: Math.max(0, r.endToEndUs - r.server.endToEnd) },
  ];
}

/** The demo's picture: p50 and p99 per strategy at one offered load. */
export function strategiesChart(rows: { strategy: string; p50Ms: number; p99Ms: number }[], subtitle: string): TopLevelSpec {
  const values = rows.flatMap((r) => [
    { strategy: r.strategy, percentile: 'p50', ms: r.p50Ms },
    { strategy: r.strategy, percentile: 'p99', ms: r.p99Ms },
  ]);
  return {
    ...base,
    title: { text: 'Latency by sharding strategy', subtitle },
    data: { values },
    mark: 'bar',
    encoding: {
      x: { field: 'strategy', type: 'nominal', sort: rows.map((r) => r.strategy), title: null, axis: { labelAngle: 0 } },
      xOffset: { field: 'percentile', type: 'nominal', sort: ['p50', 'p99'] },
      y: { field: 'ms', type: 'quantitative', title: 'ms' },
      color: { field: 'percentile', type: 'nominal', sort: ['p50', 'p99'], title: null },
    },
    width: 460,
    height: 240,
  } as TopLevelSpec;
}

/** Replicas over time under each controller, with the offered load, one panel per trace. */
export function autoscalingChart(r: AutoscalingResult): TopLevelSpec {
  const panel = (t: AutoscalingResult['traces'][number]) => {
    const minutes = (sec: number) => Math.round((sec / 60) * 100) / 100;
    const replicas = t.series.map((p) => ({ minutes: minutes(p.t), controller: p.controller, replicas: p.replicas }));
    const load = t.series.filter((p) => p.controller === 'HPA').map((p) => ({ minutes: minutes(p.t), qps: p.qps }));
    return {
      title: { text: t.title, fontSize: 12 },
      layer: [
        {
          data: { values: replicas },
          mark: { type: 'line', interpolate: 'step-after' },
          encoding: {
            x: { field: 'minutes', type: 'quantitative', title: 'minutes' },
            y: { field: 'replicas', type: 'quantitative', title: 'replicas' },
            color: {
              field: 'controller',
              type: 'nominal',
              title: null,
              sort: ['recshard', 'HPA'],
              scale: { domain: ['recshard', 'HPA'], range: ['#4c78a8', '#e45756'] },
            },
          },
        },
        {
          data: { values: load },
          mark: { type: 'line', strokeDash: [4, 3], color: '#9d9d9d' },
          encoding: {
            x: { field: 'minutes', type: 'quantitative' },
            y: { field: 'qps', type: 'quantitative', title: 'offered QPS (dashed)', axis: { orient: 'right' } },
          },
        },
      ],
      resolve: { scale: { y: 'independent' } },
      width: 320,
      height: 150,
    };
  };
  return {
    ...base,
    title: {
      text: "Replicas under recshard's latency autoscaler and under the HPA algorithm, same traces",
      subtitle: `simulated pods with measured service times; target p${r.percentile} ${r.targetMs} ms`,
    },
    concat: r.traces.map(panel),
    columns: 2,
  } as TopLevelSpec;
}

/** p99 per second of the run, with the switch (apply to last old pod gone) shaded and failed answers marked. */
export function rolloutChart(r: RolloutResult): TopLevelSpec {
  return {
    ...base,
    title: {
      text: `Re-sharding ${r.from} -> ${r.to} under ${r.qps} QPS on real pods`,
      subtitle: 'p99 latency per second; shaded: from kubectl apply to the last old pod gone',
    },
    width: 560,
    height: 220,
    layer: [
      {
        data: { values: [{ from: r.window.fromS, to: r.window.toS }] },
        mark: { type: 'rect', color: '#f2c14e', opacity: 0.3 },
        encoding: { x: { field: 'from', type: 'quantitative' }, x2: { field: 'to' } },
      },
      {
        data: { values: r.timeline },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'seconds since the load began' },
          y: { field: 'p99Ms', type: 'quantitative', title: 'p99 latency (ms)' },
        },
      },
      {
        data: { values: r.timeline.filter((s) => s.failed > 0) },
        mark: { type: 'point', color: '#d62728', shape: 'cross', size: 80 },
        encoding: { x: { field: 't', type: 'quantitative' }, y: { value: 10 } },
      },
    ],
  } as TopLevelSpec;
}

/** p50 latency by batch size: recshard, PyTorch eager behind http.server, and the node:http echo floor. */
export function servingChart(r: ServingResult): TopLevelSpec {
  const servers = ['recshard', 'PyTorch eager + http.server', 'node:http echo (floor)'];
  const values = r.rows.flatMap((x) => [
    { batch: `batch ${x.batch}`, server: servers[0], ms: x.recshard.p50Us / 1000 },
    { batch: `batch ${x.batch}`, server: servers[1], ms: x.torch.p50Us / 1000 },
    { batch: `batch ${x.batch}`, server: servers[2], ms: x.echo.p50Us / 1000 },
  ]);
  return {
    ...base,
    title: { text: `${r.model} end to end, one client`, subtitle: 'p50 latency; lower is better' },
    data: { values },
    ...facetedBars({
      column: 'batch',
      columnOrder: r.rows.map((x) => `batch ${x.batch}`),
      bar: 'server',
      order: servers,
      y: 'ms',
      yTitle: 'p50 latency (ms)',
      width: 150,
    }),
  } as TopLevelSpec;
}
