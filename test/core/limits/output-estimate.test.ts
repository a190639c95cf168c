/**
 * Output reservation (issue 15): the sketch's percentile, its bounds, the reservation rule, the tier
 * clamp, and the worst-case overshoot checked against the real memory store on a fake clock.
 */
import { describe, expect, it } from 'vitest';
import { estimateRequest } from '../../../src/core/limits/estimate.js';
import {
  applyTierMaxTokens,
  DEFAULT_OUTPUT_RESERVE,
  OutputSketch,
  outputReservation,
  worstCaseOvershoot,
} from '../../../src/core/limits/output-estimate.js';
import type { LimitBucket } from '../../../src/core/ports.js';
import { MemoryLimitStore } from '../../../src/stores/memory-limit-store.js';

describe('OutputSketch', () => {
  it('reports a high percentile within 9% above the true one, per key and model', () => {
    const s = new OutputSketch();
    // 100 answers of 1..100 tokens × 2: the 95th percentile is 190.
    for (let i = 1; i <= 100; i++) s.observe('k1', 'm', i * 2);
    const p95 = s.quantile('k1', 'm', 0.95, 10)!;
    expect(p95).toBeGreaterThanOrEqual(190);
    expect(p95).toBeLessThanOrEqual(Math.ceil(190 * 1.09));
    expect(s.quantile('k2', 'm', 0.95, 10)).toBeUndefined();
    // The model's histogram (any key) answers for a key not seen yet.
    expect(s.estimate('k2', 'm', DEFAULT_OUTPUT_RESERVE)).toBe(p95);
    expect(s.estimate('k2', 'other', DEFAULT_OUTPUT_RESERVE)).toBeUndefined();
  });

  it('needs minSamples before it answers', () => {
    const s = new OutputSketch();
    for (let i = 0; i < 9; i++) s.observe('k', 'm', 200);
    expect(s.quantile('k', 'm', 0.95, 10)).toBeUndefined();
    s.observe('k', 'm', 200);
    expect(s.quantile('k', 'm', 0.95, 10)).toBeGreaterThanOrEqual(200);
  });

  it('is bounded: the least recently observed histogram is evicted first', () => {
    const s = new OutputSketch(4);
    s.observe('a', 'm', 10); // histograms k:a:m and m:m
    s.observe('b', 'm', 10); // + k:b:m (m:m touched)
    s.observe('c', 'm', 10); // + k:c:m → 4
    s.observe('d', 'm', 10); // + k:d:m → evicts k:a:m
    expect(s.size).toBe(4);
    expect(s.quantile('a', 'm', 0.5, 1)).toBeUndefined();
    expect(s.quantile('d', 'm', 0.5, 1)).toBeGreaterThanOrEqual(10);
    expect(s.quantile(null, 'm', 0.5, 1)).toBeGreaterThanOrEqual(10);
  });

  it('follows recent behaviour: old observations are halved away', () => {
    const s = new OutputSketch();
    for (let i = 0; i < 1000; i++) s.observe('k', 'm', 5000);
    for (let i = 0; i < 20_000; i++) s.observe('k', 'm', 100);
    expect(s.quantile('k', 'm', 0.95, 10)).toBeLessThan(120);
  });
});

describe('outputReservation', () => {
  const opts = DEFAULT_OUTPUT_RESERVE;
  it('estimate mode: the observed percentile capped by max_tokens, else the initial guess', () => {
    expect(outputReservation(64_000, 4096, undefined, opts)).toBe(1024);
    expect(outputReservation(64_000, 4096, 230, opts)).toBe(230);
    expect(outputReservation(100, 4096, 230, opts)).toBe(100);
    expect(outputReservation(undefined, 4096, 230, opts)).toBe(230);
  });
  it('declared mode keeps the old rule', () => {
    const d = { ...opts, mode: 'declared' as const };
    expect(outputReservation(64_000, 4096, 230, d)).toBe(64_000);
    expect(outputReservation(undefined, 4096, 230, d)).toBe(4096);
  });
  it('estimateRequest uses it, times the choices', () => {
    const body = { max_tokens: 64_000, n: 2, messages: [{ role: 'user', content: 'hi' }] };
    expect(estimateRequest('chat', body, { defaultOutputTokens: 4096 }).outputTokens).toBe(128_000);
    expect(
      estimateRequest('chat', body, { defaultOutputTokens: 4096, outputReserve: opts, observedOutput: 200 })
        .outputTokens,
    ).toBe(400);
  });
});

describe('applyTierMaxTokens', () => {
  it('refuses or clamps the endpoint own parameter', () => {
    expect(applyTierMaxTokens('chat', { max_tokens: 100 }, 2048, 'refuse')).toEqual({ kind: 'ok' });
    expect(applyTierMaxTokens('messages', { max_tokens: 64_000 }, 2048, 'refuse')).toEqual({
      kind: 'refuse',
      max: 2048,
      param: 'max_tokens',
    });
    expect(applyTierMaxTokens('chat', { max_completion_tokens: 16_384 }, 2048, 'clamp')).toEqual({
      kind: 'clamp',
      param: 'max_completion_tokens',
      from: 16_384,
      to: 2048,
    });
    expect(applyTierMaxTokens('responses', { max_output_tokens: 9000 }, 2048, 'clamp')).toMatchObject({
      param: 'max_output_tokens',
      to: 2048,
    });
    expect(applyTierMaxTokens('chat', { max_tokens: 9000 }, undefined, 'clamp')).toEqual({ kind: 'ok' });
  });
});

describe('worst-case overshoot', () => {
  it('bounds what one window admits when every answer runs to its max_tokens (memory store, GCRA, fake clock)', async () => {
    const clock = { t: 1_700_000_000_000, now: () => clock.t };
    const store = new MemoryLimitStore({ clock });
    const b: LimitBucket = {
      id: 'tpm',
      key: 'k:overshoot',
      kind: 'tokens',
      algorithm: 'gcra',
      limit: 40_000,
      burst: 0,
      windowMs: 60_000,
      shadow: false,
      per: 'key',
    };
    const input = 20;
    const reserved = 1024;
    const maxOutput = 16_384;
    // 1. Every request reserves input + 1024 and is admitted while the bucket has room (no time passes).
    let admitted = 0;
    let used = 0;
    const reservations = [];
    for (let i = 0; i < 1000; i++) {
      const r = await store.reserve({ buckets: [b], costs: [input + reserved], requestId: `r${i}` });
      if (!r.ok) break;
      admitted++;
      reservations.push(r.reservation);
    }
    // 2. Each then produces its whole max_tokens: settle books the difference as debt.
    for (const res of reservations) {
      await store.settle(res, [input + maxOutput]);
      used += input + maxOutput;
    }
    const bound = worstCaseOvershoot(b.limit + b.burst, { input, output: reserved }, maxOutput);
    expect(admitted).toBe(Math.floor(40_000 / (input + reserved)));
    expect(used - b.limit).toBeLessThanOrEqual(bound);
    // 3. The debt is waited out: nothing more is admitted until the window has paid it back.
    const next = await store.reserve({ buckets: [b], costs: [input + reserved], requestId: 'after' });
    expect(next.ok).toBe(false);
    if (!next.ok) expect(next.retryAfterMs).toBeGreaterThan(60_000 * ((used - b.limit) / b.limit) - 1000);
  });
});
