import { describe, expect, it } from 'vitest';
import { denialOf, goDuration, rateLimitHeaders } from '../../../src/core/limits/headers.js';
import type { BucketState, LimitBucket } from '../../../src/core/ports.js';

const NOW = Date.UTC(2025, 0, 2, 3, 4, 5);

const state = (p: Partial<BucketState> & Pick<BucketState, 'id' | 'kind'>): BucketState => ({
  per: 'key',
  limit: 100,
  remaining: 50,
  resetMs: 1000,
  windowMs: 60_000,
  shadow: false,
  ...p,
});
const bucket = (p: Partial<LimitBucket> & Pick<LimitBucket, 'id' | 'kind'>): LimitBucket => ({
  key: `k:${p.id}`,
  algorithm: 'gcra',
  limit: 100,
  burst: 0,
  windowMs: 60_000,
  shadow: false,
  per: 'key',
  ...p,
});

describe('goDuration', () => {
  it('formats like Go time.Duration', () => {
    expect(goDuration(0)).toBe('0s');
    expect(goDuration(20)).toBe('20ms');
    expect(goDuration(0.2)).toBe('1ms');
    expect(goDuration(1000)).toBe('1s');
    expect(goDuration(1500)).toBe('1.5s');
    expect(goDuration(12_345)).toBe('12.345s');
    expect(goDuration(360_000)).toBe('6m0s');
    expect(goDuration(3_723_500)).toBe('1h2m3.5s');
    expect(goDuration(Number.POSITIVE_INFINITY)).toBe('0s');
  });
});

describe('rateLimitHeaders', () => {
  const states = [
    state({ id: 'rpm', kind: 'requests', limit: 20, remaining: 19, resetMs: 3000 }),
    state({
      id: 'rpd',
      kind: 'requests',
      limit: 1000,
      remaining: 5,
      resetMs: 86_000_000,
      windowMs: 86_400_000,
    }),
    state({ id: 'tpm', kind: 'tokens', limit: 40000, remaining: 1000, resetMs: 11_200 }),
    state({ id: 'inflight', kind: 'concurrent', limit: 2, remaining: 1, resetMs: 0, windowMs: 360_000 }),
    state({
      id: 'budget',
      kind: 'usd',
      per: 'tenant',
      limit: 5,
      remaining: 4.25,
      resetMs: 3_600_000,
      windowMs: 86_400_000,
    }),
    state({ id: 'trial', kind: 'requests', limit: 1, remaining: 0, shadow: true }),
  ];

  it('OpenAI family: the binding limit of each kind, Go-duration resets; shadow limits are never shown', () => {
    const h = rateLimitHeaders(states, NOW);
    expect(h['x-ratelimit-limit-requests']).toBe('1000');
    expect(h['x-ratelimit-remaining-requests']).toBe('5');
    expect(h['x-ratelimit-reset-requests']).toBe('23h53m20s');
    expect(h['x-ratelimit-limit-tokens']).toBe('40000');
    expect(h['x-ratelimit-remaining-tokens']).toBe('1000');
    expect(h['x-ratelimit-reset-tokens']).toBe('11.2s');
    expect(h['anthropic-ratelimit-requests-limit']).toBeUndefined();
  });

  it('IETF draft-10 fields: one item per limit, with units', () => {
    const h = rateLimitHeaders(states, NOW);
    expect(h['ratelimit-policy']).toBe(
      '"rpm";q=20;w=60, "rpd";q=1000;w=86400, "tpm";q=40000;w=60;sluice-unit="tokens", "inflight";q=2;qu="concurrent-requests", "budget";q=5000000;w=86400;sluice-unit="usd-micro"',
    );
    expect(h.ratelimit).toBe(
      '"rpm";r=19;t=3, "rpd";r=5;t=86000, "tpm";r=1000;t=12, "inflight";r=1;t=0, "budget";r=4250000;t=3600',
    );
  });

  it('Anthropic family on request, with RFC 3339 resets rounded up to the second', () => {
    const h = rateLimitHeaders(
      [state({ id: 'itpm', kind: 'inputTokens', limit: 50000, remaining: 49000, resetMs: 1200 }), ...states],
      NOW,
      { anthropic: true },
    );
    expect(h['anthropic-ratelimit-requests-limit']).toBe('1000');
    expect(h['anthropic-ratelimit-requests-remaining']).toBe('5');
    expect(h['anthropic-ratelimit-tokens-reset']).toBe('2025-01-02T03:04:17Z');
    expect(h['anthropic-ratelimit-input-tokens-limit']).toBe('50000');
    expect(h['anthropic-ratelimit-input-tokens-reset']).toBe('2025-01-02T03:04:07Z');
    expect(h['x-ratelimit-limit-tokens']).toBe('40000');
  });

  it('no limits, no headers', () => {
    expect(rateLimitHeaders([], NOW)).toEqual({});
  });
});

describe('denialOf', () => {
  it('names the limit that bound, its use, the request and the wait (the issue example)', () => {
    const buckets = [
      bucket({ id: 'rpm', kind: 'requests', limit: 20 }),
      bucket({ id: 'tpm', kind: 'tokens', limit: 40000 }),
    ];
    const states = [
      state({ id: 'rpm', kind: 'requests', limit: 20, remaining: 10 }),
      state({ id: 'tpm', kind: 'tokens', limit: 40000, remaining: 1000, resetMs: 58_500 }),
    ];
    const d = denialOf({ bucketIndex: 1, retryAfterMs: 1500, states }, buckets, [1, 2000], NOW);
    expect(d.code).toBe('SLUICE_RATE_LIMITED');
    expect(d.message).toBe(
      'Rate limit reached for tpm (per key): limit 40000, used 39000, requested 2000; try again in 1.5s',
    );
    expect(d.headers['retry-after']).toBe('2');
    expect(d.headers['retry-after-ms']).toBe('1500');
    expect(d.headers['x-should-retry']).toBeUndefined();
    expect(d.headers['x-ratelimit-remaining-tokens']).toBe('1000');
    expect(d.refusal).toMatchObject({
      code: 'SLUICE_RATE_LIMITED',
      detail: 'tpm (per key): limit 40000, used 39000, requested 2000; try again in 1.5s',
    });
  });

  it('a request that can never fit is a quota error the SDKs must not retry', () => {
    const buckets = [bucket({ id: 'tpm', kind: 'tokens', limit: 40000, burst: 1000 })];
    const d = denialOf(
      {
        bucketIndex: 0,
        retryAfterMs: Number.POSITIVE_INFINITY,
        states: [state({ id: 'tpm', kind: 'tokens', limit: 40000 })],
      },
      buckets,
      [50000],
      NOW,
    );
    expect(d.code).toBe('SLUICE_QUOTA_EXCEEDED');
    expect(d.message).toBe(
      'Request too large for tpm (per key): requested 50000, limit 40000 (+1000 burst); it can never fit',
    );
    expect(d.headers['x-should-retry']).toBe('false');
    expect(d.headers['retry-after']).toBeUndefined();
  });

  it('an exhausted money budget is a quota error too, with the time until it frees up', () => {
    const buckets = [
      bucket({
        id: 'daily',
        kind: 'usd',
        per: 'tenant',
        algorithm: 'window',
        limit: 5,
        windowMs: 86_400_000,
      }),
    ];
    const states = [
      state({ id: 'daily', kind: 'usd', per: 'tenant', limit: 5, remaining: 0.01, windowMs: 86_400_000 }),
    ];
    const d = denialOf({ bucketIndex: 0, retryAfterMs: 10_920_000, states }, buckets, [0.0234], NOW);
    expect(d.code).toBe('SLUICE_QUOTA_EXCEEDED');
    expect(d.message).toBe(
      'Quota exceeded for daily (per tenant): limit 5 USD, used 4.99 USD, requested 0.0234 USD; resets in 3h2m0s',
    );
    expect(d.headers['x-should-retry']).toBe('false');
    expect(d.headers['retry-after']).toBe('10920');
  });

  it('a concurrency limit has its own code', () => {
    const buckets = [bucket({ id: 'inflight', kind: 'concurrent', algorithm: 'lease', limit: 2 })];
    const d = denialOf(
      {
        bucketIndex: 0,
        retryAfterMs: 1000,
        states: [state({ id: 'inflight', kind: 'concurrent', limit: 2, remaining: 0 })],
      },
      buckets,
      [1],
      NOW,
    );
    expect(d.code).toBe('SLUICE_CONCURRENCY_LIMITED');
    expect(d.message).toBe(
      'Concurrency limit reached for inflight (per key): limit 2, in flight 2; try again in 1s',
    );
    expect(d.headers['retry-after']).toBe('1');
  });

  it('a wait longer than a client should sleep: x-should-retry false and when the window reopens (issue 15)', () => {
    const buckets = [
      bucket({ id: 'rph', kind: 'requests', algorithm: 'window', limit: 5, windowMs: 3_600_000 }),
    ];
    const states = [
      state({ id: 'rph', kind: 'requests', limit: 5, remaining: 0, resetMs: 3_590_000, windowMs: 3_600_000 }),
    ];
    const d = denialOf({ bucketIndex: 0, retryAfterMs: 3_590_000, states }, buckets, [1], NOW);
    expect(d.code).toBe('SLUICE_RATE_LIMITED');
    expect(d.headers['x-should-retry']).toBe('false');
    // The true wait is still advertised, for clients that schedule instead of sleeping.
    expect(d.headers['retry-after']).toBe('3590');
    expect(d.headers['retry-after-ms']).toBe('3590000');
    expect(d.message).toBe(
      'Rate limit reached for rph (per key): limit 5, used 5, requested 1; the window reopens in 59m50s (at 2025-01-02T04:03:55Z), longer than a client should wait: not retrying',
    );
  });

  it('the client wait cap is policy-settable, and a wait at the cap is still retried', () => {
    const buckets = [bucket({ id: 'rpm', kind: 'requests', limit: 5 })];
    const states = [state({ id: 'rpm', kind: 'requests', limit: 5, remaining: 0 })];
    const at = denialOf({ bucketIndex: 0, retryAfterMs: 60_000, states }, buckets, [1], NOW);
    expect(at.headers['x-should-retry']).toBeUndefined();
    expect(at.message).toMatch(/try again in 1m0s$/);
    const over = denialOf({ bucketIndex: 0, retryAfterMs: 10_001, states }, buckets, [1], NOW, {
      maxClientRetryWaitMs: 10_000,
    });
    expect(over.headers['x-should-retry']).toBe('false');
    expect(over.refusal.headers?.['x-should-retry']).toBe('false');
  });
});
