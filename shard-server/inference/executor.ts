// Where request parts run: inline on the event loop, or on a pool of worker threads, each with its own
// single-threaded onnxruntime sessions and a view of the same SharedArrayBuffer tables (DeepRecSched's
// one-request-per-core execution). The pool keeps one FIFO queue and hands a part to the first idle worker.
import { Worker } from 'node:worker_threads';
import { builtSibling } from '../../operator/lib/paths.js';
import type { Logger } from '../../operator/lib/log.js';
import type { EmbeddingTable } from '../model/load.js';
import type { Arena } from './kernels/pool.js';
import type { Manifest } from '../model/manifest.js';
import type { PartComputer, PartResult, PartTask } from './compute.js';

export interface Executor {
  /** Parts that can run at once. */
  readonly size: number;
  /** Parts waiting for a free slot. */
  readonly queued: number;
  /** Runs a part; resolves with its scores, stage timings and the seconds it waited for a slot. */
  run(task: PartTask): Promise<PartResult & { waited: number }>;
  close(): Promise<void>;
}

export class InlineExecutor implements Executor {
  readonly size = 1;
  readonly queued = 0;
  constructor(private readonly computer: PartComputer) {}
  async run(task: PartTask) {
    return { ...(await this.computer.run(task)), waited: 0 };
  }
  async close() {}
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
  job?: Job;
}

type Reply = { ready: true } | { result: PartResult } | { error: string };


export class WorkerPool implements Executor {
  private readonly slots: Slot[] = [];
  private readonly idle: Slot[] = [];
  private readonly queue: Job[] = [];
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

  get size(): number {
    return this.slots.length;
  }

  get queued(): number {
    return this.queue.length;
  }

  run(task: PartTask): Promise<PartResult & { waited: number }> {
    if (this.closing) return Promise.reject(new Error('worker pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ task, enqueued: performance.now(), resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const j of this.queue.splice(0)) j.reject(new Error('worker pool is closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const slot = this.idle.pop()!;
      const job = this.queue.shift()!;
      slot.job = job;
      job.waited = (performance.now() - job.enqueued) / 1000;
      slot.worker.postMessage(job.task);
    }
  }

  private spawn(slot: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(builtSibling(import.meta.url, 'worker.js'), { workerData: { ...this.init, slot } });
      const entry: Slot = { worker, slot };
      let ready = false;
      worker.on('message', (m: Reply) => {
        if ('ready' in m) {
          ready = true;
          this.slots.push(entry);
          this.idle.push(entry);
          this.pump();
          return resolve();
        }
        const job = entry.job!;
        entry.job = undefined;
        this.idle.push(entry);
        if ('error' in m) job.reject(new Error(m.error));
        else job.resolve({ ...m.result, waited: job.waited ?? 0 });
        this.pump();
      });
      worker.on('error', (e) => {
        if (!ready) return reject(e);
        this.log.error('worker failed', { error: e.message });
      });
      worker.on('exit', (code) => {
        if (!ready || this.closing) return;
        // A worker that dies takes its part with it; the rest carry on and a replacement starts.
        entry.job?.reject(new Error(`worker exited with code ${code}`));
        this.slots.splice(this.slots.indexOf(entry), 1);
        const i = this.idle.indexOf(entry);
        if (i >= 0) this.idle.splice(i, 1);
        this.spawn(slot).catch((e: Error) => this.log.error('worker restart failed', { error: e.message }));
      });
    });
  }
}
