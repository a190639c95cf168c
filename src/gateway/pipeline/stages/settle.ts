/**
 * Stage `settle` (runs when the answer or stream has ended): replaces the reservation by what the
 * call actually used. An upstream failure (5xx) is refunded whole; a 4xx the caller caused still
 * counts as a request (tokens settle to what was produced), or invalid requests could be sent
 * without limit. The store call runs off the request's turn; `ctx.done` waits for it.
 */
import type { Reservation, Usage } from '../../../core/ports.js';
import type { RequestContext } from '../context.js';
import { logIds } from '../log-ids.js';

export function settle(ctx: RequestContext): undefined {
  if (!ctx.reservation) return undefined;
  const failed = (ctx.response?.status ?? 500) >= 500;
  const usage = ctx.usage ?? { inputTokens: 0, outputTokens: 0, images: 0 };
  ctx.pending.push(settleReservation(ctx, ctx.reservation, usage, failed));
  return undefined;
}

/** Settles and releases one reservation; a failed call is refunded whole. Never throws. */
export async function settleReservation(
  ctx: RequestContext,
  reservation: Reservation,
  usage: Usage,
  failed: boolean,
): Promise<void> {
  const { deps, rt } = ctx;
  const buckets = ctx.buckets;
  try {
    // A failed call costs nothing (the request itself included); a lease is released separately.
    const actual = failed
      ? buckets.map(() => 0)
      : rt.limits
          .costsFor(buckets, ctx.model!, usage)
          .map((c, i) => (buckets[i]!.kind === 'requests' ? reservation.costs[i]! : c));
    await deps.limits.settle(reservation, actual);
  } catch (err) {
    deps.logger.warn({ ...logIds(ctx), err: (err as Error).message }, 'settle failed');
  } finally {
    try {
      await deps.limits.release(reservation);
    } catch (err) {
      deps.logger.warn({ ...logIds(ctx), err: (err as Error).message }, 'release failed');
    }
  }
}
