// GET /v1/models/NAME on a main: the model's shape, for clients that build requests (the load generator), and
// the state of its scheduler (DeepRecSched), which the operator reads into status.scheduler.
import type { Interaction, TableManifest } from './model-format.js';

export interface SchedulerInfo {
  mode: 'auto' | 'fixed';
  /** The batch size B queries are split into. */
  batchSize: number;
  /** Queries larger than this go whole to the accelerator; absent without one. */
  acceleratorThreshold?: number;
  /** Tuning windows closed so far. */
  windows: number;
  /** The latency at the target percentile in the last closed window, in ms. */
  windowLatencyMs?: number;
  /** Process CPU per item served in the last closed window, in ms. */
  windowCpuPerItemMs?: number;
}

/** Tables in protocol order: a table's position is its index in the binary formats. */
export type TableInfo = Pick<TableManifest, 'name' | 'rows' | 'dim' | 'dtype' | 'net' | 'poolingFactor'>;

export interface ModelInfo {
  name: string;
  architecture: string;
  denseFeatures: number;
  interaction: Interaction;
  /** Scores per sample. */
  outputs: number;
  scheduler: SchedulerInfo;
  tables: TableInfo[];
}
