// The PyTorch eager baseline (bench/torch/dlrm.py) from the benchmarks' side: its venv (built once by
// bench/torch/venv.sh), its predict server on a free port, its embedding_bag microbenchmark, and its versions.
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { predictPath } from '../contracts/endpoints.js';

const VENV_SH = fileURLToPath(new URL('./torch/venv.sh', import.meta.url));
const DLRM_PY = fileURLToPath(new URL('./torch/dlrm.py', import.meta.url));
const STDERR_TAIL = 16_384;

/** The venv's python, building the venv first if needed (minutes, once per requirements.txt). */
export async function torchPython(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [VENV_SH], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const python = out.trim().split('\n').at(-1);
      if (code === 0 && python) resolve(python);
      else reject(new Error(`bash ${VENV_SH} exited with code ${code}`));
    });
  });
}

export interface TorchServer {
  url: string;
  predictUrl: string;
  pid: number;
  stop(): Promise<void>;
}

/** `dlrm.py serve` on a port the OS picks; resolves once it prints `listening PORT`, rejects with its stderr otherwise. */
export async function startTorchServer(python: string, modelDir: string, model: string, o: { threads?: number } = {}): Promise<TorchServer> {
  const args = [DLRM_PY, 'serve', '--model-dir', modelDir, '--model', model, '--port', '0', '--threads', String(o.threads ?? 1), '--exit-with-stdin'];
  // stdin is a pipe the server watches: it exits when this process goes, however it goes
  const child = spawn(python, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  // both pipes are drained for the server's whole life, so it never blocks on a full pipe
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-STDERR_TAIL)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`torch server ${why}${stderr ? `:\n${stderr.trimEnd()}` : ''}`));
    };
    const timer = setTimeout(() => fail('not listening after 60 s'), 60_000);
    child.on('error', (e) => fail(`failed to start (${e.message})`));
    // 'close', not 'exit': by then the stderr it wrote before dying has all arrived
    child.on('close', (code, signal) => fail(`exited early with ${signal ?? `code ${code}`}`));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (settled) return;
      out += d;
      const m = /^listening (\d+)$/m.exec(out);
      if (!m) return;
      settled = true;
      clearTimeout(timer);
      resolve(Number(m[1]));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    predictUrl: `${url}${predictPath(model)}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** Pooled lookups per second of torch's embedding_bag (sum, one thread) over the same files as the other kernels. */
export function torchKernel(
  python: string,
  a: { tableFile: string; rows: number; dim: number; indicesFile: string; offsetsFile: string; seconds: number },
): { lookupsPerSecond: number; torch: string } {
  const args = ['--table', a.tableFile, '--rows', String(a.rows), '--dim', String(a.dim), '--indices', a.indicesFile, '--offsets', a.offsetsFile];
  const out = execFileSync(python, [DLRM_PY, 'kernel', ...args, '--seconds', String(a.seconds)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as { lookupsPerSecond: number; torch: string };
  return { lookupsPerSecond: r.lookupsPerSecond, torch: r.torch };
}

/** python, torch, numpy and onnx versions of the venv. */
export function torchVersions(python: string): Record<string, string> {
  return JSON.parse(execFileSync(python, [DLRM_PY, 'versions'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })) as Record<string, string>;
}
