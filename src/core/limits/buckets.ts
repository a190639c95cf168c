/**
 * What every limit store does the same way with a bucket: its parameters in integer units, the
 * state it reports, and the per-bucket bookkeeping a reservation carries.
 */
import type { BucketState, LimitBucket, Reservation } from '../ports.js';
import { costUnits, fromUnits, limitUnits } from './units.js';

/** A bucket's limit, burst and window in integer units (see `units.ts`). */
export interface BucketUnits {
  limit: number;
  burst: number;
  windowMs: number;
}

export function bucketUnits(b: LimitBucket): BucketUnits {
  return {
    limit: Math.max(0, limitUnits(b.kind, b.limit)),
    burst: b.algorithm === 'gcra' ? Math.max(0, limitUnits(b.kind, b.burst)) : 0,
    windowMs: Math.max(1, Math.round(b.windowMs)),
  };
}

/** The reported state of a bucket, from its remaining amount in units. */
export function toBucketState(b: LimitBucket, remainingUnits: number, resetMs: number): BucketState {
  return {
    id: b.id,
    kind: b.kind,
    per: b.per,
    limit: b.limit,
    remaining: fromUnits(b.kind, Math.max(0, remainingUnits)),
    resetMs: Math.max(0, Math.ceil(resetMs)),
    windowMs: b.windowMs,
    shadow: b.shadow,
  };
}

/**
 * `Reservation.meta` of the memory and Redis stores: per bucket, -1 when the bucket was not charged
 * (a shadow limit that would have denied), the slot the cost was booked in for windows, 0 otherwise.
 */
export interface ReservationMarks {
  v: number[];
}

/**
 * Settle is applied at most once per reservation: the first settle consumes it, whether or not it
 * changes anything, and a settle that finds no record (a duplicate, or one later than this window)
 * changes nothing. Reservations whose actual cost may differ from the estimate leave an OPEN record
 * in their store (memory map, or a Redis key beside its buckets) that the settle deletes; request
 * counts leave none (see `src/stores/settle-records.ts`). Records live only while requests are in
 * flight; this window is the backstop for reservations never settled. Two hours: longer than any
 * request may last (the request timeout is at most one hour), so a legitimate settle is never refused.
 */
export const SETTLE_WINDOW_MS = 2 * 3_600_000;

export const NOT_CHARGED = -1;

/** The marks of a reservation, or undefined if it was not made by a store that writes them. */
export function marksOf(r: Reservation): number[] | undefined {
  const m = r.meta as Partial<ReservationMarks> | undefined;
  return m && Array.isArray(m.v) && m.v.length === r.buckets.length ? m.v : undefined;
}

/** Actual minus reserved, in units, for bucket i of a reservation. */
export function settleDelta(r: Reservation, actualCosts: readonly number[], i: number): number {
  const b = r.buckets[i]!;
  const actual = actualCosts[i];
  // A missing actual cost keeps the reservation as it is.
  if (actual === undefined || Number.isNaN(actual)) return 0;
  return costUnits(b.kind, actual) - costUnits(b.kind, r.costs[i] ?? 0);
}
