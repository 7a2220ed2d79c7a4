// The supervisor of local processes on a fake clock and fake processes: kubelet-style restarts with exponential
// backoff (250 ms doubling to 10 s, reset after 30 s of running), deliberate kills that suspend supervision, and stop.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, nextDelay, Supervisor, type Timers, type Unit } from '../../../cli/supervisor.js';

class FakeChild extends EventEmitter {
  exitCode: number | null = null;
  signalCode: string | null = null;
  constructor(readonly id: number) {
    super();
  }
  die(code: number | null, signal: string | null = null) {
    this.exitCode = code;
    this.signalCode = signal;
    this.emit('exit', code, signal);
  }
}

/** A clock that moves only when told to, firing the timers that fall due. */
class FakeTimers implements Timers {
  t = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private ids = 0;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.ids;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  };
  clearTimeout = (id: unknown) => void (this.timers = this.timers.filter((x) => x.id !== id));
  pending = () => this.timers.map((x) => x.at - this.t);
  advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }
}

function setup(o: { restart?: boolean } = {}) {
  const timers = new FakeTimers();
  const lines: string[] = [];
  let spawned = 0;
  const sup = new Supervisor<Unit<FakeChild>>(() => new FakeChild(++spawned), { timers, log: (l) => lines.push(l), ...o });
  const unit: Unit<FakeChild> = { name: 'shard-0', proc: new FakeChild(0), restarts: 0 };
  sup.watch(unit);
  return { timers, lines, sup, unit, spawned: () => spawned };
}

describe('nextDelay', () => {
  it('starts at 250 ms, doubles up to 10 s, and starts over after 30 s of running', () => {
    const delays: number[] = [];
    let prev: number | undefined;
    for (let i = 0; i < 9; i++) delays.push((prev = nextDelay(DEFAULT_BACKOFF, prev, 100)));
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    expect(nextDelay(DEFAULT_BACKOFF, 10_000, 29_999)).toBe(10_000);
    expect(nextDelay(DEFAULT_BACKOFF, 10_000, 30_000)).toBe(250);
  });
});

describe('Supervisor', () => {
  it('restarts a process that exits after the backoff, counting and logging each restart', () => {
    const { timers, lines, unit, spawned } = setup();
    unit.proc.die(null, 'SIGKILL');
    expect(timers.pending()).toEqual([250]);
    expect(lines).toEqual(['shard-0 exited (signal SIGKILL) after 0.0 s; restart 1 in 250 ms']);
    timers.advance(249);
    expect(spawned()).toBe(0);
    timers.advance(1);
    expect(spawned()).toBe(1);
    expect(unit.proc.id).toBe(1);
    expect(unit.restarts).toBe(1);
    expect(unit.backoffMs).toBe(250);
    // crashing again at once: the delay doubles each time, up to the cap
    const waited: number[] = [];
    for (let i = 0; i < 7; i++) {
      timers.advance(10);
      unit.proc.die(1);
      waited.push(timers.pending()[0]!);
      timers.advance(waited.at(-1)!);
    }
    expect(waited).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(unit.restarts).toBe(8);
    expect(lines.at(-1)).toBe('shard-0 exited (code 1) after 0.0 s; restart 8 in 10000 ms');
  });

  it('starts over at 250 ms once a process has run 30 s', () => {
    const { timers, sup, unit } = setup();
    for (let i = 0; i < 4; i++) {
      unit.proc.die(1);
      timers.advance(timers.pending()[0]!);
    }
    expect(unit.backoffMs).toBe(2000);
    expect(sup.nextDelayMs('shard-0')).toBe(4000);
    timers.advance(30_000);
    expect(sup.nextDelayMs('shard-0')).toBe(250);
    unit.proc.die(0);
    expect(timers.pending()).toEqual([250]);
  });

  it('ignores the exit of a process it has already replaced', () => {
    const { timers, unit } = setup();
    const first = unit.proc;
    first.die(1);
    timers.advance(250);
    first.emit('exit', 1, null); // a late duplicate
    expect(timers.pending()).toEqual([]);
    expect(unit.restarts).toBe(1);
  });

  it('watching a process that has already exited schedules its restart', () => {
    const timers = new FakeTimers();
    const sup = new Supervisor<Unit<FakeChild>>(() => new FakeChild(1), { timers });
    const dead = new FakeChild(0);
    dead.exitCode = 3;
    const unit: Unit<FakeChild> = { name: 'main', proc: dead, restarts: 0 };
    sup.watch(unit);
    expect(sup.running('main')).toBe(false);
    timers.advance(250);
    expect(unit.proc.id).toBe(1);
    expect(sup.running('main')).toBe(true);
  });

  it('a suspended process stays down until resumed, which starts it once', () => {
    const { timers, sup, unit, spawned, lines } = setup();
    sup.suspend('shard-0');
    unit.proc.die(null, 'SIGKILL');
    timers.advance(60_000);
    expect(spawned()).toBe(0);
    expect(lines).toEqual([]);
    expect(sup.resume('shard-0')).toBe(true);
    expect(spawned()).toBe(1);
    expect(sup.resume('shard-0')).toBe(false); // running: nothing more is started
    timers.advance(60_000);
    expect(spawned()).toBe(1);
    expect(unit.restarts).toBe(0); // a deliberate start is no restart
    // supervised again, from a fresh backoff
    unit.proc.die(1);
    expect(timers.pending()).toEqual([250]);
  });

  it('suspending cancels a restart already waiting', () => {
    const { timers, sup, unit, spawned } = setup();
    unit.proc.die(1);
    sup.suspend('shard-0');
    timers.advance(60_000);
    expect(spawned()).toBe(0);
    sup.resume('shard-0');
    expect(spawned()).toBe(1);
    timers.advance(60_000);
    expect(spawned()).toBe(1);
  });

  it('stop cancels waiting restarts and restarts nothing after', () => {
    const { timers, sup, unit, spawned } = setup();
    unit.proc.die(1);
    sup.stop();
    expect(timers.pending()).toEqual([]);
    timers.advance(60_000);
    expect(spawned()).toBe(0);
    expect(() => sup.resume('shard-0')).toThrow('shard-0: supervision has stopped');
  });

  it('with restarting off, an exit is logged and left alone; resume still starts it', () => {
    const { timers, sup, unit, spawned, lines } = setup({ restart: false });
    unit.proc.die(2);
    timers.advance(60_000);
    expect(spawned()).toBe(0);
    expect(lines).toEqual(['shard-0 exited (code 2) after 0.0 s; supervision is off, so it stays down']);
    expect(sup.resume('shard-0')).toBe(true);
    expect(spawned()).toBe(1);
  });

  it('a start that throws counts as an exit and is retried after the backoff', () => {
    const timers = new FakeTimers();
    const lines: string[] = [];
    let fail = true;
    const sup = new Supervisor<Unit<FakeChild>>(
      () => {
        if (fail) throw new Error('EMFILE');
        return new FakeChild(1);
      },
      { timers, log: (l) => lines.push(l) },
    );
    const unit: Unit<FakeChild> = { name: 'main', proc: new FakeChild(0), restarts: 0 };
    sup.watch(unit);
    unit.proc.die(1);
    timers.advance(250);
    expect(lines.at(-1)).toBe('main could not be started (EMFILE); restart 2 in 500 ms');
    fail = false;
    timers.advance(500);
    expect(unit.proc.id).toBe(1);
    expect(unit.restarts).toBe(2);
  });
  it('names an unknown process', () => {
    const { sup } = setup();
    expect(() => sup.suspend('shard-9')).toThrow('no process named shard-9');
  });
});
