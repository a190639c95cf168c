import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Clock, LimitBucket, LimitStore } from '../../src/core/ports.js';
import {
  Admission,
  type AdmissionOptions,
  type AdmissionRequest,
  type AdmissionResult,
  type Timers,
} from '../../src/gateway/admission.js';
import { MemoryLimitStore } from '../../src/stores/memory-limit-store.js';

/** A fake clock and timer queue: `advance` moves time and fires due timers in order. */
class FakeTime implements Clock, Timers {
  t = 10_000_000;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  set(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clear(h: unknown): void {
    this.timers.delete(h as number);
  }
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      await flush();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= target && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = target;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

function bucket(over: Partial<LimitBucket> = {}): LimitBucket {
  return {
    id: 'rps',
    key: '{t:acme}:rps:g:k:k1',
    kind: 'requests',
    algorithm: 'gcra',
    limit: 2,
    burst: 0,
    windowMs: 1000,
    shadow: false,
    per: 'key',
    ...over,
  };
}

let ids = 0;
function req(over: Partial<AdmissionRequest> = {}): AdmissionRequest {
  const buckets = over.buckets ?? [bucket()];
  return {
    buckets,
    costs: buckets.map(() => 1),
    requestId: `r${++ids}`,
    tenantId: 'acme',
    weight: 1,
    upstream: 'up',
    tokens: 10,
    ...over,
  };
}

function setup(opts: Partial<AdmissionOptions> = {}) {
  const time = new FakeTime();
  const store = new MemoryLimitStore({ clock: time });
  const adm = new Admission({ store, clock: time, timers: time, ...opts });
  return { time, store, adm };
}

/** Starts admissions and records when each one settles (fake time). */
function track(time: FakeTime, p: Promise<AdmissionResult>) {
  const out: { result?: AdmissionResult; at?: number } = {};
  void p.then((r) => {
    out.result = r;
    out.at = time.now();
  });
  return out;
}

describe('waiting instead of refusing', () => {
  it('a tier with maxWait gets every request through, each at its exact retry time; without it the same requests are refused', async () => {
    const { time, adm } = setup();
    const t0 = time.now();
    const waiting = Array.from({ length: 5 }, () => track(time, adm.admit(req({ maxWaitMs: 2000 }))));
    await time.advance(2000);
    expect(waiting.map((w) => w.result?.ok)).toEqual([true, true, true, true, true]);
    // 2 per second: two at once, then one every 500 ms.
    expect(waiting.map((w) => w.at! - t0)).toEqual([0, 0, 500, 1000, 1500]);
    for (const w of waiting) expect(w.result!.ok && w.result!.waitedMs).toBeLessThanOrEqual(2000);

    const other = setup();
    const k2 = [bucket({ key: 'other' })];
    const refused = await Promise.all(Array.from({ length: 5 }, () => other.adm.admit(req({ buckets: k2 }))));
    expect(refused.map((r) => r.ok)).toEqual([true, true, false, false, false]);
  });

  it('a request that could not fit within maxWait is refused at once, with the exact retry time', async () => {
    const { time, adm } = setup();
    await adm.admit(req());
    await adm.admit(req());
    const r = await adm.admit(req({ maxWaitMs: 300 }));
    expect(r.ok).toBe(false);
    expect(!r.ok && !r.aborted && r.denial.retryAfterMs).toBe(500);
    expect(r.waitedMs).toBe(0);
    expect(adm.waiting()).toBe(0);
    expect(time.now()).toBeGreaterThan(0);
  });

  it('a waiter that turns out not to fit within maxWait (others went first) is refused as soon as that is known', async () => {
    const { time, adm } = setup();
    const t0 = time.now();
    const results = Array.from({ length: 5 }, () => track(time, adm.admit(req({ maxWaitMs: 1200 }))));
    await time.advance(1200);
    // Refused requests cost nothing, so all three extra ones first expected to fit at 500 ms.
    expect(results.map((r) => r.result?.ok)).toEqual([true, true, true, true, false]);
    const fifth = results[4]!;
    expect(fifth.at! - t0).toBe(1000);
    expect(!fifth.result!.ok && !fifth.result!.aborted && fifth.result!.denial.retryAfterMs).toBe(500);
  });

  it('total wait never exceeds maxWait, for any arrivals', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 1, max: 3000 }),
        async (gaps, maxWait) => {
          const { time, adm } = setup();
          const all: ReturnType<typeof track>[] = [];
          for (const g of gaps) {
            await time.advance(g);
            all.push(track(time, adm.admit(req({ maxWaitMs: maxWait }))));
          }
          await time.advance(maxWait + 10);
          for (const r of all) {
            expect(r.result).toBeDefined();
            expect(r.result!.waitedMs).toBeLessThanOrEqual(maxWait);
          }
          expect(adm.waiting()).toBe(0);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('waiting requests are served by tier weight, first come first served within a weight', async () => {
    const { time, adm } = setup();
    const shared = [bucket({ key: '{g}:one:g', per: 'global', limit: 1, windowMs: 1000 })];
    expect((await adm.admit(req({ buckets: shared }))).ok).toBe(true);
    const order: string[] = [];
    const go = (name: string, weight: number) =>
      void adm.admit(req({ buckets: shared, weight, maxWaitMs: 5000 })).then((r) => {
        if (r.ok) order.push(name);
      });
    go('low-1', 1);
    go('low-2', 1);
    go('high-1', 3);
    go('mid-1', 2);
    go('high-2', 3);
    await time.advance(5000);
    expect(order).toEqual(['high-1', 'high-2', 'mid-1', 'low-1', 'low-2']);
  });

  it('the number of waiting requests is bounded: beyond, a request is refused at once', async () => {
    const { time, adm } = setup({ maxWaiters: 2 });
    const r = Array.from({ length: 5 }, () => track(time, adm.admit(req({ maxWaitMs: 5000 }))));
    await time.advance(0);
    expect(adm.waiting()).toBe(2);
    expect(r[4]!.result?.ok).toBe(false);
    expect(adm.stats().overflow).toBe(1);
    await time.advance(2000);
    expect(r.map((x) => x.result?.ok)).toEqual([true, true, true, true, false]);
  });

  it('a client that goes away leaves the queue, and the next waiter gets its turn', async () => {
    const { time, adm } = setup();
    await adm.admit(req());
    await adm.admit(req());
    const gone = new AbortController();
    const a = track(time, adm.admit(req({ maxWaitMs: 5000, signal: gone.signal })));
    const b = track(time, adm.admit(req({ maxWaitMs: 5000 })));
    await time.advance(100);
    expect(adm.waiting()).toBe(2);
    gone.abort();
    await time.advance(0);
    expect(a.result).toMatchObject({ ok: false, aborted: true });
    expect(adm.waiting()).toBe(1);
    await time.advance(400);
    // b takes the slot that refilled at 500 ms (it would have waited until 1000 ms behind a).
    expect(b.result?.ok).toBe(true);
    expect(b.at! - a.at!).toBe(400);
    expect(adm.stats().aborted).toBe(1);
  });

  it('close (forced shutdown) refuses every waiting request at once', async () => {
    const shutdown = new AbortController();
    const { time, adm } = setup({ shutdown: shutdown.signal });
    await adm.admit(req());
    await adm.admit(req());
    const w = track(time, adm.admit(req({ maxWaitMs: 5000 })));
    await time.advance(10);
    shutdown.abort();
    await time.advance(0);
    expect(w.result).toMatchObject({ ok: false, aborted: false });
    expect(adm.waiting()).toBe(0);
  });

  it('a store failure rejects (the gateway answers it as any store failure)', async () => {
    const time = new FakeTime();
    const failing: LimitStore = {
      reserve: () => Promise.reject(new Error('down')),
      settle: async () => {},
      release: async () => {},
      peek: async () => [],
      close: async () => {},
    };
    const adm = new Admission({ store: failing, clock: time, timers: time });
    await expect(adm.admit(req())).rejects.toThrow('down');
  });
});

describe('fair share of an upstream', () => {
  const capacity = { requestsPerMinute: 600 };

  /** Tenants flooding (one attempt each per `everyMs`) for `ms`; returns admitted counts from `countFrom`. */
  async function floodAll(
    adm: Admission,
    time: FakeTime,
    tenants: { id: string; weight: number }[],
    ms: number,
    countFrom = 0,
    everyMs = 10,
  ) {
    const admitted = new Map(tenants.map((t) => [t.id, 0]));
    const t0 = time.now();
    let denial: AdmissionResult | undefined;
    for (let t = 0; t < ms; t += everyMs) {
      for (const tn of tenants) {
        const r = await adm.admit(
          req({ buckets: [], costs: [], tenantId: tn.id, weight: tn.weight, capacity, upstream: 'pool' }),
        );
        if (r.ok && time.now() - t0 >= countFrom) admitted.set(tn.id, admitted.get(tn.id)! + 1);
        if (!r.ok) denial = r;
      }
      await time.advance(everyMs);
    }
    return { admitted, denial };
  }

  it('two tenants of weights 1 and 3 that both flood are admitted about 1:3, within the capacity', async () => {
    const { time, adm } = setup();
    const { admitted, denial } = await floodAll(
      adm,
      time,
      [
        { id: 'small', weight: 1 },
        { id: 'big', weight: 3 },
      ],
      12_000,
      2000,
    );
    const small = admitted.get('small')!;
    const big = admitted.get('big')!;
    // 10 s counted at 10 per second: about 25 and 75.
    expect(big / small).toBeGreaterThan(2.5);
    expect(big / small).toBeLessThan(3.5);
    expect(small + big).toBeLessThanOrEqual(100 + 10);
    expect(small + big).toBeGreaterThanOrEqual(90);
    // The denial names the bucket that bound.
    expect(denial && !denial.ok && !denial.aborted).toBe(true);
    if (denial && !denial.ok && !denial.aborted) {
      expect(denial.buckets[denial.denial.bucketIndex]!.id).toMatch(/^(upstream|fair-share):pool$/);
      expect(Number.isFinite(denial.denial.retryAfterMs)).toBe(true);
    }
  });

  it('one tenant alone gets the whole capacity (work-conserving)', async () => {
    const { time, adm } = setup();
    const { admitted } = await floodAll(adm, time, [{ id: 'solo', weight: 1 }], 10_000, 0);
    // 10 per second for 10 s, plus the one-second allowance it starts with.
    expect(admitted.get('solo')).toBeGreaterThanOrEqual(95);
    expect(admitted.get('solo')).toBeLessThanOrEqual(111);
  });

  it('a tenant that stops leaves its share to the other', async () => {
    const { time, adm } = setup();
    const both = [
      { id: 'a', weight: 1 },
      { id: 'b', weight: 1 },
    ];
    await floodAll(adm, time, both, 4000);
    // a stops; after the demand window b gets (nearly) everything.
    const { admitted } = await floodAll(adm, time, [{ id: 'b', weight: 1 }], 12_000, 6000);
    expect(admitted.get('b')).toBeGreaterThanOrEqual(55);
  });

  it("a tenant's own limit that refuses it is not counted as demand on the upstream", async () => {
    const { time, adm } = setup();
    const tiny = [bucket({ key: 'tiny', limit: 1, windowMs: 60_000 })];
    for (let i = 0; i < 300; i++) {
      await adm.admit(req({ buckets: tiny, costs: [1], tenantId: 'blocked', capacity, upstream: 'pool' }));
      await adm.admit(req({ buckets: [], costs: [], tenantId: 'busy', capacity, upstream: 'pool' }));
      await time.advance(10);
    }
    // busy is not held to half: blocked asked for the upstream only once.
    const { admitted } = await floodAll(adm, time, [{ id: 'busy', weight: 1 }], 3000);
    expect(admitted.get('busy')).toBeGreaterThanOrEqual(27);
  });

  it('a fair-share denial can wait in the queue like any other', async () => {
    const { time, adm } = setup();
    await floodAll(adm, time, [{ id: 'x', weight: 1 }], 1000);
    const r = Array.from({ length: 3 }, () =>
      track(
        time,
        adm.admit(
          req({ buckets: [], costs: [], tenantId: 'x', capacity, upstream: 'pool', maxWaitMs: 1000 }),
        ),
      ),
    );
    await time.advance(1000);
    expect(r.map((x) => x.result?.ok)).toEqual([true, true, true]);
    expect(Math.max(...r.map((x) => x.result!.waitedMs))).toBeGreaterThan(0);
  });
});

describe('upstream feedback through admission', () => {
  it('after an upstream 429 the capacity handed out is cut, and callers get a denial naming the upstream with a finite retry', async () => {
    const { time, adm } = setup();
    const capacity = { requestsPerMinute: 600 };
    const events: string[] = [];
    const admFb = new Admission({
      store: new MemoryLimitStore({ clock: time }),
      clock: time,
      timers: time,
      onFeedback: (u, e) => events.push(`${u}:${e.reason}:${e.factor}`),
    });
    const admittedAt = time.now();
    await time.advance(5);
    expect(admFb.observe('pool', capacity, { status: 429, rateHeaders: {} }, admittedAt)).not.toBeNull();
    expect(events).toEqual(['pool:upstream-429:0.5']);
    expect(admFb.capacity('pool', capacity)).toEqual({ requestsPerMinute: 300 });
    let last: AdmissionResult | undefined;
    let ok = 0;
    for (let i = 0; i < 100; i++) {
      last = await admFb.admit(req({ buckets: [], costs: [], capacity, upstream: 'pool' }));
      if (last.ok) ok++;
      await time.advance(10);
    }
    // 1 s at 300 per minute: the 5-request allowance, then one every 200 ms.
    expect(ok).toBeLessThanOrEqual(11);
    expect(last!.ok).toBe(false);
    if (!last!.ok && !last!.aborted) {
      expect(last!.buckets[last!.denial.bucketIndex]!.id).toMatch(/pool$/);
      expect(last!.denial.retryAfterMs).toBeGreaterThan(0);
      expect(last!.denial.retryAfterMs).toBeLessThanOrEqual(200);
    }
    // An upstream without a declared capacity gets one derived at its first 429.
    for (let i = 0; i < 50; i++) {
      expect((await adm.admit(req({ buckets: [], costs: [], upstream: 'free' }))).ok).toBe(true);
      await time.advance(20);
    }
    expect(adm.capacity('free', undefined)).toBeUndefined();
    adm.observe('free', undefined, { status: 429, rateHeaders: {} }, time.now() - 1);
    const derived = adm.capacity('free', undefined)!.requestsPerMinute!;
    // 50 per second admitted: 3000 per minute, halved.
    expect(derived).toBeGreaterThan(1300);
    expect(derived).toBeLessThan(1700);
  });
});
