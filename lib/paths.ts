// Paths of the repository and of the build: a file found upward from here (crds/, dist/, charts/), and files the
// build writes next to the compiled modules (worker entries, WebAssembly kernels). From dist they are siblings;
// when the sources run directly (tests through vitest or tsx) the built copy in dist is used.
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A file of the repository (or of an image laid out like it: crds/, dist/), found upward from this module. */
export function findRepoFile(...parts: string[]): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, ...parts);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find ${join(...parts)} above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The built file `name` that belongs next to the module at `moduleUrl`. */
export function builtSibling(moduleUrl: string, name: string): string {
  const here = fileURLToPath(moduleUrl);
  if (!here.endsWith('.ts')) return join(dirname(here), name);
  // sources: <repo>/X/Y/file.ts -> <repo>/dist/X/Y/name
  const root = dirname(findRepoFile('package.json'));
  return join(root, 'dist', relative(root, dirname(here)), name);
}
