// The serving version a lookup carries: two u32 words, the plan version (plan.json's `version`, which the operator
// derives from the table assignment, the artifact and the image) and the artifact version (the first 32 bits of the
// sha256 of the manifest.json the server loaded, so weights replaced under the same URI are told apart too).
export interface LookupVersion {
  plan: number;
  artifact: number;
}

/** The u32 of a hex version string's first 8 digits (plan.json's version, a manifest's sha256). */
export function versionWord(hex: string): number {
  const word = Number.parseInt(hex.slice(0, 8), 16);
  if (!/^[0-9a-f]{8}/.test(hex) || !Number.isFinite(word)) throw new Error(`version "${hex}" is not 8 or more hex digits`);
  return word >>> 0;
}

const hex = (w: number) => w.toString(16).padStart(8, '0');

/** plan-artifact in hex: what the main's probe asks a shard for (endpoints.ts VERSION_HEADER). */
export const versionToken = (v: LookupVersion) => `${hex(v.plan)}-${hex(v.artifact)}`;

export const describeVersion = (v: LookupVersion) => `plan ${hex(v.plan)}, artifact ${hex(v.artifact)}`;

export const sameVersion = (a: LookupVersion, b: LookupVersion) => a.plan === b.plan && a.artifact === b.artifact;
