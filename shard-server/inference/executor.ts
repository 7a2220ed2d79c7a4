// Where request parts run: inline on the event loop, or on a pool of worker threads, each with its own
// single-threaded onnxruntime sessions and a view of the same SharedArrayBuffer tables (DeepRecSched's
// one-request-per-core execution). The pool keeps one FIFO queue and hands a part to the least busy worker.
import { Worker } from 'node:worker_threads';
import type { Manifest } from '../../contracts/model-format.js';
import type { Logger } from '../../lib/log.js';
import { builtSibling } from '../../lib/paths.js';
import type { Arena } from '../kernels/pool.js';
import type { EmbeddingTable } from '../model/load.js';
import type { PartComputer, PartResult, PartTask } from './compute.js';

export interface Executor {
  /**
   * Runs a part; resolves with its scores, stage timings and the seconds it waited for a slot. A part still
   * waiting when `signal` aborts is dropped (rejected with the signal's reason); one already running finishes.
   */
  run(task: PartTask, signal?: AbortSignal): Promise<PartResult & { waited: number }>;
  close(): Promise<void>;
  /**
   * The executor to run a part on the event loop now, if that is where it should run: always for the inline
   * executor; for the pool, when the part is `alone` (its query has one part and no other query is in progress)
   * and no worker has anything to do, since a hand-off then costs more than it saves. A part run there may hold
   * views of the request's own buffers (nothing is transferred).
   */
  inlineFor?(alone: boolean): Executor | undefined;
}

export class InlineExecutor implements Executor {
  constructor(private readonly computer: PartComputer) {}
  async run(task: PartTask, signal?: AbortSignal) {
    signal?.throwIfAborted();
    return { ...(await this.computer.run(task)), waited: 0 };
  }
  inlineFor(): Executor {
    return this;
  }
  async close() {}
}

/** A worker pool that lets a lone part run on the event loop (see Executor.inlineFor). */
export class HybridExecutor implements Executor {
  constructor(
    private readonly pool: WorkerPool,
    private readonly inline: InlineExecutor,
  ) {}
  run(task: PartTask, signal?: AbortSignal) {
    return this.pool.run(task, signal);
  }
  inlineFor(alone: boolean): Executor | undefined {
    return alone && this.pool.idle ? this.inline : undefined;
  }
  close() {
    return this.pool.close();
  }
}

/** A part's buffers move to the worker instead of being copied (each is the part's own, see batching.ts). */
export function transferables(task: PartTask): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  const add = (a: ArrayBufferView) => {
    if (a.buffer instanceof ArrayBuffer && a.byteLength > 0) out.add(a.buffer);
  };
  add(task.dense);
  for (const [, offsets, indices] of task.sparse) {
    add(offsets);
    add(indices);
  }
  for (const [, values] of task.remote) add(values);
  return [...out];
}

/** What a worker needs to build its PartComputer: the model files' bytes and the shared tables. */
export interface WorkerInit {
  manifest: Manifest;
  bottom?: Uint8Array;
  top: Uint8Array;
  tables: { index: number; meta: EmbeddingTable['meta']; buffer: SharedArrayBuffer; arena?: Arena }[];
  /** onnxruntime execution providers, e.g. ['cuda'] for the accelerator; default cpu. */
  providers?: string[];
}

interface Job {
  task: PartTask;
  enqueued: number;
  /** Seconds between run() and a worker taking the part. */
  waited?: number;
  resolve: (r: PartResult & { waited: number }) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  /** The worker's kernel slot, kept by its replacement. */
  slot: number;
  ready: boolean;
  /** Parts sent and not yet answered, by id. */
  inflight: Map<number, Job>;
}

/**
 * Parts in flight per worker: the second is already there when the first finishes, so a worker does not sit
 * idle for a message round trip between parts.
 */
const DEPTH = 2;

type Reply = { ready: true } | { id: number; result: PartResult } | { id: number; error: string };

export class WorkerPool implements Executor {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 0;
  private closing = false;

  private constructor(
    private readonly init: WorkerInit,
    private readonly log: Logger,
  ) {}

  /**
   * Starts `size` workers and resolves once every one has loaded its sessions. Worker i pools in kernel slot
   * firstSlot + i of the tables' arenas.
   */
  static async start(init: WorkerInit, size: number, log: Logger, firstSlot = 1): Promise<WorkerPool> {
    const pool = new WorkerPool(init, log);
    try {
      await Promise.all(Array.from({ length: size }, (_, i) => pool.spawn(firstSlot + i)));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** No part waiting or running. */
  get idle(): boolean {
    return this.queue.length === 0 && this.slots.every((s) => s.inflight.size === 0);
  }

  run(task: PartTask, signal?: AbortSignal): Promise<PartResult & { waited: number }> {
    if (this.closing) return Promise.reject(new Error('worker pool is closed'));
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const job: Job = { task, enqueued: performance.now(), resolve, reject };
      if (signal) {
        const drop = () => {
          const i = this.queue.indexOf(job);
          if (i >= 0) {
            this.queue.splice(i, 1);
            reject(signal.reason as Error);
          }
        };
        signal.addEventListener('abort', drop, { once: true });
        const settle = () => signal.removeEventListener('abort', drop);
        job.resolve = (r) => (settle(), resolve(r));
        job.reject = (e) => (settle(), reject(e));
      }
      this.queue.push(job);
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const j of this.queue.splice(0)) j.reject(new Error('worker pool is closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length) {
      let slot: Slot | undefined;
      for (const s of this.slots) if (s.ready && s.inflight.size < DEPTH && (!slot || s.inflight.size < slot.inflight.size)) slot = s;
      if (!slot) return;
      const job = this.queue.shift()!;
      const id = this.nextId++;
      slot.inflight.set(id, job);
      job.waited = (performance.now() - job.enqueued) / 1000;
      slot.worker.postMessage({ id, task: job.task }, transferables(job.task));
    }
  }

  private spawn(slot: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(builtSibling(import.meta.url, 'worker.js'), { workerData: { ...this.init, slot } });
      const entry: Slot = { worker, slot, ready: false, inflight: new Map() };
      worker.on('message', (m: Reply) => {
        if ('ready' in m) {
          entry.ready = true;
          this.slots.push(entry);
          this.pump();
          return resolve();
        }
        const job = entry.inflight.get(m.id)!;
        entry.inflight.delete(m.id);
        if ('error' in m) job.reject(new Error(m.error));
        else job.resolve({ ...m.result, waited: job.waited ?? 0 });
        this.pump();
      });
      worker.on('error', (e) => {
        if (!entry.ready) return reject(e);
        this.log.error('worker failed', { error: e.message });
      });
      worker.on('exit', (code) => {
        if (!entry.ready || this.closing) return;
        // A worker that dies takes its parts with it; the rest carry on and a replacement starts.
        for (const job of entry.inflight.values()) job.reject(new Error(`worker exited with code ${code}`));
        this.slots.splice(this.slots.indexOf(entry), 1);
        this.spawn(slot).catch((e: Error) => this.log.error('worker restart failed', { error: e.message }));
      });
    });
  }
}
