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

  it('a daily window lets usage leave one slot after the window (conservative by at most W/60)', async () => {
    const clock = fakeClock();
    const s = new MemoryLimitStore({ clock });
    const day = 86_400_000;
    const g = day / 60;
    const b: LimitBucket = { ...rpm('w'), id: 'daily', algorithm: 'window', limit: 3, windowMs: day };
    clock.t = Math.floor(T0 / g) * g + 1000; // 1 s into a slot
    for (let i = 0; i < 3; i++)
      expect((await s.reserve({ buckets: [b], costs: [1], requestId: `d${i}` })).ok).toBe(true);
    const d = await s.reserve({ buckets: [b], costs: [1], requestId: 'x' });
    // The slot leaves at its start + W + g: a day and one slot minus the second already elapsed.
    expect(d.ok || d.retryAfterMs).toBe(day + g - 1000);
    clock.t += day; // exactly a day later: still counted (the slot's tail is inside the last day)
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'y' })).ok).toBe(false);
    clock.t += g - 1000;
    expect((await s.reserve({ buckets: [b], costs: [1], requestId: 'z' })).ok).toBe(true);
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
