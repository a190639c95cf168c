import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FairShare,
  MIN_SHARE_FRACTION,
  RecentRate,
  shareLimits,
  type TenantDemand,
  waterFill,
} from '../../../src/core/limits/fair-share.js';

const EPS = 1e-6;
const close = (a: number, b: number, scale = 1) => Math.abs(a - b) <= EPS * Math.max(1, scale);

const tenantsArb = fc
  .uniqueArray(
    fc.record({
      id: fc.string({ minLength: 1, maxLength: 4 }),
      weight: fc.double({ min: 0.1, max: 10, noNaN: true }),
      demand: fc.double({ min: 0, max: 10_000, noNaN: true }),
    }),
    { minLength: 1, maxLength: 12, selector: (t) => t.id },
  )
  .map((ts) => ts as TenantDemand[]);
const capacityArb = fc.double({ min: 1, max: 100_000, noNaN: true });

describe('waterFill (weighted max-min fairness)', () => {
  it('allocations sum to the capacity when demand exceeds it, and to the demand otherwise', () => {
    fc.assert(
      fc.property(capacityArb, tenantsArb, (cap, ts) => {
        const a = waterFill(cap, ts);
        const total = [...a.values()].reduce((x, y) => x + y, 0);
        const demand = ts.reduce((x, t) => x + t.demand, 0);
        expect(close(total, Math.min(cap, demand), cap + demand)).toBe(true);
      }),
    );
  });

  it('no tenant gets more than its demand', () => {
    fc.assert(
      fc.property(capacityArb, tenantsArb, (cap, ts) => {
        const a = waterFill(cap, ts);
        for (const t of ts) expect(a.get(t.id)!).toBeLessThanOrEqual(t.demand + EPS * Math.max(1, t.demand));
      }),
    );
  });

  it('a tenant left short gets at least as much per unit of weight as anyone (max-min), and short tenants split by weight', () => {
    fc.assert(
      fc.property(capacityArb, tenantsArb, (cap, ts) => {
        const a = waterFill(cap, ts);
        const short = ts.filter((t) => a.get(t.id)! < t.demand - EPS * Math.max(1, t.demand));
        for (const s of short) {
          const level = a.get(s.id)! / s.weight;
          for (const t of ts) expect(a.get(t.id)! / t.weight).toBeLessThanOrEqual(level * (1 + 1e-9) + EPS);
        }
        // Weights respected: every tenant held back sits at the same level.
        for (const s of short)
          for (const t of short)
            expect(close(a.get(s.id)! / s.weight, a.get(t.id)! / t.weight, cap)).toBe(true);
      }),
    );
  });

  it('examples: weights 1 and 3 both flooding get 1:3; a light tenant gets its demand and the rest is split', () => {
    const flood = waterFill(1000, [
      { id: 'a', weight: 1, demand: 5000 },
      { id: 'b', weight: 3, demand: 5000 },
    ]);
    expect(flood.get('a')).toBeCloseTo(250);
    expect(flood.get('b')).toBeCloseTo(750);
    const light = waterFill(1000, [
      { id: 'a', weight: 1, demand: 100 },
      { id: 'b', weight: 1, demand: 5000 },
      { id: 'c', weight: 2, demand: 5000 },
    ]);
    expect(light.get('a')).toBeCloseTo(100);
    expect(light.get('b')).toBeCloseTo(300);
    expect(light.get('c')).toBeCloseTo(600);
  });
});

describe('shareLimits (work-conserving)', () => {
  it('limits sum to the capacity, and each is at least the max-min allocation', () => {
    fc.assert(
      fc.property(capacityArb, tenantsArb, (cap, ts) => {
        const a = waterFill(cap, ts);
        const l = shareLimits(cap, ts);
        const total = [...l.values()].reduce((x, y) => x + y, 0);
        expect(close(total, cap, cap)).toBe(true);
        for (const t of ts) expect(l.get(t.id)!).toBeGreaterThanOrEqual(a.get(t.id)! - EPS * cap);
      }),
    );
  });

  it('a single tenant can use the whole capacity, whatever its recent demand', () => {
    fc.assert(
      fc.property(capacityArb, fc.double({ min: 0, max: 1e6, noNaN: true }), (cap, d) => {
        const l = shareLimits(cap, [{ id: 'only', weight: 2, demand: d }]);
        expect(close(l.get('only')!, cap, cap)).toBe(true);
      }),
    );
  });

  it('unused capacity goes to the others by weight', () => {
    const l = shareLimits(1000, [
      { id: 'idle', weight: 1, demand: 0 },
      { id: 'busy', weight: 1, demand: 5000 },
    ]);
    expect(l.get('busy')).toBeCloseTo(1000);
    expect(l.get('idle')).toBeCloseTo(0);
  });
});

describe('RecentRate', () => {
  it('reports amounts per minute over the window, counting from the first amount, and forgets them after it', () => {
    const r = new RecentRate(5000, 500);
    r.add(10_000, 1, 100);
    r.add(10_900, 1, 100);
    // 2 requests in about 1 s (since the first one): about 120 per minute.
    const [req, tok] = r.perMinute(11_000);
    expect(req).toBeGreaterThan(110);
    expect(req).toBeLessThan(125);
    expect(tok).toBeCloseTo(req * 100, 5);
    // After the whole window has passed, nothing is left.
    expect(r.active(16_500)).toBe(false);
    expect(r.perMinute(16_500)).toEqual([0, 0]);
  });

  it('a negative add takes an amount back but never below zero', () => {
    const r = new RecentRate(5000, 500);
    r.add(1000, 1, 10);
    r.add(1000, -1, -10);
    expect(r.active(1000)).toBe(false);
    r.add(1000, -5, -5);
    r.add(1000, 1, 0);
    expect(r.perMinute(1000)[0]).toBeCloseTo(120); // one request over the minimum span of one slot
  });
});

describe('FairShare (demand tracking, fake clock)', () => {
  const cap = { requestsPerMinute: 600, tokensPerMinute: 60_000 };

  /** Two tenants flooding at `perSecond` each for `seconds`, from t0; returns the last shares. */
  function flood(fs: FairShare, t0: number, seconds: number, who: [string, number][], perSecond = 50) {
    let now = t0;
    for (let i = 0; i < seconds * perSecond; i++) {
      now = t0 + (i * 1000) / perSecond;
      for (const [id, w] of who) fs.demand(id, w, 1, 100, now);
    }
    return { now, shares: who.map(([id, w]) => fs.share(id, w, cap, now)) };
  }

  it('two tenants of weights 1 and 3 that both ask for more than the capacity get 1:3, summing to it', () => {
    const fs = new FairShare();
    const { shares } = flood(fs, 1_000_000, 3, [
      ['a', 1],
      ['b', 3],
    ]);
    expect(shares[0]!.requestsPerMinute).toBeCloseTo(150);
    expect(shares[1]!.requestsPerMinute).toBeCloseTo(450);
    expect(shares[0]!.tokensPerMinute! + shares[1]!.tokensPerMinute!).toBeCloseTo(60_000);
  });

  it('a tenant that goes idle leaves its share to the other within the demand window', () => {
    const fs = new FairShare({ windowMs: 5000 });
    const { now } = flood(fs, 1_000_000, 3, [
      ['a', 1],
      ['b', 3],
    ]);
    // b keeps going alone for 6 s more; a sends nothing.
    const after = flood(fs, now + 20, 6, [['b', 3]]);
    expect(after.shares[0]!.requestsPerMinute).toBeCloseTo(600);
    expect(fs.activeTenants(after.now)).toEqual(['b']);
  });

  it('a light tenant gets what it asks for (with headroom); a newcomer gets a share at once', () => {
    const fs = new FairShare({ headroom: 1.25 });
    let now = 2_000_000;
    for (let i = 0; i < 300; i++) {
      now = 2_000_000 + i * 20; // 6 s
      fs.demand('heavy', 1, 1, 0, now);
      if (i % 50 === 0) fs.demand('light', 1, 1, 0, now); // 1 per second = 60/min
    }
    const light = fs.share('light', 1, cap, now).requestsPerMinute!;
    const heavy = fs.share('heavy', 1, cap, now).requestsPerMinute!;
    expect(light).toBeGreaterThan(60);
    expect(light).toBeLessThan(100);
    expect(light + heavy).toBeCloseTo(600);
    fs.demand('new', 1, 1, 0, now + 1);
    const fresh = fs.share('new', 1, cap, now + 1).requestsPerMinute!;
    expect(fresh).toBeGreaterThan(0);
  });

  it('never hands out a zero share (a GCRA limit must be positive)', () => {
    const fs = new FairShare();
    const { now } = flood(fs, 3_000_000, 2, [['hog', 1000]]);
    fs.demand('tiny', 0.001, 1, 0, now);
    const s = fs.share('tiny', 0.001, cap, now + 100);
    expect(s.requestsPerMinute).toBeGreaterThanOrEqual(600 * MIN_SHARE_FRACTION);
  });
});
