// A worker thread of the main role: builds its own single-threaded onnxruntime sessions over the model bytes
// and views of the shared tables, then runs one request part per message.
import { parentPort, workerData } from 'node:worker_threads';
import { setThreadSlot } from '../kernels/pool.js';
import { tableView, type EmbeddingTable } from '../model/load.js';
import { PartComputer, type PartTask } from './compute.js';
import { loadDenseNets } from './dense.js';
import type { WorkerInit } from './executor.js';

const init = workerData as WorkerInit & { slot: number };
setThreadSlot(init.slot);
const m = init.manifest;
const { bottom, top } = await loadDenseNets(m, init.bottom, init.top, init.providers);
const tables = new Map<number, EmbeddingTable>(
  // An arena table's buffer is the arena's memory; its rows start at the arena's table offset.
  init.tables.map((t) => [
    t.index,
    {
      index: t.index,
      meta: t.meta,
      arena: t.arena,
      data: tableView(t.meta.dtype, t.buffer, t.arena?.tableOffset ?? 0, t.meta.bytes),
    },
  ]),
);
const computer = new PartComputer(m, bottom, top, tables);
const port = parentPort!;
port.on('message', ({ id, task }: { id: number; task: PartTask }) => {
  computer.run(task).then(
    (result) =>
      port.postMessage(
        { id, result },
        result.scores.buffer instanceof ArrayBuffer && result.scores.byteOffset === 0 && result.scores.buffer.byteLength === result.scores.byteLength
          ? [result.scores.buffer]
          : [],
      ),
    (e: unknown) => port.postMessage({ id, error: e instanceof Error ? e.message : String(e) }),
  );
});
port.postMessage({ ready: true });
