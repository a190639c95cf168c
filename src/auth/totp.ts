/**
 * RFC 6238 TOTP for step-up (SHA-1, 6 digits, 30 s: what every authenticator app does), via otplib 13.
 * A code is accepted one step either side of now (clock drift), and each subject can use a time step
 * once: a code, or any older code, that already succeeded is refused as a replay.
 */
import { createHash } from 'node:crypto';
import { generateSecret, generateSync, generateURI, verifySync } from 'otplib';

const PERIOD_S = 30;

/** A new base32 secret (20 random bytes, 160 bits as RFC 4226 recommends). */
export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

/** `otpauth://totp/<issuer>:<label>?secret=...&issuer=...` for a QR code. */
export function otpauthUrl(secret: string, label: string, issuer = 'Sluice'): string {
  return generateURI({ issuer, label, secret });
}

/** The code for `now` (ms); for tests and the CLI's self-check, never sent anywhere. */
export function totpCode(secret: string, now: number): string {
  return generateSync({ secret, epoch: Math.floor(now / 1000) });
}

/**
 * Last accepted time step per subject. In memory by default; a shared store (the control store) makes
 * replay protection hold across instances.
 */
export interface TotpReplayGuard {
  lastStep(subject: string): number | undefined;
  record(subject: string, step: number): void;
}

/** Bounded in-memory guard (oldest subject forgotten first; a forgotten entry is at most a few steps old to matter). */
export class MemoryTotpGuard implements TotpReplayGuard {
  private readonly steps = new Map<string, number>();
  constructor(private readonly maxSubjects = 100_000) {}
  lastStep(subject: string): number | undefined {
    return this.steps.get(subject);
  }
  record(subject: string, step: number): void {
    this.steps.delete(subject);
    if (this.steps.size >= this.maxSubjects) {
      const oldest = this.steps.keys().next().value;
      if (oldest !== undefined) this.steps.delete(oldest);
    }
    this.steps.set(subject, step);
  }
}

/** The guard used when the caller passes none (one per process). */
export const defaultTotpGuard = new MemoryTotpGuard();

export type TotpResult =
  | { ok: true; timeStep: number }
  | { ok: false; reason: 'missing' | 'malformed' | 'wrong' | 'replayed' };

/**
 * Checks `code` against `secret` at `now` (ms), ±1 step. Never throws; a failure is a value.
 * `subject` names whose replay state to use (the key id); default: a hash of the secret.
 */
export function verifyTotp(
  secret: string,
  code: string | null | undefined,
  now: number,
  opts: { guard?: TotpReplayGuard; subject?: string } = {},
): TotpResult {
  if (code === null || code === undefined || code === '') return { ok: false, reason: 'missing' };
  if (!/^\d{6}$/.test(code)) return { ok: false, reason: 'malformed' };
  let result: ReturnType<typeof verifySync>;
  try {
    result = verifySync({ secret, token: code, epoch: Math.floor(now / 1000), epochTolerance: PERIOD_S });
  } catch {
    return { ok: false, reason: 'wrong' };
  }
  if (!result.valid || !('timeStep' in result)) return { ok: false, reason: 'wrong' };
  const guard = opts.guard ?? defaultTotpGuard;
  const subject = opts.subject ?? createHash('sha256').update(secret).digest('base64url');
  const last = guard.lastStep(subject);
  if (last !== undefined && result.timeStep <= last) return { ok: false, reason: 'replayed' };
  guard.record(subject, result.timeStep);
  return { ok: true, timeStep: result.timeStep };
}
