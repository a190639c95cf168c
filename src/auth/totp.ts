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

/**
 * A replay guard several instances share (Redis, or the control store): `claimStep` atomically
 * records `step` for `subject` and resolves true only when it is newer than the step recorded last
 * (so a code, or any older code, is accepted once across every instance). The record may expire
 * after `ttlMs`: by then every step it could refuse is out of the ±1 step window anyway.
 */
export interface SharedTotpGuard {
  claimStep(subject: string, step: number, ttlMs: number, now: number): boolean | Promise<boolean>;
}

/** How long a last-used step must be kept: ±1 step of tolerance, plus the step itself, plus margin. */
export const TOTP_GUARD_TTL_MS = 5 * PERIOD_S * 1000;

/** Bounded in-memory guard (oldest subject forgotten first; a forgotten entry is at most a few steps old to matter). */
export class MemoryTotpGuard implements TotpReplayGuard, SharedTotpGuard {
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
  claimStep(subject: string, step: number): boolean {
    const last = this.steps.get(subject);
    if (last !== undefined && step <= last) return false;
    this.record(subject, step);
    return true;
  }
}

/** The guard used when the caller passes none (one per process). */
export const defaultTotpGuard = new MemoryTotpGuard();

let sharedGuard: SharedTotpGuard = defaultTotpGuard;

/**
 * Makes {@link verifyTotpShared} use `guard` when its caller passes none (set once at start by
 * `openCredentials`: Redis when configured, else the control store). Null restores the in-memory guard.
 */
export function useSharedTotpGuard(guard: SharedTotpGuard | null): void {
  sharedGuard = guard ?? defaultTotpGuard;
}

export type TotpResult =
  | { ok: true; timeStep: number }
  | { ok: false; reason: 'missing' | 'malformed' | 'wrong' | 'replayed' };

/**
 * Checks `code` against `secret` at `now` (ms), ±1 step. Never throws; a failure is a value.
 * `subject` names whose replay state to use (the key id); default: a hash of the secret.
 * The replay guard is this process's only: use {@link verifyTotpShared} when instances share a store.
 */
export function verifyTotp(
  secret: string,
  code: string | null | undefined,
  now: number,
  opts: { guard?: TotpReplayGuard; subject?: string } = {},
): TotpResult {
  const r = checkCode(secret, code, now);
  if (!r.ok) return r;
  const guard = opts.guard ?? defaultTotpGuard;
  const subject = opts.subject ?? secretSubject(secret);
  const last = guard.lastStep(subject);
  if (last !== undefined && r.timeStep <= last) return { ok: false, reason: 'replayed' };
  guard.record(subject, r.timeStep);
  return r;
}

/**
 * {@link verifyTotp} with a replay guard shared by every instance (default: the one set by
 * {@link useSharedTotpGuard}), so a code accepted by one instance is refused by all. A guard that
 * fails (store unreachable) rejects: the caller refuses the step-up rather than risk a replay.
 */
export async function verifyTotpShared(
  secret: string,
  code: string | null | undefined,
  now: number,
  opts: { guard?: SharedTotpGuard; subject?: string } = {},
): Promise<TotpResult> {
  const r = checkCode(secret, code, now);
  if (!r.ok) return r;
  const guard = opts.guard ?? sharedGuard;
  const subject = opts.subject ?? secretSubject(secret);
  if (!(await guard.claimStep(subject, r.timeStep, TOTP_GUARD_TTL_MS, now)))
    return { ok: false, reason: 'replayed' };
  return r;
}

function secretSubject(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

function checkCode(secret: string, code: string | null | undefined, now: number): TotpResult {
  if (code === null || code === undefined || code === '') return { ok: false, reason: 'missing' };
  if (!/^\d{6}$/.test(code)) return { ok: false, reason: 'malformed' };
  let result: ReturnType<typeof verifySync>;
  try {
    result = verifySync({ secret, token: code, epoch: Math.floor(now / 1000), epochTolerance: PERIOD_S });
  } catch {
    return { ok: false, reason: 'wrong' };
  }
  if (!result.valid || !('timeStep' in result)) return { ok: false, reason: 'wrong' };
  return { ok: true, timeStep: result.timeStep };
}
