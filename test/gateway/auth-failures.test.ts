import { describe, expect, it } from 'vitest';
import {
  AuthFailureLimiter,
  type AuthFailureSummary,
  subjectOfIp,
  summaryAuditEvent,
} from '../../src/gateway/auth-failures.js';

function setup(opts: { perIp?: number; window?: number; maxTracked?: number } = {}) {
  let t = 1_000_000;
  const summaries: AuthFailureSummary[] = [];
  const limiter = new AuthFailureLimiter({
    budget: () => ({ perIp: opts.perIp ?? 3, window: opts.window ?? 60_000 }),
    clock: { now: () => t },
    onSummary: (s) => summaries.push(s),
    maxTracked: opts.maxTracked,
    sweepEveryMs: 0,
  });
  return {
    limiter,
    summaries,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('AuthFailureLimiter per client IP', () => {
  it('refuses an IP once it used its budget, with Retry-After to the end of the window', () => {
    const { limiter, advance } = setup({ perIp: 3, window: 60_000 });
    for (let i = 0; i < 3; i++) {
      expect(limiter.check('10.0.0.1')).toBeNull();
      limiter.fail('10.0.0.1');
    }
    advance(15_000);
    const r = limiter.check('10.0.0.1');
    expect(r?.code).toBe('SLUICE_TOO_MANY_AUTH_FAILURES');
    expect(r?.headers?.['retry-after']).toBe('45');
    // Another IP is untouched.
    expect(limiter.check('10.0.0.2')).toBeNull();
  });

  it('opens again when the window ends, and the next window starts at the next failure', () => {
    const { limiter, advance } = setup({ perIp: 2, window: 10_000 });
    limiter.fail('1.2.3.4');
    limiter.fail('1.2.3.4');
    expect(limiter.check('1.2.3.4')).not.toBeNull();
    advance(10_000);
    expect(limiter.check('1.2.3.4')).toBeNull();
    limiter.fail('1.2.3.4');
    expect(limiter.check('1.2.3.4')).toBeNull();
    limiter.fail('1.2.3.4');
    expect(limiter.check('1.2.3.4')).not.toBeNull();
  });

  it('counts IPv6 clients per /64: rotating addresses inside it does not reset the budget', () => {
    const { limiter } = setup({ perIp: 2 });
    limiter.fail('2001:db8:1:2::1');
    limiter.fail('2001:db8:1:2:ffff::9');
    expect(limiter.check('2001:db8:1:2:abcd::77')?.code).toBe('SLUICE_TOO_MANY_AUTH_FAILURES');
    expect(limiter.check('2001:db8:1:3::1')).toBeNull();
    expect(subjectOfIp('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(subjectOfIp('192.0.2.7')).toBe('192.0.2.7');
  });

  it('audits in aggregate: one summary per IP per window that refused, none for a quiet window', () => {
    const { limiter, summaries, advance } = setup({ perIp: 2, window: 10_000 });
    limiter.fail('10.0.0.9'); // one failure, never refused: no summary
    for (let i = 0; i < 2; i++) limiter.fail('10.0.0.1');
    for (let i = 0; i < 500; i++) limiter.check('10.0.0.1');
    limiter.sweep();
    expect(summaries).toEqual([]); // window still open
    advance(10_000);
    limiter.sweep();
    expect(summaries).toEqual([
      {
        kind: 'ip',
        subject: '10.0.0.1',
        failures: 2,
        refused: 500,
        windowStart: 1_000_000,
        windowEnd: 1_010_000,
      },
    ]);
    expect(limiter.stats()).toEqual({ ips: 0, keys: 0 });
    const ev = summaryAuditEvent(summaries[0]!, 1_010_000, 4);
    expect(ev).toMatchObject({
      action: 'auth',
      decision: 'throttled',
      reason: 'SLUICE_TOO_MANY_AUTH_FAILURES',
      clientIp: '10.0.0.1',
      keyId: null,
      policyVersion: 4,
      details: { aggregate: true, failures: 2, refused: 500 },
    });
  });

  it('close() emits the summaries of open windows', () => {
    const { limiter, summaries } = setup({ perIp: 1 });
    limiter.fail('10.0.0.1');
    limiter.check('10.0.0.1');
    limiter.close();
    expect(summaries.map((s) => [s.subject, s.refused])).toEqual([['10.0.0.1', 1]]);
  });

  it('memory stays bounded under a flood of distinct addresses', () => {
    const { limiter, summaries } = setup({ perIp: 1, maxTracked: 1000 });
    for (let i = 0; i < 20_000; i++) {
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      limiter.check(ip);
      limiter.fail(ip);
      limiter.check(ip);
    }
    expect(limiter.stats().ips).toBeLessThanOrEqual(1000);
    // Evicted live windows that refused are still summarised, not silently lost.
    expect(summaries.length).toBe(19_000);
  });

  it('the budget is read live (a policy reload applies at once)', () => {
    let perIp = 5;
    const limiter = new AuthFailureLimiter({
      budget: () => ({ perIp, window: 60_000 }),
      clock: { now: () => 0 },
      sweepEveryMs: 0,
    });
    for (let i = 0; i < 3; i++) limiter.fail('10.0.0.1');
    expect(limiter.check('10.0.0.1')).toBeNull();
    perIp = 3;
    expect(limiter.check('10.0.0.1')).not.toBeNull();
  });
});

describe('AuthFailureLimiter per key id', () => {
  const good = 'sk-sluice-AAAAAAAAAAAA-goodgoodgoodgoodgoodgoodgoodgood';
  const bad = 'sk-sluice-AAAAAAAAAAAA-badbadbadbadbadbadbadbadbadbadba';

  it('refuses a key id over its budget, but never a credential that authenticated during the attack', () => {
    const { limiter } = setup({ perIp: 3 });
    expect(limiter.watchingKeys()).toBe(false);
    limiter.failKey('AAAAAAAAAAAA');
    expect(limiter.watchingKeys()).toBe(true);
    limiter.passKey('AAAAAAAAAAAA', good); // the owner's call while the attack runs
    limiter.failKey('AAAAAAAAAAAA');
    limiter.failKey('AAAAAAAAAAAA');
    expect(limiter.checkKey('AAAAAAAAAAAA', bad)?.code).toBe('SLUICE_TOO_MANY_AUTH_FAILURES');
    expect(limiter.checkKey('AAAAAAAAAAAA', good)).toBeNull();
    expect(limiter.checkKey('BBBBBBBBBBBB', bad)).toBeNull();
  });

  it('passKey remembers nothing for a key id nobody is attacking', () => {
    const { limiter } = setup();
    limiter.passKey('AAAAAAAAAAAA', good);
    expect(limiter.stats().keys).toBe(0);
  });

  it('summarises a key id window that refused, naming the key id and no secret', () => {
    const { limiter, summaries, advance } = setup({ perIp: 1, window: 1000 });
    limiter.failKey('AAAAAAAAAAAA');
    limiter.checkKey('AAAAAAAAAAAA', bad);
    advance(1000);
    limiter.sweep();
    expect(summaries).toHaveLength(1);
    const ev = summaryAuditEvent(summaries[0]!, 0, null);
    expect(ev.keyId).toBe('AAAAAAAAAAAA');
    expect(JSON.stringify(ev)).not.toContain('badbad');
  });
});
