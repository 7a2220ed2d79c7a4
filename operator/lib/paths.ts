// Files the build writes next to the compiled modules (worker entries, WebAssembly kernels). From dist they are
// siblings; when the sources run directly (tests through vitest or tsx) the built copy in dist is used.
import { fileURLToPath } from 'node:url';
import { relative, dirname, join } from 'node:path';
import { findRepoFile } from '../api/v1alpha1/crd.js';

/** The built file `name` that belongs next to the module at `moduleUrl`. */
export function builtSibling(moduleUrl: string, name: string): string {
  const here = fileURLToPath(moduleUrl);
  if (!here.endsWith('.ts')) return join(dirname(here), name);
  // sources: <repo>/X/Y/file.ts -> <repo>/dist/X/Y/name
  const root = dirname(findRepoFile('package.json'));
  return join(root, 'dist', relative(root, dirname(here)), name);
}
