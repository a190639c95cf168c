import { describe, expect, it } from 'vitest';
import type { BucketState, LimitBucket } from '../../src/core/ports.js';
import { crossingAlert, LimitWatch, usedRatio } from '../../src/observability/limit-watch.js';

const bucket = (over: Partial<LimitBucket> = {}): LimitBucket => ({
  id: 'rpm',
  key: '{t:acme}:rpm:tenant:acme',
  kind: 'requests',
  algorithm: 'window',
  limit: 100,
  burst: 0,
  windowMs: 60_000,
  shadow: false,
  per: 'tenant',
  ...over,
});

const state = (b: LimitBucket, remaining: number): BucketState => ({
  id: b.id,
  kind: b.kind,
  per: b.per,
  limit: b.limit,
  remaining,
  resetMs: 1000,
  windowMs: b.windowMs,
  shadow: b.shadow,
});

describe('LimitWatch', () => {
  it('reports 80% and 100% once each as use climbs, not on every request', () => {
    const w = new LimitWatch();
    const b = bucket();
    const seen: string[] = [];
    for (let remaining = 99; remaining >= 0; remaining--) {
      for (const c of w.crossings([b], [state(b, remaining)])) seen.push(`${c.threshold}@${remaining}`);
    }
    // Used 80 of 100 when 20 remain; exhausted at 0.
    expect(seen).toEqual(['80@20', '100@0']);
  });

  it('reports both thresholds when one request jumps past both, 80 first', () => {
    const w = new LimitWatch();
    const b = bucket({ kind: 'tokens', limit: 1000 });
    const c = w.crossings([b], [state(b, 0)]);
    expect(c.map((x) => x.threshold)).toEqual([80, 100]);
    expect(c[1]).toMatchObject({
      index: 0,
      id: 'rpm',
      per: 'tenant',
      kind: 'tokens',
      limit: 1000,
      remaining: 0,
    });
  });

  it('re-arms only once use falls under 70% (no flapping around a threshold)', () => {
    const w = new LimitWatch();
    const b = bucket();
    expect(w.crossings([b], [state(b, 15)])).toHaveLength(1);
    // Bounces between 75% and 85% used: silent.
    for (const r of [25, 15, 24, 16]) expect(w.crossings([b], [state(b, r)])).toHaveLength(0);
    // Window rolled over: 10% used, re-armed; the next climb reports again.
    expect(w.crossings([b], [state(b, 90)])).toHaveLength(0);
    expect(w.tracked).toBe(0);
    expect(w.crossings([b], [state(b, 10)]).map((c) => c.threshold)).toEqual([80]);
  });

  it('catches a jump made between requests (settle), which a per-request cost check would miss', () => {
    const w = new LimitWatch();
    const b = bucket({ kind: 'tokens', limit: 1000 });
    expect(w.crossings([b], [state(b, 300)])).toHaveLength(0);
    // The previous request settled far above its estimate; this request only reserves 1 token.
    expect(w.crossings([b], [state(b, 150)]).map((c) => c.threshold)).toEqual([80]);
  });

  it('counts GCRA burst in the capacity', () => {
    const b = bucket({ algorithm: 'gcra', limit: 10, burst: 10 });
    expect(usedRatio(b, state(b, 10))).toBe(0.5);
    expect(usedRatio(b, state(b, 4))).toBe(0.8);
    expect(usedRatio(b, state(b, 0))).toBe(1);
    // Burst is ignored for windows (stores report no burst there).
    expect(usedRatio(bucket({ burst: 50 }), state(bucket(), 20))).toBe(0.8);
    // A zero limit never alerts.
    expect(usedRatio(bucket({ limit: 0 }), state(bucket({ limit: 0 }), 0))).toBe(0);
  });

  it('tracks buckets separately by storage key and reports the right index', () => {
    const w = new LimitWatch();
    const a = bucket({ key: '{t:acme}:rpm:key:k1', per: 'key' });
    const b = bucket({ key: '{t:acme}:rpm:key:k2', per: 'key' });
    const day = bucket({ id: 'rpd', key: '{t:acme}:rpd:tenant:acme', windowMs: 86_400_000 });
    const c = w.crossings([a, day], [state(a, 50), state(day, 0)]);
    expect(c.map((x) => `${x.index}:${x.id}:${x.threshold}`)).toEqual(['1:rpd:80', '1:rpd:100']);
    expect(w.crossings([b], [state(b, 0)])).toHaveLength(2);
    expect(w.crossings([a], [state(a, 0)])).toHaveLength(2);
  });

  it('returns one shared empty array when nothing crossed', () => {
    const w = new LimitWatch();
    const b = bucket();
    const x = w.crossings([b], [state(b, 90)]);
    expect(x).toHaveLength(0);
    expect(w.crossings([b], [state(b, 95)])).toBe(x);
    expect(Object.isFrozen(x)).toBe(true);
  });

  it('forgets the oldest bucket past its cap, so memory stays bounded', () => {
    const w = new LimitWatch({ maxTracked: 2 });
    const bs = [1, 2, 3].map((i) => bucket({ key: `k${i}` }));
    for (const b of bs) w.crossings([b], [state(b, 0)]);
    expect(w.tracked).toBe(2);
    // k1 was forgotten: it reports again; k3 is still remembered.
    expect(w.crossings([bs[0]!], [state(bs[0]!, 0)])).toHaveLength(2);
    expect(w.crossings([bs[2]!], [state(bs[2]!, 0)])).toHaveLength(0);
  });
});

describe('crossingAlert', () => {
  it('builds a per-key alert deduplicated once per limit window, within 5 minutes to a day', () => {
    const w = new LimitWatch();
    const b = bucket({ per: 'key', windowMs: 3_600_000, kind: 'tokens', limit: 5000, shadow: true });
    const [c80, c100] = w.crossings([b], [state(b, 0)]);
    const a = crossingAlert(c100!, { tenantId: 'acme', keyId: 'k_123' });
    expect(a).toMatchObject({
      type: 'limit.100',
      tenantId: 'acme',
      keyId: 'k_123',
      limitId: 'rpm',
      dedupeMs: 3_600_000,
    });
    expect(a.message).toBe('key k_123 reached 100% of limit "rpm" (5000 tokens per 1h, per key) [shadow]');
    expect(crossingAlert(c80!, { tenantId: 'acme', keyId: 'k_123' }).type).toBe('limit.80');

    const minute = bucket({ per: 'tenant', windowMs: 60_000 });
    const [m] = new LimitWatch().crossings([minute], [state(minute, 20)]);
    const t = crossingAlert(m!, { tenantId: 'acme', keyId: 'k_123' });
    // A tenant-wide limit is not tied to the key that happened to cross it.
    expect(t).toMatchObject({ type: 'limit.80', keyId: null, dedupeMs: 300_000 });
    expect(t.message).toBe('tenant acme reached 80% of limit "rpm" (100 requests per 1m, per tenant)');

    const month = bucket({ id: 'usd-month', kind: 'usd', windowMs: 30 * 86_400_000 });
    const [u] = new LimitWatch().crossings([month], [state(month, 0)]);
    expect(crossingAlert(u!, { tenantId: 'acme' }).dedupeMs).toBe(86_400_000);
  });
});
