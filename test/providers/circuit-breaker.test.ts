import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/providers/circuit-breaker.js';

function fakeClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const opts = { failureThreshold: 3, failureRatio: 0.5, minCalls: 10, windowMs: 10_000, cooldownMs: 5_000 };

function fail(b: CircuitBreaker, n: number) {
  for (let i = 0; i < n; i++) {
    const p = b.acquire();
    if (!p.ok) throw new Error('refused');
    b.failure(p.probe);
  }
}

function succeed(b: CircuitBreaker, n: number) {
  for (let i = 0; i < n; i++) {
    const p = b.acquire();
    if (!p.ok) throw new Error('refused');
    b.success(p.probe);
  }
}

describe('CircuitBreaker', () => {
  it('opens after N consecutive failures and refuses with the cooldown left', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker(clock, opts);
    fail(b, 2);
    expect(b.state()).toBe('closed');
    fail(b, 1);
    expect(b.state()).toBe('open');
    clock.advance(2_000);
    expect(b.acquire()).toEqual({ ok: false, retryAfterMs: 3_000 });
  });

  it('a success resets the consecutive count', () => {
    const b = new CircuitBreaker(fakeClock(), opts);
    fail(b, 2);
    succeed(b, 1);
    fail(b, 2);
    expect(b.state()).toBe('closed');
  });

  it('opens on the failure ratio once enough calls were seen in the window', () => {
    const b = new CircuitBreaker(fakeClock(), { ...opts, failureThreshold: 100 });
    // 1. Alternate: never 3 in a row, but 50% failures.
    for (let i = 0; i < 4; i++) {
      succeed(b, 1);
      fail(b, 1);
    }
    expect(b.state()).toBe('closed'); // 8 calls < minCalls
    succeed(b, 1);
    fail(b, 1); // 10 calls, 5 failures
    expect(b.state()).toBe('open');
  });

  it('old failures age out of the ratio window', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker(clock, { ...opts, failureThreshold: 100 });
    for (let i = 0; i < 4; i++) {
      succeed(b, 1);
      fail(b, 1);
    }
    clock.advance(11_000);
    succeed(b, 8);
    fail(b, 2); // 10 calls in window, 20% failures
    expect(b.state()).toBe('closed');
  });

  it('goes half-open after the cooldown and lets exactly one probe through', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker(clock, opts);
    fail(b, 3);
    clock.advance(4_999);
    expect(b.state()).toBe('open');
    clock.advance(1);
    expect(b.state()).toBe('half-open');
    expect(b.acquire()).toEqual({ ok: true, probe: true });
    expect(b.acquire().ok).toBe(false);
    b.success(true);
    expect(b.state()).toBe('closed');
    expect(b.acquire()).toEqual({ ok: true, probe: false });
  });

  it('a failed probe reopens for a full cooldown', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker(clock, opts);
    fail(b, 3);
    clock.advance(5_000);
    const p = b.acquire();
    expect(p).toEqual({ ok: true, probe: true });
    clock.advance(1_000);
    b.failure(true);
    expect(b.state()).toBe('open');
    expect(b.acquire()).toEqual({ ok: false, retryAfterMs: 5_000 });
  });

  it('a cancelled probe frees the slot for the next caller', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker(clock, opts);
    fail(b, 3);
    clock.advance(5_000);
    expect(b.acquire()).toEqual({ ok: true, probe: true });
    b.cancel(true);
    expect(b.state()).toBe('half-open');
    expect(b.acquire()).toEqual({ ok: true, probe: true });
  });

  it('late outcomes of calls admitted before opening do not move the state', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker(clock, opts);
    const slow = b.acquire();
    fail(b, 3);
    expect(b.state()).toBe('open');
    if (!slow.ok) throw new Error('refused');
    b.success(slow.probe);
    expect(b.state()).toBe('open');
    clock.advance(5_000);
    const probe = b.acquire();
    b.success(false); // another late success: only the probe decides
    expect(b.state()).toBe('half-open');
    if (!probe.ok) throw new Error('refused');
    b.success(probe.probe);
    expect(b.state()).toBe('closed');
  });
});
