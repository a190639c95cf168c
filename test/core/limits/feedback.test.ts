import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { remainingIsLow, UpstreamFeedback } from '../../../src/core/limits/feedback.js';

const declared = { requestsPerMinute: 1000, tokensPerMinute: 100_000 };
const T0 = 5_000_000;

describe('upstream feedback (fake clock)', () => {
  it('a 429 halves the capacity handed out; quiet time restores it step by step, never past the declared one', () => {
    const fb = new UpstreamFeedback({ decrease: 0.5, recoverStep: 0.1, recoverEveryMs: 1000 });
    expect(fb.capacity(declared, T0)).toEqual(declared);
    const e = fb.response(429, {}, T0 - 10, declared, T0);
    expect(e).toMatchObject({ reason: 'upstream-429', factor: 0.5, derived: false });
    expect(fb.capacity(declared, T0)).toEqual({ requestsPerMinute: 500, tokensPerMinute: 50_000 });
    // 1. Nothing before the first interval has passed.
    expect(fb.capacity(declared, T0 + 999)!.requestsPerMinute).toBeCloseTo(500);
    // 2. One step per interval (additive).
    expect(fb.capacity(declared, T0 + 1000)!.requestsPerMinute).toBeCloseTo(600);
    expect(fb.capacity(declared, T0 + 3500)!.requestsPerMinute).toBeCloseTo(800);
    // 3. Back to the declared capacity, and no further.
    expect(fb.capacity(declared, T0 + 60_000)).toEqual(declared);
  });

  it('reacts once per episode: answers to requests admitted before the last decrease are ignored', () => {
    const fb = new UpstreamFeedback({ decrease: 0.5 });
    fb.response(429, {}, T0 - 100, declared, T0);
    // A burst of 429s for requests that were in flight when the first one came back.
    for (let i = 0; i < 20; i++) expect(fb.response(429, {}, T0 - 50 + i, declared, T0 + 10 + i)).toBeNull();
    expect(fb.factor(T0 + 100, declared)).toBeCloseTo(0.5);
    // A request admitted after the decrease that is refused again cuts again.
    expect(fb.response(429, {}, T0 + 200, declared, T0 + 300)!.factor).toBeCloseTo(0.25);
  });

  it('at the floor a 429 reports nothing new but holds recovery back', () => {
    const fb = new UpstreamFeedback({ floor: 0.25, decrease: 0.5, recoverStep: 0.1, recoverEveryMs: 1000 });
    expect(fb.response(429, {}, T0 - 1, declared, T0)!.factor).toBeCloseTo(0.5);
    expect(fb.response(429, {}, T0 + 1, declared, T0 + 2)!.factor).toBeCloseTo(0.25);
    expect(fb.response(429, {}, T0 + 900, declared, T0 + 900)).toBeNull();
    // Recovery counts from the last 429, not from when the floor was reached.
    expect(fb.factor(T0 + 1800, declared)).toBeCloseTo(0.25);
    expect(fb.factor(T0 + 1900, declared)).toBeCloseTo(0.35);
  });

  it('never goes below the floor, however many 429s', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 60 }), (gaps) => {
        const fb = new UpstreamFeedback({ floor: 0.05, decrease: 0.5 });
        let now = T0;
        for (const g of gaps) {
          now += g;
          fb.response(429, {}, now - 1, declared, now);
          const f = fb.factor(now, declared);
          expect(f).toBeGreaterThanOrEqual(0.05);
          expect(f).toBeLessThanOrEqual(1);
        }
      }),
    );
  });

  it('low remaining headers (OpenAI or Anthropic) cut gently; a healthy allowance or a missing limit header does not', () => {
    const fb = new UpstreamFeedback({ lowDecrease: 0.8, lowFraction: 0.05 });
    expect(
      fb.response(
        200,
        { 'x-ratelimit-remaining-requests': '999', 'x-ratelimit-limit-requests': '1000' },
        T0 - 1,
        declared,
        T0,
      ),
    ).toBeNull();
    expect(fb.response(200, { 'x-ratelimit-remaining-requests': '1' }, T0 - 1, declared, T0)).toBeNull();
    const e = fb.response(
      200,
      { 'anthropic-ratelimit-tokens-remaining': '2000', 'anthropic-ratelimit-tokens-limit': '80000' },
      T0 - 1,
      declared,
      T0,
    );
    expect(e).toMatchObject({ reason: 'upstream-low', factor: 0.8 });
    expect(
      remainingIsLow({ 'x-ratelimit-remaining-tokens': '49', 'x-ratelimit-limit-tokens': '1000' }, 0.05),
    ).toBe(true);
    expect(
      remainingIsLow({ 'x-ratelimit-remaining-tokens': '50', 'x-ratelimit-limit-tokens': '1000' }, 0.05),
    ).toBe(false);
  });

  it('an upstream with no declared capacity gets one from the rate admitted to it at the first 429, then is unlimited again once recovered', () => {
    const fb = new UpstreamFeedback({
      decrease: 0.5,
      recoverStep: 0.25,
      recoverEveryMs: 1000,
      derivedCeiling: 2,
    });
    expect(fb.capacity(undefined, T0)).toBeUndefined();
    // 10 requests of 100 tokens a second for 5 s: 600 requests and 60,000 tokens per minute.
    for (let i = 0; i < 50; i++) fb.admitted(1, 100, T0 + i * 100);
    const now = T0 + 5000;
    const e = fb.response(429, {}, now - 1, undefined, now)!;
    expect(e.derived).toBe(true);
    expect(e.capacity.requestsPerMinute).toBeGreaterThan(0.5 * 600 * 0.9);
    expect(e.capacity.requestsPerMinute).toBeLessThan(0.5 * 600 * 1.1);
    expect(e.capacity.tokensPerMinute! / e.capacity.requestsPerMinute!).toBeCloseTo(100, 0);
    // Recovers past the derived rate (probing) and is forgotten at the ceiling.
    expect(fb.capacity(undefined, now + 4000)!.requestsPerMinute).toBeGreaterThan(600 * 0.9);
    expect(fb.capacity(undefined, now + 6000)).toBeUndefined();
    // A later 429 derives afresh.
    fb.admitted(1, 100, now + 6100);
    expect(fb.response(429, {}, now + 6100, undefined, now + 6200)!.derived).toBe(true);
  });

  it('other statuses without rate headers change nothing', () => {
    const fb = new UpstreamFeedback();
    for (const s of [200, 400, 500, 503]) expect(fb.response(s, {}, T0 - 1, declared, T0)).toBeNull();
    expect(fb.capacity(declared, T0)).toEqual(declared);
  });
});
