// Durations as the RecModel schema writes them (spec.serving.latencyTarget: 25ms, 0.1s, 500us).

/** Milliseconds of "N(us|ms|s)", or undefined when the text is not such a duration. */
export function durationMs(text: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(us|ms|s)$/.exec(text.trim());
  return m ? Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's'] : undefined;
}
