// `recshard model generate`: a DeepRecInfra model with deterministic random weights, in the artifact format.
import { formatBytes, parseQuantity } from '../../lib/quantity.js';
import { generateModel } from '../../models/generate.js';
import { ARCHITECTURES, ZOO } from '../../models/zoo.js';
import { formatFieldErrors, resolveSpec } from '../../operator/api/v1alpha1/index.js';
import { CliError } from '../errors.js';

export function generateCommand(arch: string, scale: number, seed: number, out: string, chunkSize = '64Mi'): string {
  const shape = ZOO[arch];
  if (!shape) throw new CliError(`unknown architecture ${arch}; one of ${ARCHITECTURES.join(', ')}`);
  if (!(scale > 0 && scale <= 1)) throw new CliError(`--scale must be in (0, 1], got ${scale}`);
  let chunkBytes: number;
  try {
    chunkBytes = parseQuantity(chunkSize);
  } catch (e) {
    throw new CliError(`--chunk-size: ${(e as Error).message}`);
  }
  if (!(chunkBytes >= 1)) throw new CliError(`--chunk-size must be at least 1 byte, got ${chunkSize}`);
  const resolved = resolveSpec({ model: shape });
  if (!resolved.ok) throw new Error(formatFieldErrors(resolved.errors));
  const m = generateModel({ name: arch, model: resolved.spec.model, seed, scale, outDir: out, chunkBytes });
  const bytes = m.tables.reduce((n, t) => n + t.bytes, 0);
  return (
    `wrote ${arch} to ${out}: ${m.tables.length} tables (${formatBytes(bytes)}), dense ${m.denseFeatures} -> [${m.bottomMLP.join(',')}] ` +
    `-> ${m.interaction} (${m.topInput}) -> [${m.topMLP.join(',')}]\n`
  );
}
