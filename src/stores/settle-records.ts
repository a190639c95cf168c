/**
 * When a limit store keeps an open-reservation record (see SETTLE_WINDOW_MS), shared by the memory
 * and Redis stores so both keep the same, bounded, amount of settle state.
 *
 * - A reservation with a bucket whose actual cost usually differs from its estimate (tokens, money,
 *   images: any charged amount that is not `requests`) gets an OPEN record at reserve. Its settle is
 *   always sent, and removes the record whether or not it changes anything: records live only while
 *   requests are in flight.
 * - A reservation of request counts and leases only changes at settle when the call failed and is
 *   refunded whole. It gets NO record (requests-only traffic leaves nothing behind); a refund CLAIMS a
 *   record instead (set-if-absent), kept for {@link claimTtlMs}, so a duplicate refund is ignored.
 *
 * The FIRST settle of a reservation is the one applied, whether or not it changes anything (the
 * gateway settles each reservation once); a settle later than SETTLE_WINDOW_MS is ignored. Every
 * later settle of the same reservation object is ignored locally (`done`); a copy of a requests-only
 * reservation settled elsewhere is stopped by the claim only if the first settle was a refund.
 */
import { SETTLE_WINDOW_MS } from '../core/limits/buckets.js';
import type { LimitBucket, Reservation } from '../core/ports.js';

/** `Reservation.meta` of the memory and Redis stores (ReservationMarks plus settle bookkeeping). */
export interface StoreMeta {
  /** Per bucket: -1 not charged, the window slot, or 0 (see ReservationMarks). */
  v: number[];
  /** 1 when reserve left an open record; 0 when it did not. Absent (older reservations): 1. */
  r?: 0 | 1;
  /** Set once this reservation object has been settled. */
  done?: 1;
  /** When it was reserved (the store's time: local clock, or Redis TIME): claims expire with the settle window. */
  at?: number;
}

/** True when the bucket's actual cost may differ from its reserved cost other than by a whole refund. */
export function settlesByUsage(b: LimitBucket): boolean {
  return b.algorithm !== 'lease' && b.kind !== 'requests' && b.kind !== 'concurrent';
}

/** Whether reserve writes an open record for these buckets. */
export function needsOpenRecord(buckets: readonly LimitBucket[]): boolean {
  for (const b of buckets) if (settlesByUsage(b)) return true;
  return false;
}

/**
 * How long a refund claim is kept: the longest window of the reservation's buckets (past it a
 * request-count bucket has refilled by at least the refunded amount, so a late duplicate can add at
 * most one refund's worth), capped at the settle window.
 */
export function claimTtlMs(buckets: readonly LimitBucket[]): number {
  let w = 1000;
  for (const b of buckets) if (b.algorithm !== 'lease' && b.windowMs > w) w = b.windowMs;
  return Math.min(SETTLE_WINDOW_MS, Math.ceil(w));
}

/** The store meta of a reservation, if it has one. */
export function storeMeta(r: Reservation): StoreMeta | undefined {
  const m = r.meta as Partial<StoreMeta> | undefined;
  return m && Array.isArray(m.v) ? (m as StoreMeta) : undefined;
}

/** True when the reservation was made with an open record (or by an older store that always wrote one). */
export function hasOpenRecord(r: Reservation): boolean {
  return storeMeta(r)?.r !== 0;
}
