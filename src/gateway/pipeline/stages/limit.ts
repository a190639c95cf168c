/**
 * Stage `limit`: every applicable bucket reserved in one store operation. With an admission
 * controller the upstream's capacity and the tenant's fair share of it join that one reserve, and a
 * tier with a queue waits for its retry time instead of being refused (src/gateway/admission.ts).
 * Writes `ctx.buckets`, `ctx.costs`, `ctx.ownBuckets`, `ctx.reservation`, `ctx.states`,
 * `ctx.shadowLimits`, and the rate-limit headers of the answer.
 */
import { type Refusal, refuse } from '../../../core/errors.js';
import type { LimitStore } from '../../../core/ports.js';
import type { RequestContext } from '../context.js';
import type { GatewayDeps } from '../deps.js';
import { logIds } from '../log-ids.js';

type ReserveResult = Awaited<ReturnType<LimitStore['reserve']>>;

export function limit(ctx: RequestContext): Refusal | undefined | Promise<Refusal | undefined> {
  const { deps, rt } = ctx;
  const buckets = rt.limits.bucketsFor(ctx.principal!, ctx.facts!);
  ctx.buckets = buckets;
  ctx.costs = rt.limits.costsFor(buckets, ctx.model!, ctx.estimate!);
  ctx.ownBuckets = buckets.length;
  const admission = ctx.cache?.hit ? undefined : deps.admission; // a cache hit uses no upstream capacity
  // Not async itself: with nothing to reserve the stage ends here, without a promise to await.
  if (buckets.length === 0 && !admission) return undefined;
  return reserve(ctx, buckets, admission);
}

/** The reservation of `buckets` (through the admission controller, if any) and what it decided. */
async function reserve(
  ctx: RequestContext,
  buckets: RequestContext['buckets'],
  admission: GatewayDeps['admission'],
): Promise<Refusal | undefined> {
  const { deps, rt, reply } = ctx;
  const principal = ctx.principal!;
  const upstream = ctx.upstream!;
  const tier = rt.cfg.tiers[principal.tier];
  let result: ReserveResult | undefined;
  let waitedMs = 0;
  let gone: AbortController | undefined;
  let onGone: (() => void) | undefined;
  try {
    if (admission) {
      // Only a request that may wait needs to hear that its client left (no closure otherwise).
      if (tier?.queue !== undefined) {
        const ac = new AbortController();
        gone = ac;
        onGone = () => {
          if (!reply.raw.writableFinished) ac.abort();
        };
        reply.raw.on('close', onGone);
      }
      const estimate = ctx.estimate!;
      const adm = await admission.admit({
        buckets,
        costs: ctx.costs,
        requestId: ctx.id,
        tenantId: principal.tenantId,
        weight: tier?.weight ?? 1,
        maxWaitMs: tier?.queue?.maxWait,
        upstream: upstream.name,
        capacity: declaredCapacity(ctx),
        tokens: estimate.inputTokens + estimate.outputTokens,
        signal: gone?.signal,
      });
      waitedMs = adm.waitedMs;
      if (!adm.ok && adm.aborted) {
        // The client left while waiting for its turn: nothing was reserved, nobody to answer.
        return refuse('SLUICE_RATE_LIMITED', undefined, {
          decision: 'throttled',
          silent: { reason: 'client_closed', status: 499 },
          audit: { waitedMs },
        });
      }
      ctx.buckets = adm.buckets;
      ctx.costs = adm.costs;
      if (!adm.ok) result = adm.denial;
      else if (adm.reservation)
        result = {
          ok: true,
          reservation: adm.reservation,
          states: adm.states,
          shadowDenied: adm.shadowDenied ?? [],
        };
    } else result = await deps.limits.reserve({ buckets, costs: ctx.costs, requestId: ctx.id });
  } catch (err) {
    deps.logger.error({ err: (err as Error).message, ...logIds(ctx) }, 'limit store failed');
    return refuse('SLUICE_STORE_UNAVAILABLE', undefined, {
      decision: 'error',
      headers: { 'retry-after': '1' },
    });
  } finally {
    if (onGone) reply.raw.off('close', onGone);
  }
  if (!result) return undefined;
  const own = ctx.ownBuckets;
  const all = ctx.buckets;
  ctx.states = result.states;
  // Watchers see the caller's own limits; the upstream's capacity buckets are not theirs.
  if (own < all.length) deps.onLimitStates?.(principal, all.slice(0, own), result.states.slice(0, own));
  else deps.onLimitStates?.(principal, all, result.states);
  if (!result.ok) {
    const r = rt.limits.denialFor(result, all, ctx.costs, ctx.format, deps.clock.now());
    return {
      ...r,
      decision: 'throttled',
      audit: {
        limit: all[result.bucketIndex]?.id,
        retryAfterMs: Number.isFinite(result.retryAfterMs) ? result.retryAfterMs : null,
        ...(waitedMs > 0 ? { waitedMs } : {}),
      },
    };
  }
  ctx.reservation = result.reservation;
  ctx.shadowLimits = result.shadowDenied;
  // Capacity buckets show in the headers of the denial they cause, not on every answer.
  if (own < ctx.states.length) ctx.states = ctx.states.slice(0, own);
  reply.headers(rt.limits.headersFor(ctx.states, ctx.format, deps.clock.now()));
  if (ctx.shadowLimits.length > 0) {
    // Shadow limits never deny: their would-be refusals are logged here and audited with the request.
    deps.logger.info(
      { ...logIds(ctx), key: principal.keyId, limits: ctx.shadowLimits },
      'shadow limit would have refused',
    );
  }
  return undefined;
}

/** The upstream's declared capacity, when an admission controller is in use. */
export function declaredCapacity(ctx: RequestContext) {
  if (!ctx.deps.admission) return undefined;
  const name = ctx.upstream?.name;
  return ctx.rt.cfg.upstreams.find((u) => u.name === name)?.capacity;
}
