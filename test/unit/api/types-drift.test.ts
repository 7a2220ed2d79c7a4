import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateTypes } from '../../../operator/api/gen-types.js';

describe('TypeScript types and the CRD schema', () => {
  it('the committed types are what the CRD generates (run `make gen` after editing crds/)', async () => {
    const committed = readFileSync(new URL('../../../operator/api/v1alpha1/types.generated.ts', import.meta.url), 'utf8');
    expect(committed).toBe(await generateTypes());
  });
});
