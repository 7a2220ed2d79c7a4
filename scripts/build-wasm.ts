// Assembles the WebAssembly kernels (shard-server/kernels/*.wat) into dist next to their loaders.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import wabtInit from 'wabt';

const src = 'shard-server/kernels';
const out = join('dist', src);
mkdirSync(out, { recursive: true });
const wabt = await wabtInit();
for (const f of readdirSync(src).filter((n) => n.endsWith('.wat'))) {
  const features = { simd: true, threads: true, bulk_memory: true };
  const mod = wabt.parseWat(f, readFileSync(join(src, f), 'utf8'), features);
  (mod.validate as (f?: object) => void)(features); // the typings omit the features argument validation needs
  const { buffer } = mod.toBinary({});
  writeFileSync(join(out, f.replace(/\.wat$/, '.wasm')), buffer);
  mod.destroy();
}
