// Plans off the event loop: models with many tables are planned in a worker thread (worker.ts), small ones inline
// (a thread hop costs more than their plan). One thread, one plan at a time, in the order asked.
import { Worker } from 'node:worker_threads';
import { builtSibling } from '../../lib/paths.js';
import type { ResolvedRecModelSpec } from '../api/v1alpha1/index.js';
import { PlanError, type PlanErrorReason } from './errors.js';
import { DEFAULT_PLAN_LIMITS, planModel, type Plan, type PlanLimits, type PlanResult } from './plan.js';

export interface PlanRequest {
  id: number;
  spec: ResolvedRecModelSpec;
  limits: PlanLimits;
}
export type PlanReply =
  { id: number; ok: true; plan: Plan } | { id: number; ok: false; reason: PlanErrorReason; message: string } | { id: number; ok: false; crash: string };

/** Models with at least this many tables are planned in the thread (about 10 ms of planning inline). */
export const OFFLOAD_TABLES = 2048;

/** Tables a model declares, without expanding its groups. */
export function tableCount(model: Pick<ResolvedRecModelSpec['model'], 'tables' | 'tableGroups'>): number {
  return (model.tables?.length ?? 0) + (model.tableGroups ?? []).reduce((s, g) => s + g.count, 0);
}

export class Planner {
  private worker?: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, (r: PlanReply) => void>();

  constructor(
    private readonly limits: PlanLimits = DEFAULT_PLAN_LIMITS,
    private readonly offloadTables = OFFLOAD_TABLES,
  ) {}

  async plan(spec: ResolvedRecModelSpec): Promise<PlanResult> {
    if (tableCount(spec.model) < this.offloadTables) return planModel(spec, this.limits);
    const id = this.nextId++;
    const reply = await new Promise<PlanReply>((resolve) => {
      this.pending.set(id, resolve);
      this.thread().postMessage({ id, spec, limits: this.limits } satisfies PlanRequest);
    });
    if (reply.ok) return { ok: true, plan: reply.plan };
    if ('crash' in reply) throw new Error(`planner thread: ${reply.crash}`);
    return { ok: false, error: new PlanError(reply.reason, reply.message) };
  }

  /** Stops the thread; a later plan starts another. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(builtSibling(import.meta.url, 'worker.js'));
    w.unref(); // an idle planner never keeps the process alive
    w.on('message', (r: PlanReply) => {
      this.pending.get(r.id)?.(r);
      this.pending.delete(r.id);
    });
    // a thread that dies fails what it held; the next plan starts a new one
    const fail = (why: string) => {
      if (this.worker === w) this.worker = undefined;
      for (const [id, resolve] of this.pending) resolve({ id, ok: false, crash: why });
      this.pending.clear();
    };
    w.on('error', (e) => fail(e.stack ?? String(e)));
    w.on('exit', (code) => fail(`exited with code ${code}`));
    this.worker = w;
    return w;
  }
}
