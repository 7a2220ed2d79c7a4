// The traffic traces the autoscaling benchmark replays, relative to a base load.
import type { Trace } from './simulator.js';

export function traces(base: number): Trace[] {
  return [
    { name: 'step', title: 'step to 2x', durationS: 40 * 60, qps: (t) => (t < 600 ? base : 2 * base) },
    { name: 'spike', title: '4x spike for 3 min', durationS: 30 * 60, qps: (t) => (t >= 600 && t < 780 ? 4 * base : base) },
    {
      name: 'diurnal',
      title: 'diurnal day (0.2x at night, 2x at noon)',
      durationS: 24 * 3600,
      qps: (t) => base * (1.1 - 0.9 * Math.cos((2 * Math.PI * t) / 86_400)),
    },
    { name: 'ramp', title: 'slow ramp to 3x over an hour', durationS: 75 * 60, qps: (t) => base * (1 + 2 * Math.min(1, t / 3600)) },
  ];
}
