// The chart's values.yaml is documented line by line and every value it has is described by values.schema.json
// (which refuses anything else). Pure: reads the two files.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMap, isSeq, parseDocument, type Node, type Pair } from 'yaml';
import { findRepoFile } from '../../../lib/paths.js';

const chart = join(findRepoFile('charts', 'recshard', 'Chart.yaml'), '..');
const doc = parseDocument(readFileSync(join(chart, 'values.yaml'), 'utf8'));
const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8'));

interface Entry {
  path: string;
  documented: boolean;
}

/** Every key of the block maps, with whether a comment sits on its line or the lines above it. */
function entries(node: Node | null | undefined, prefix: string, inheritedDoc: boolean, out: Entry[] = []): Entry[] {
  if (!isMap(node)) return out;
  const items = node.items as Pair<Node, Node>[];
  items.forEach((pair, i) => {
    const key = String((pair.key as { value: unknown }).value);
    const path = prefix ? `${prefix}.${key}` : key;
    // a comment above a key, on its line, or above its block (the first key of a map documented by its parent)
    const documented =
      inheritedDoc && (node.flow === true || i === 0)
        ? true
        : Boolean(pair.key?.commentBefore || (pair.value as Node | null)?.comment || (i === 0 && node.commentBefore));
    const children = isMap(pair.value) ? entries(pair.value, path, documented, []) : [];
    // a key whose every value is documented needs no comment of its own (leaderElection: # ... enabled: true)
    const direct = children.filter((c) => c.path.split('.').length === path.split('.').length + 1);
    out.push({ path, documented: documented || (direct.length > 0 && direct.every((c) => c.documented)) }, ...children);
  });
  return out;
}

function schemaAt(path: string): Record<string, unknown> | undefined {
  let s: Record<string, any> | undefined = schema;
  for (const part of path.split('.')) {
    if (!s) return undefined;
    if (s.properties?.[part]) s = s.properties[part];
    else if (s.additionalProperties && typeof s.additionalProperties === 'object') s = s.additionalProperties;
    else if (s.type === 'object' && s.additionalProperties === undefined)
      return s; // free-form (resources, affinity)
    else return undefined;
  }
  return s;
}

describe('values.yaml', () => {
  const all = entries(doc.contents, '', false);

  it("documents every value with a comment (a flow map is documented by its key's comment)", () => {
    expect(all.length).toBeGreaterThan(40);
    expect(all.filter((e) => !e.documented).map((e) => e.path)).toEqual([]);
  });

  it('has a schema for every value, and the schema refuses values it does not know', () => {
    expect(all.filter((e) => !schemaAt(e.path)).map((e) => e.path)).toEqual([]);
    expect(schema.additionalProperties).toBe(false);
    for (const top of Object.keys(schema.properties)) if (top !== 'global') expect(doc.has(top), top).toBe(true);
  });

  it('lists are lists and defaults satisfy their patterns', () => {
    const values = doc.toJS() as Record<string, any>;
    expect(isSeq(doc.get('imagePullSecrets', true))).toBe(true);
    for (const e of all) {
      const s = schemaAt(e.path) as { pattern?: string; enum?: string[] } | undefined;
      const v = e.path.split('.').reduce<any>((o, k) => o?.[k], values);
      if (typeof v === 'string' && s?.pattern) expect(v, e.path).toMatch(new RegExp(s.pattern));
      if (s?.enum) expect(s.enum, e.path).toContain(v);
    }
  });
});
