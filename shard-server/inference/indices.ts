// Row indices against the tables that hold them: every index of every request goes through here.

/** Position of the first index >= rows, or -1: one tight loop. */
export function firstOutOfRange(indices: Uint32Array, rows: number): number {
  let max = 0;
  for (let k = 0; k < indices.length; k++) if (indices[k]! > max) max = indices[k]!;
  if (max < rows) return -1;
  for (let k = 0; k < indices.length; k++) if (indices[k]! >= rows) return k;
  return -1;
}
