import { describe, expect, it } from 'vitest';
import { MemoryTotpGuard, newTotpSecret, otpauthUrl, totpCode, verifyTotp } from '../../src/auth/totp.js';

const T0 = Date.UTC(2024, 0, 1, 12, 0, 0); // on a 30 s boundary

describe('TOTP', () => {
  it('makes secrets and otpauth URLs', () => {
    const s = newTotpSecret();
    expect(s).toMatch(/^[A-Z2-7]{32}$/);
    expect(newTotpSecret()).not.toBe(s);
    expect(otpauthUrl(s, 'key k1')).toBe(`otpauth://totp/Sluice:key%20k1?secret=${s}&issuer=Sluice`);
  });

  it('accepts the current code and refuses missing, malformed and wrong ones', () => {
    const s = newTotpSecret();
    const guard = new MemoryTotpGuard();
    const code = totpCode(s, T0);
    expect(verifyTotp(s, undefined, T0, { guard })).toEqual({ ok: false, reason: 'missing' });
    expect(verifyTotp(s, '12345', T0, { guard })).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyTotp(s, '12a456', T0, { guard })).toEqual({ ok: false, reason: 'malformed' });
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    expect(verifyTotp(s, wrong, T0, { guard })).toEqual({ ok: false, reason: 'wrong' });
    expect(verifyTotp(newTotpSecret(), code, T0, { guard })).toMatchObject({ ok: false });
    expect(verifyTotp(s, code, T0, { guard })).toMatchObject({ ok: true });
  });

  it('allows one step of drift either side, not two', () => {
    const s = newTotpSecret();
    expect(verifyTotp(s, totpCode(s, T0 - 30_000), T0, { guard: new MemoryTotpGuard() }).ok).toBe(true);
    expect(verifyTotp(s, totpCode(s, T0 + 30_000), T0, { guard: new MemoryTotpGuard() }).ok).toBe(true);
    expect(verifyTotp(s, totpCode(s, T0 - 60_000), T0, { guard: new MemoryTotpGuard() }).ok).toBe(false);
    expect(verifyTotp(s, totpCode(s, T0 + 60_000), T0, { guard: new MemoryTotpGuard() }).ok).toBe(false);
  });

  it('refuses a replayed code, and an older code once a newer one was used, per subject', () => {
    const s = newTotpSecret();
    const guard = new MemoryTotpGuard();
    const now = totpCode(s, T0);
    expect(verifyTotp(s, now, T0, { guard, subject: 'k1' }).ok).toBe(true);
    expect(verifyTotp(s, now, T0 + 5_000, { guard, subject: 'k1' })).toEqual({
      ok: false,
      reason: 'replayed',
    });
    expect(verifyTotp(s, totpCode(s, T0 - 30_000), T0, { guard, subject: 'k1' })).toEqual({
      ok: false,
      reason: 'replayed',
    });
    // Another key sharing nothing but the guard is unaffected; the next step is fine again.
    expect(verifyTotp(s, now, T0, { guard, subject: 'k2' }).ok).toBe(true);
    expect(verifyTotp(s, totpCode(s, T0 + 30_000), T0 + 30_000, { guard, subject: 'k1' }).ok).toBe(true);
  });
});
