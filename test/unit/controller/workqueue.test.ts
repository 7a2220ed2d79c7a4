import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../lib/clock.js';
import { WorkQueue } from '../../../operator/controller/workqueue.js';

/** A manual clock: timers fire only when the test advances time. */
class FakeClock implements Clock {
  t = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private next = 1;
  now() {
    return new Date(this.t);
  }
  setTimeout(fn: () => void, ms: number) {
    const id = this.next++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown) {
    this.timers = this.timers.filter((t) => t.id !== h);
  }
  advance(ms: number) {
    this.t += ms;
    const due = this.timers.filter((t) => t.at <= this.t).sort((a, b) => a.at - b.at);
    this.timers = this.timers.filter((t) => t.at > this.t);
    due.forEach((t) => t.fn());
  }
}

describe('WorkQueue', () => {
  it('collapses repeated keys', async () => {
    const q = new WorkQueue(undefined, new FakeClock());
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands out a key being processed; re-adds it once processing is done', async () => {
    const q = new WorkQueue(undefined, new FakeClock());
    q.add('a');
    const key = await q.get();
    q.add('a');
    q.add('a');
    expect(q.length).toBe(0);
    q.done(key!);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('a');
  });

  it('wakes a waiting worker on add', async () => {
    const q = new WorkQueue(undefined, new FakeClock());
    const pending = q.get();
    q.add('x');
    expect(await pending).toBe('x');
  });

  it('backs off exponentially up to the cap, and forget resets it', () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ baseMs: 100, maxMs: 1000 }, clock);
    expect([1, 2, 3, 4, 5].map(() => q.addRateLimited('k'))).toEqual([100, 200, 400, 800, 1000]);
    q.forget('k');
    expect(q.addRateLimited('k')).toBe(100);
  });

  it('addAfter delivers at the earliest requested time', () => {
    const clock = new FakeClock();
    const q = new WorkQueue(undefined, clock);
    q.addAfter('k', 500);
    q.addAfter('k', 100);
    q.addAfter('k', 900);
    clock.advance(99);
    expect(q.length).toBe(0);
    clock.advance(1);
    expect(q.length).toBe(1);
    clock.advance(1000);
    expect(q.length).toBe(1);
  });

  it('shutdown releases waiting workers and waits for in-flight keys', async () => {
    const q = new WorkQueue(undefined, new FakeClock());
    q.add('a');
    const key = await q.get();
    const waiter = q.get();
    let drained = false;
    const done = q.shutdown().then(() => (drained = true));
    expect(await waiter).toBeUndefined();
    await Promise.resolve();
    expect(drained).toBe(false);
    q.done(key!);
    await done;
    expect(drained).toBe(true);
    q.add('b');
    expect(await q.get()).toBeUndefined();
  });

  it('reports its depth', () => {
    const depths: number[] = [];
    const q = new WorkQueue(undefined, new FakeClock(), (d) => depths.push(d));
    q.add('a');
    q.add('b');
    void q.get();
    expect(depths).toEqual([1, 2, 1]);
  });
});
