// Admission control on its own, with a hand-moved clock: slots, the queue's order, and when a request is shed.
import { describe, expect, it } from 'vitest';
import { Admission, Shed } from '../../../shard-server/http/admission.js';

function setup(maxInflight: number, maxQueue: number) {
  let now = 0;
  const a = new Admission({ maxInflight, maxQueue, now: () => now });
  return { a, at: (t: number) => (now = t) };
}

const shedReason = (p: Promise<unknown>) =>
  p.then(
    () => 'admitted',
    (e: unknown) => (e instanceof Shed ? e.reason : String(e)),
  );

describe('admission control', () => {
  it('admits up to maxInflight at once and queues the rest in order', async () => {
    const { a } = setup(2, 4);
    const r1 = await a.acquire(1000);
    await a.acquire(1000);
    expect(a.inflight).toBe(2);
    const order: number[] = [];
    const w3 = a.acquire(1000).then((r) => (order.push(3), r));
    const w4 = a.acquire(1000).then((r) => (order.push(4), r));
    expect(a.queued).toBe(2);
    r1();
    (await w3)();
    await w4;
    expect(order).toEqual([3, 4]);
    expect(a.inflight).toBe(2);
    expect(a.queued).toBe(0);
  });

  it('sheds at once when the queue is full', async () => {
    const { a } = setup(1, 1);
    await a.acquire(1000);
    const queued = shedReason(a.acquire(1000));
    expect(await shedReason(a.acquire(1000))).toBe('queue_full');
    expect(await queued).toBe('deadline'); // its deadline then passes in the queue
  });

  it('sheds at arrival when the predicted wait is over half the budget or would overrun the deadline', async () => {
    const { a, at } = setup(1, 100);
    // one request takes 100 ms: the average service time
    const r = await a.acquire(10_000);
    at(100);
    r();
    await a.acquire(10_000); // holds the slot
    // first in the queue: a predicted 100 ms wait and 100 ms of work
    expect(await shedReason(a.acquire(100 + 150))).toBe('deadline'); // 150 ms left: 100 ms would be over half
    expect(await shedReason(a.acquire(100 + 190))).toBe('deadline'); // 190 ms left: still over half
    const admitted = shedReason(a.acquire(100 + 1000)); // 1000 ms left: queued
    expect(a.queued).toBe(1);
    // second in the queue: 200 ms predicted, over half of 300 ms
    expect(await shedReason(a.acquire(100 + 300))).toBe('deadline');
    expect(await admitted).toBe('deadline'); // the slot never freed: its deadline passed in the queue
  });

  it('drops a waiter when its deadline passes in the queue, or when its work would overrun it by the time of its turn', async () => {
    const { a, at } = setup(1, 10);
    const first = await a.acquire(10_000);
    const late = shedReason(a.acquire(50)); // no service time known yet: queued
    // its deadline timer fires (real timers: 50 ms)
    expect(await late).toBe('deadline');
    const w = shedReason(a.acquire(10_000));
    at(20);
    first(); // the slot frees at t=20: the waiter's turn, with ample time
    expect(await w).toBe('admitted');
  });

  it('a waiter whose client left is dropped with the signal reason, and frees its place', async () => {
    const { a } = setup(1, 1);
    await a.acquire(1000);
    const ac = new AbortController();
    const gone = a.acquire(1000, ac.signal).catch((e: Error) => e.message);
    ac.abort(new Error('client gone'));
    expect(await gone).toBe('client gone');
    expect(a.queued).toBe(0);
    // its place is free again
    const next = shedReason(a.acquire(1000));
    expect(a.queued).toBe(1);
    expect(await next).toBe('deadline');
  });
});
