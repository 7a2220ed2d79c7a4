// The operator image runs Node with the flags the benchmarks and cluster tests start it with.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findRepoFile } from '../../../lib/paths.js';
import { OPERATOR_NODE_FLAGS } from '../../../operator/flags.js';

describe('images/Dockerfile', () => {
  it('runs the operator with OPERATOR_NODE_FLAGS, before its script', () => {
    const dockerfile = readFileSync(findRepoFile('images', 'Dockerfile'), 'utf8');
    const stage = dockerfile.slice(dockerfile.indexOf('AS operator'));
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(stage)![1]!) as string[];
    expect(entrypoint).toEqual(['/nodejs/bin/node', ...OPERATOR_NODE_FLAGS, 'dist/operator/main.js']);
  });
});
