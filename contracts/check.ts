// Small structural checks for the files the contracts define: each failure names the file and the field.

export class ContractError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${file}${field ? ` ${field}` : ''}: ${reason}`);
    this.name = 'ContractError';
  }
}

/** Where a value sits: the file and its path in it (e.g. shards[2].endpoint). */
export interface Checked {
  file: string;
  at: string;
}

const fail = (c: Checked, what: string, v: unknown): never => {
  throw new ContractError(c.file, c.at, `must be ${what}, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
};

export function object(c: Checked, v: unknown): void {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(c, 'an object', v);
}

export function string(c: Checked, v: unknown): void {
  if (typeof v !== 'string') fail(c, 'a string', v);
}

export function integer(c: Checked, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(c, 'a non-negative integer', v);
}

export function array(c: Checked, v: unknown, each: (c: Checked, item: unknown) => void): void {
  if (!Array.isArray(v)) return fail(c, 'an array', v);
  v.forEach((item, i) => each({ ...c, at: `${c.at}[${i}]` }, item));
}

export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ContractError(file, '', `not valid JSON: ${(e as Error).message}`);
  }
}
