/**
 * MemoryLimitStore with a fake clock: refill, expiry and roll-off at exact instants, and bounded
 * memory that never hands an active key a fresh allowance.
 */
import { describe, expect, it } from 'vitest';
import { SETTLE_WINDOW_MS } from '../../src/core/limits/buckets.js';
import type { LimitBucket } from '../../src/core/ports.js';
import { LimitStoreFullError, MemoryLimitStore } from '../../src/stores/memory-limit-store.js';

const T0 = 1_700_000_000_000;
function fakeClock() {
  const c = { t: T0, now: () => c.t };
  return c;
}
const rpm = (key: string, limit = 20): LimitBucket => ({
  id: 'rpm',
  key,
  kind: 'requests',
  algorithm: 'gcra',
  limit,
  burst: 0,
  windowMs: 60_000,
  shadow: false,
  per: 'key',
});

describe('MemoryLimitStore (fake clock)', () => {
  it('GCRA refills one request every W/N: not a millisecond early', async () => {
    const clock = fakeClock();
    const s = new MemoryLimitStore({ clock });
    const b = rpm('a');
    for (let i = 0; i < 20; i++)
      expect((await s.reserve({ buckets: [b], costs: [1], requestId: `r${i}` })).ok).toBe(true);
    const d = await s.reserve({ buckets: [b], costs: [1], requestId: 'x' });
    expect(d.ok || d.retryAfterMs).toBe(3000);
    clock.t += 2999;
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'y' })).ok).toBe(false);
    clock.t += 1;
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'z' })).ok).toBe(true);
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'w' })).ok).toBe(false);
    clock.t += 60_000;
    expect((await s.peek([b]))[0]).toMatchObject({ remaining: 20, resetMs: 0 });
  });

  it('a lease that is never released frees itself after its TTL', async () => {
    const clock = fakeClock();
    const s = new MemoryLimitStore({ clock });
    const b: LimitBucket = {
      ...rpm('l'),
      id: 'inflight',
      kind: 'concurrent',
      algorithm: 'lease',
      limit: 1,
      windowMs: 30_000,
    };
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'crashed' })).ok).toBe(true);
    clock.t += 29_999;
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'next' })).ok).toBe(false);
    clock.t += 1;
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'next' })).ok).toBe(true);
  });

  it('a long window answers retry-after when the oldest usage leaves, never longer than the window (issue #15: was one slot more)', async () => {
    const clock = fakeClock();
    const s = new MemoryLimitStore({ clock });
    const hour = 3_600_000;
    const g = hour / 60;
    const b: LimitBucket = { ...rpm('h'), id: 'hourly', algorithm: 'window', limit: 5, windowMs: hour };
    clock.t = Math.floor(T0 / g) * g + 9_000; // 9 s into a slot: the old answer was W + g − 9 s
    // 1. five at once fill the window; the sixth waits exactly one window, not 3651 s
    for (let i = 0; i < 5; i++)
      expect((await s.reserve({ buckets: [b], costs: [1], requestId: `h${i}` })).ok).toBe(true);
    const d = await s.reserve({ buckets: [b], costs: [1], requestId: 'x' });
    expect(d.ok || d.retryAfterMs).toBe(hour);
    // 2. a second later, a second less; the reset time agrees
    clock.t += 1000;
    const d2 = await s.reserve({ buckets: [b], costs: [1], requestId: 'y' });
    expect(d2.ok || d2.retryAfterMs).toBe(hour - 1000);
    expect((await s.peek([b]))[0]!.resetMs).toBe(hour - 1000);
    // 3. one millisecond early is still refused; at the announced instant it is admitted
    clock.t += hour - 1000 - 1;
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'z' })).ok).toBe(false);
    clock.t += 1;
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'z' })).ok).toBe(true);
  });

  it('a slot counts until its newest booking leaves, and the wait names the first slot that frees enough', async () => {
    const clock = fakeClock();
    const s = new MemoryLimitStore({ clock });
    const day = 86_400_000;
    const g = day / 60;
    const b: LimitBucket = { ...rpm('w'), id: 'daily', algorithm: 'window', limit: 3, windowMs: day };
    const t0 = Math.floor(T0 / g) * g + 1000;
    clock.t = t0;
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'a' })).ok).toBe(true);
    clock.t = t0 + g; // the next slot
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'b' })).ok).toBe(true);
    clock.t = t0 + g + 5000; // same slot, later: this slot now leaves at t0 + g + 5 s + W
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'c' })).ok).toBe(true);
    // 1. one more fits once the first slot leaves: at t0 + W
    const d = await s.reserve({ buckets: [b], costs: [1], requestId: 'x' });
    expect(d.ok || d.retryAfterMs).toBe(t0 + day - clock.t);
    // 2. two more need the second slot too: it leaves with its newest booking
    const d2 = await s.reserve({ buckets: [b], costs: [2], requestId: 'x2' });
    expect(d2.ok || d2.retryAfterMs).toBe(day);
    clock.t = t0 + day;
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'y' })).ok).toBe(true);
    clock.t = t0 + g + 5000 + day - 1; // the second slot's first booking is out, its newest is not
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'z' })).ok).toBe(false);
    clock.t += 1;
    expect((await s.reserve({ buckets: [b], costs: [2], requestId: 'z' })).ok).toBe(true);
  });

  it('settles are accepted up to SETTLE_WINDOW_MS after the reservation, and applied once', async () => {
    const clock = fakeClock();
    const s = new MemoryLimitStore({ clock });
    const day: LimitBucket = {
      ...rpm('late'),
      id: 'daily',
      kind: 'tokens',
      algorithm: 'window',
      limit: 1000,
      windowMs: 86_400_000,
    };
    const a = await s.reserve({ buckets: [day], costs: [100], requestId: 'a' });
    const b = await s.reserve({ buckets: [day], costs: [100], requestId: 'b' });
    if (!a.ok || !b.ok) throw new Error('denied');
    clock.t += SETTLE_WINDOW_MS - 1;
    await s.settle(a.reservation, [300]); // in time: 200 more
    await s.settle(a.reservation, [900]); // a duplicate: ignored
    expect((await s.peek([day]))[0]!.remaining).toBe(600);
    clock.t += 1;
    await s.settle(b.reservation, [900]); // too late to know it is not a duplicate: ignored
    expect((await s.peek([day]))[0]!.remaining).toBe(600);
  });

  it('evicts only states at rest, so eviction never gives a key back an allowance it had used', async () => {
    const clock = fakeClock();
    const s = new MemoryLimitStore({ clock, maxKeys: 2 });
    // 1. two keys exhaust their allowance: both states are active
    for (const k of ['a', 'b'])
      for (let i = 0; i < 2; i++)
        await s.reserve({ buckets: [rpm(k, 2)], costs: [1], requestId: `${k}${i}` });
    // 2. a third key cannot be stored: refused as a store failure, nothing charged
    await expect(s.reserve({ buckets: [rpm('c', 2)], costs: [1], requestId: 'c0' })).rejects.toBeInstanceOf(
      LimitStoreFullError,
    );
    expect(s.size()).toBe(2);
    // 3. the active keys were not evicted: they are still exhausted
    expect((await s.reserve({ buckets: [rpm('a', 2)], costs: [1], requestId: 'a2' })).ok).toBe(false);
    expect((await s.reserve({ buckets: [rpm('b', 2)], costs: [1], requestId: 'b2' })).ok).toBe(false);
    // 4. once `a` is full again (at rest), it may go, and `c` takes its place
    clock.t += 60_000;
    expect((await s.reserve({ buckets: [rpm('c', 2)], costs: [1], requestId: 'c1' })).ok).toBe(true);
    expect(s.size()).toBe(2);
    // 5. `a` was at rest, so coming back fresh is exactly what it had
    expect((await s.peek([rpm('a', 2)]))[0]!.remaining).toBe(2);
  });

  it('a full store refuses a request that needs two new states before charging either', async () => {
    const clock = fakeClock();
    const s = new MemoryLimitStore({ clock, maxKeys: 2 });
    await s.reserve({ buckets: [rpm('hot', 1)], costs: [1], requestId: 'h' });
    await expect(
      s.reserve({ buckets: [rpm('n1', 5), rpm('n2', 5)], costs: [1, 1], requestId: 'n' }),
    ).rejects.toBeInstanceOf(LimitStoreFullError);
    expect(s.size()).toBe(1);
    expect((await s.peek([rpm('n1', 5)]))[0]!.remaining).toBe(5);
  });

  it('memory stays bounded under many keys that come to rest', async () => {
    const clock = fakeClock();
    const s = new MemoryLimitStore({ clock, maxKeys: 100 });
    for (let i = 0; i < 5000; i++) {
      expect((await s.reserve({ buckets: [rpm(`k${i}`, 1)], costs: [1], requestId: `r${i}` })).ok).toBe(true);
      clock.t += 1000; // each key is full again 60 s after its request
    }
    expect(s.size()).toBeLessThanOrEqual(100);
  });
});
