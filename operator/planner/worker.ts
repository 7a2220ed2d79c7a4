// The planner's worker thread: plans arrive as resolved specs, plans (or the planner's error) go back, so a
// 65,536-table model never holds the operator's event loop (its health checks and Lease renewals).
import { parentPort } from 'node:worker_threads';
import type { PlanRequest, PlanReply } from './offload.js';
import { planModel } from './plan.js';

parentPort!.on('message', ({ id, spec, limits }: PlanRequest) => {
  let reply: PlanReply;
  try {
    const r = planModel(spec, limits);
    reply = r.ok ? { id, ok: true, plan: r.plan } : { id, ok: false, reason: r.error.reason, message: r.error.message };
  } catch (e) {
    reply = { id, ok: false, crash: (e as Error).stack ?? String(e) };
  }
  parentPort!.postMessage(reply);
});
