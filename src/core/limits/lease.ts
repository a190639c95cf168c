/**
 * Concurrency as leases with a TTL. Each admitted request holds one lease, named by its request id,
 * until it is released or its TTL (the bucket's `windowMs`) passes, so an instance that crashes
 * mid-request cannot leak a slot for longer than the TTL. The rule:
 *
 *   fits ⇔ cost = 0  or  the request already holds a lease  or  live leases < cap
 *
 * A lease is one slot whatever the cost (the plan gives leases cost 1). When the cap is reached the
 * exact wait is unknowable (it depends on when another request ends), so retryAfter is the time until
 * the oldest lease would expire, capped at {@link LEASE_RETRY_MS}.
 */

/** 1 s: long enough not to hammer, short enough that a normal request has likely finished. */
export const LEASE_RETRY_MS = 1000;

/** Live leases: request id → expiry (ms since the epoch). */
export interface LeaseState {
  leases: Map<string, number>;
}

/** Removes expired leases (expired means expiry ≤ now). */
export function leasePrune(s: LeaseState, now: number): void {
  for (const [id, exp] of s.leases) if (exp <= now) s.leases.delete(id);
}

export interface LeaseDecision {
  ok: boolean;
  retryAfterMs: number;
}

/** The lease rule, on a pruned state. */
export function leaseCheck(
  s: LeaseState,
  cap: number,
  requestId: string,
  cost: number,
  now: number,
): LeaseDecision {
  if (cost <= 0 || s.leases.has(requestId) || s.leases.size < cap) return { ok: true, retryAfterMs: 0 };
  return { ok: false, retryAfterMs: Math.min(LEASE_RETRY_MS, leaseResetMs(s, cap, now)) };
}

export function leaseRemaining(s: LeaseState, cap: number): number {
  return Math.max(0, cap - s.leases.size);
}

/** 0 while a slot is free; otherwise ms until the oldest lease expires at the latest. */
export function leaseResetMs(s: LeaseState, cap: number, now: number): number {
  if (s.leases.size < cap) return 0;
  let first = Number.POSITIVE_INFINITY;
  for (const exp of s.leases.values()) if (exp < first) first = exp;
  return Math.max(1, first - now);
}
