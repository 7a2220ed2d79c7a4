// The benchmark charts, as Vega-Lite specifications rendered to SVG by Vega (no browser needed).
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { KernelResult } from './kernel.js';
import type { OverheadRow } from './overhead.js';
import type { ScaleOutResult } from './scaleout.js';
import type { SchedulingRow } from './scheduling.js';

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
    { model: r.model, config: `auto (B → ${r.auto.finalBatchSize})`.replace(/\(B → \d+\)/, 'auto'), qps: r.auto.qps },
  ]);
  const order = ['whole query', ...(rows[0]?.sweep.map((s) => `B = ${s.batchSize}`) ?? []), 'auto'];
  return {
    ...base,
    title: { text: 'Latency-bounded throughput by scheduler (p95 under each model\'s target)', subtitle: 'higher is better' },
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
  const values = results.flatMap((r) => r.rows.flatMap((row) => [
    { model: r.model, config: row.config, value: row[metric], percentile: 'p99' },
    ...(metric === 'p99Ms' ? [{ model: r.model, config: row.config, value: row.p50Ms, percentile: 'p50' }] : []),
  ]));
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
      color: metric === 'p99Ms' ? { field: 'percentile', type: 'nominal', sort: ['p50', 'p99'], title: null } : { field: 'config', type: 'nominal', sort: order, legend: null },
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
  ]);
  const order = ['JavaScript loop', 'recshard (WebAssembly SIMD)', 'C, textbook loop', 'C, our loop order'];
  return {
    ...base,
    title: { text: 'Pooled lookups per second on one core', subtitle: `dim ${k.rows[0]?.dim}, ${k.pooling} lookups per sample; C by ${k.compiler.split(' ')[0]} ${k.flags}` },
    data: { values },
    mark: 'bar',
    encoding: {
      column: { field: 'table', type: 'nominal', title: null },
      x: { field: 'kernel', type: 'nominal', sort: order, title: null, axis: { labelAngle: -40 } },
      y: { field: 'mlps', type: 'quantitative', title: 'million lookups / s' },
      color: { field: 'kernel', type: 'nominal', sort: order, legend: null },
    },
    width: 200,
    height: 220,
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

export function overheadChart(rows: OverheadRow[]): TopLevelSpec {
  const order = ['onnxruntime (bare)', 'embeddings', 'interaction', 'server: parse, schedule, worker hop, ORT calls', 'HTTP client and transport'];
  const values = rows.flatMap((r) => {
    const serverRest = Math.max(0, r.server.endToEnd - r.server.embeddings - r.server.interaction - r.bareOrtUs);
    return [
      { model: r.model, part: order[0], us: r.bareOrtUs },
      { model: r.model, part: order[1], us: r.server.embeddings },
      { model: r.model, part: order[2], us: r.server.interaction },
      { model: r.model, part: order[3], us: serverRest },
      { model: r.model, part: order[4], us: Math.max(0, r.endToEndUs - r.server.endToEnd) },
    ];
  });
  return {
    ...base,
    title: { text: `Where one query's time goes (batch ${rows[0]?.batch}, medians and means, µs)` },
    data: { values },
    mark: 'bar',
    encoding: {
      y: { field: 'model', type: 'nominal', title: null },
      x: { field: 'us', type: 'quantitative', title: 'µs', stack: 'zero' },
      color: { field: 'part', type: 'nominal', sort: order, title: null, legend: { orient: 'bottom', columns: 2 } },
      order: { field: 'part', sort: 'ascending' },
    },
    width: 520,
    height: 90,
  } as TopLevelSpec;
}
