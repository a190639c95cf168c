/**
 * Stage `routePins` (after `authorize`): confidential routing. A request matching `routing.pins` only
 * goes to a candidate of its route (`upstream`, then `fallbacks`) carrying the pinned labels, and
 * one whose circuit is not open; with none, it is refused (`SLUICE_NO_TRUSTED_UPSTREAM`), never sent
 * elsewhere. A route with fallbacks passes over open circuits for every request. Rewrites `ctx.route`
 * and `ctx.upstream`; writes `ctx.pinned` (forward.ts reports a pinned call that failed before
 * sending with the same code).
 */
import { isRefusal, type Refusal } from '../../../core/errors.js';
import { chooseUpstream } from '../../upstream-choice.js';
import type { RequestContext } from '../context.js';

export function routePins(ctx: RequestContext): Refusal | undefined {
  const principal = ctx.principal!;
  const c = chooseUpstream(
    ctx.rt.cfg,
    ctx.deps.upstreams,
    ctx.route!,
    { action: ctx.action, tier: principal.tier, tenant: principal.tenantId },
    ctx.endpoint,
  );
  if (c === undefined) return undefined;
  if (isRefusal(c)) return c;
  ctx.route = c.route;
  ctx.upstream = c.upstream;
  ctx.pinned = c.pinned;
  return undefined;
}
