// Durations as the CRDs write them (spec.serving.latencyTarget: 25ms, 0.1s, 500us; policy windows: 5m).

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000 } as const;

/** Milliseconds of "N(us|ms|s|m)", or undefined when the text is not such a duration. */
export function durationMs(text: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(us|ms|s|m)$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

/** A latency in ms as status shows it: 85.2ms, 1.25s. */
export function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 10) / 100}s` : `${Math.round(ms * 10) / 10}ms`;
}
