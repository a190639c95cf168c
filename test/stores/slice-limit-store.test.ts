/**
 * Hot-key slices (issue 18): three instances (SliceLimitStore each) on one shared store (a
 * MemoryLimitStore standing in for Redis), driven by a fake clock.
 */
import { describe, expect, it } from 'vitest';
import type { LimitBucket, LimitStore, ReserveInput } from '../../src/core/ports.js';
import { MemoryLimitStore } from '../../src/stores/memory-limit-store.js';
import { SliceLimitStore } from '../../src/stores/slice-limit-store.js';

const HOUR = 3_600_000;

function bucket(limit: number, slice?: number, key = '{t:acme}:rph:gcra:k:hot'): LimitBucket {
  return {
    id: 'rph',
    key,
    kind: 'requests',
    algorithm: 'gcra',
    limit,
    burst: 0,
    windowMs: HOUR,
    shadow: false,
    per: 'key',
    slice,
  };
}

/** Counts the reserves that reach the shared store (the Redis round trips). */
function counting(inner: LimitStore): LimitStore & { reserves: number } {
  const c = Object.create(inner) as LimitStore & { reserves: number };
  c.reserves = 0;
  c.reserve = (i: ReserveInput) => {
    c.reserves++;
    return inner.reserve(i);
  };
  c.settle = (r, a) => inner.settle(r, a);
  c.peek = (b) => inner.peek(b);
  return c;
}

function setup(ttlMs = 1000) {
  let t = 1_700_000_000_000;
  const clock = { now: () => t };
  const shared = counting(new MemoryLimitStore({ clock }));
  const inst = [0, 1, 2].map(
    (i) => new SliceLimitStore({ inner: shared, clock, ttlMs, instanceId: `i${i}`, timer: false }),
  );
  return { shared, inst, advance: (ms: number) => (t += ms), clock };
}

async function burst(inst: SliceLimitStore[], b: LimitBucket, n: number, tag: string): Promise<number> {
  const r = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      inst[i % inst.length]!.reserve({ buckets: [b], costs: [1], requestId: `${tag}${i}` }),
    ),
  );
  return r.filter((x) => x.ok).length;
}

describe('SliceLimitStore', () => {
  it('600 concurrent requests over three instances against 50: exactly 50 admitted, in far fewer round trips', async () => {
    const { shared, inst } = setup();
    const admitted = await burst(inst, bucket(50, 10), 600, 'r');
    expect(admitted).toBe(50);
    expect(shared.reserves).toBeLessThan(600);
  });

  it('a hot key under the limit: round trips per request about 1 / slice', async () => {
    const { shared, inst, advance } = setup();
    const b = bucket(100_000, 20);
    let ok = 0;
    for (let i = 0; i < 3000; i++) {
      advance(1);
      const r = await inst[i % 3]!.reserve({ buckets: [b], costs: [1], requestId: `h${i}` });
      if (r.ok) ok++;
    }
    expect(ok).toBe(3000);
    // 3000 requests in slices of 20: 150 slices, plus a few retired early by the TTL.
    expect(shared.reserves / 3000).toBeLessThan(0.1);
  });

  it('without slice on the limit every request is one round trip (the default is off)', async () => {
    const { shared, inst } = setup();
    expect(await burst(inst, bucket(50), 200, 'o')).toBe(50);
    expect(shared.reserves).toBe(200);
  });

  it('a request with any bucket not opted in goes to the shared store whole', async () => {
    const { shared, inst } = setup();
    const tenant = bucket(1000, undefined, '{t:acme}:rpt:gcra:t');
    for (let i = 0; i < 10; i++)
      expect(
        (await inst[0]!.reserve({ buckets: [bucket(50, 10), tenant], costs: [1, 1], requestId: `m${i}` })).ok,
      ).toBe(true);
    expect(shared.reserves).toBe(10);
  });

  it('an expired slice gives its unused units back to the shared store', async () => {
    const { shared, inst, advance } = setup(1000);
    const b = bucket(50, 10);
    expect((await inst[0]!.reserve({ buckets: [b], costs: [1], requestId: 'a' })).ok).toBe(true);
    expect((await shared.peek([b]))[0]!.remaining).toBe(40); // the whole slice is charged
    // 1. Before the TTL nothing comes back.
    inst[0]!.sweep();
    expect((await shared.peek([b]))[0]!.remaining).toBe(40);
    // 2. After it, the 9 unused units do (the shared store keeps the 1 used; the clock moved 1 s).
    advance(1001);
    inst[0]!.sweep();
    await new Promise((r) => setImmediate(r));
    expect((await shared.peek([b]))[0]!.remaining).toBe(49);
  });

  /**
   * GCRA admits at most limit + rate × L in any interval of length L. The statistic: the largest
   * excess over rate × L of what was admitted in any interval, found in one pass (running minimum of
   * k − rate·t_k). Without slices it is at most the limit (+1 for the interval's closed ends).
   */
  async function worstExcess(slice: number | undefined): Promise<number> {
    const { inst, advance } = setup(1000);
    const limit = 50;
    const b = bucket(limit, slice);
    const rate = limit / HOUR;
    let t = 0;
    let k = 0;
    let minG = Number.POSITIVE_INFINITY;
    let worst = 0;
    // Pressure far above the limit for three hours: one request every 40 ms over the three instances,
    // in bursts of 1 to 40 so that slices are taken, used and retired at every phase.
    for (let i = 0; i < 270_000; ) {
      const n = 1 + (i % 40);
      const res = await Promise.all(
        Array.from({ length: n }, (_, j) =>
          inst[(i + j) % 3]!.reserve({ buckets: [b], costs: [1], requestId: `p${i + j}` }),
        ),
      );
      for (const r of res)
        if (r.ok) {
          minG = Math.min(minG, k - rate * t);
          k++;
          worst = Math.max(worst, k - rate * t - minG);
        }
      i += n;
      advance(40 * n);
      t += 40 * n;
    }
    return worst;
  }

  it('over-admission in any interval stays within instances × slice (the published bound)', async () => {
    const off = await worstExcess(undefined);
    expect(off).toBeGreaterThan(49); // the limit is reached at all
    expect(off).toBeLessThanOrEqual(51);
    const on = await worstExcess(5);
    expect(on).toBeLessThanOrEqual(51 + 3 * 5);
  });

  it('a refunded request gives its unit back to the live slice', async () => {
    const { inst, shared } = setup();
    const b = bucket(50, 10);
    const r = await inst[0]!.reserve({ buckets: [b], costs: [1], requestId: 'x' });
    if (!r.ok) throw new Error('denied');
    await inst[0]!.settle(r.reservation, [0]);
    await inst[0]!.settle(r.reservation, [0]); // idempotent
    for (let i = 0; i < 10; i++)
      expect((await inst[0]!.reserve({ buckets: [b], costs: [1], requestId: `y${i}` })).ok).toBe(true);
    expect(shared.reserves).toBe(1);
  });
});
