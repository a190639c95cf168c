/**
 * GCRA (generic cell rate algorithm) for rates with a burst, windows under one hour.
 *
 * A limit of N units per window W admits N + B units at once from a full allowance (B = burst) and
 * refills at N per W. The only state is the theoretical arrival time (TAT): the instant at which the
 * allowance would be full again. Admitting cost c moves TAT forward by c·W/N; the request fits while
 * TAT − now stays within (N + B)·W/N.
 *
 * To stay exact with any N and W, TAT is kept as a rational a + f/N milliseconds (a, f integers,
 * 0 ≤ f < N) and every comparison is made on "ahead" = (TAT − now)·N, an integer. The exact rule:
 *
 *   ahead(now)  = max(0, (TAT − now)·N)
 *   fits(c)     ⇔ c = 0  or  ahead + c·W ≤ (N + B)·W
 *   retryAfter  = ⌈(ahead + c·W − (N + B)·W) / N⌉ ms, or ∞ when c > N + B
 *   settle(Δ)   : ahead ← max(0, ahead + Δ·W)   (Δ > 0 is debt later requests wait out, Δ < 0 a refund)
 *
 * This is the same decision as a token bucket of capacity N + B refilled at N per W (tokens =
 * N + B − ahead/W), which is what the property tests compare it against. Consequence (also tested):
 * for every admission at time t and every s ≤ t, the net cost charged in [s, t] is at most
 * N + B + (t − s)·N/W.
 *
 * Magnitudes: (N + B + c)·W must stay below 2^53 (e.g. 10^9 tokens per hour is fine).
 */
import { ceilDiv, floorDiv } from './units.js';

/** A rate in integer units: `limit` per `windowMs`, plus `burst` extra allowance. */
export interface RateParams {
  limit: number;
  burst: number;
  windowMs: number;
}

/** TAT = a + f/d ms. `d` is the limit the state was written with (a changed limit rescales f upwards). */
export interface GcraState {
  a: number;
  f: number;
  d: number;
}

/** How far TAT is ahead of `now`, in ms·limit (an integer). 0 means a full allowance. */
export function gcraAhead(s: GcraState | undefined, limit: number, now: number): number {
  if (!s) return 0;
  let a = s.a;
  let f = s.f;
  if (s.d !== limit) {
    const scaled = ceilDiv(f * limit, s.d);
    const carry = floorDiv(scaled, limit);
    a += carry;
    f = scaled - carry * limit;
  }
  if (a < now) return 0;
  return (a - now) * limit + f;
}

/** The state that has TAT `ahead / limit` ms after `now`; undefined when the allowance is full. */
export function gcraStateFor(ahead: number, limit: number, now: number): GcraState | undefined {
  if (ahead <= 0) return undefined;
  const q = floorDiv(ahead, limit);
  return { a: now + q, f: ahead - q * limit, d: limit };
}

/** Result of checking one cost: `ahead` is the value after admission (unchanged when denied). */
export interface GcraDecision {
  ok: boolean;
  ahead: number;
  /** 0 when ok; exact ms until the cost fits; Infinity when it never can. */
  retryAfterMs: number;
}

/** The exact GCRA rule (see the module comment). Pure: the caller stores `ahead` when ok. */
export function gcraCheck(p: RateParams, ahead: number, cost: number): GcraDecision {
  if (cost <= 0) return { ok: true, ahead, retryAfterMs: 0 };
  const cap = (p.limit + p.burst) * p.windowMs;
  const next = ahead + cost * p.windowMs;
  if (next <= cap) return { ok: true, ahead: next, retryAfterMs: 0 };
  const retryAfterMs = cost > p.limit + p.burst ? Number.POSITIVE_INFINITY : ceilDiv(next - cap, p.limit);
  return { ok: false, ahead, retryAfterMs };
}

/** Units that would be admitted right now (never negative). */
export function gcraRemaining(p: RateParams, ahead: number): number {
  return Math.max(0, floorDiv((p.limit + p.burst) * p.windowMs - ahead, p.windowMs));
}

/** Milliseconds until the allowance is full again. */
export function gcraResetMs(p: RateParams, ahead: number): number {
  return ahead <= 0 ? 0 : ceilDiv(ahead, p.limit);
}

/** Replaces a reserved cost by the actual one: `delta = actual − reserved` (refund when negative). */
export function gcraSettle(p: RateParams, ahead: number, delta: number): number {
  return Math.max(0, ahead + delta * p.windowMs);
}
