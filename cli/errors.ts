// User errors of the CLI: printed without a stack, exit code 1.
import { DocumentError } from '../operator/api/v1alpha1/documents.js';

export class CliError extends Error {}

/** Runs `fn`, turning a bad input file (unreadable, not YAML, not a RecModel) into a CliError. */
export function fromDocuments<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DocumentError) throw new CliError(e.message);
    throw e;
  }
}

/** A numeric flag, checked: the message names the flag and the value. */
export function num(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new CliError(`--${name} must be a number >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

/** An integer flag, checked: the message names the flag and the value. */
export function int(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new CliError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}
