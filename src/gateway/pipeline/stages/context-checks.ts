/**
 * Stage `context-checks`: the facts every later decision reads — client address and country,
 * end user, the request's cost estimate — and the checks of the calling context that do not depend
 * on what is asked: key status is settled by `authenticate`; IP, geo and reputation rules are part
 * of the compiled access policy evaluated by `authorize`; quarantined capabilities plug in here
 * (`ctx.deps.stages` inserts a stage right after this one). Writes `ctx.country`, `ctx.estimate`,
 * `ctx.facts`.
 */
import type { FastifyRequest } from 'fastify';
import type { Refusal } from '../../../core/errors.js';
import type { RequestContext } from '../context.js';

export function contextChecks(ctx: RequestContext): Refusal | undefined {
  const body = ctx.body ?? {};
  // The key's observed outputs size the output reservation (core/limits/output-estimate.ts).
  const estimate = ctx.rt.limits.estimate(ctx.endpoint ?? 'chat', body, ctx.principal?.keyId);
  ctx.estimate = estimate;
  ctx.country = ctx.rt.access.country(ctx.ip);
  ctx.facts = {
    action: ctx.action,
    model: ctx.model,
    ip: ctx.ip,
    country: ctx.country,
    endUser: endUserOf(ctx.request, ctx.body),
    now: ctx.deps.clock.now(),
    endpoint: ctx.endpoint ?? undefined,
    tokenEstimate: estimate.inputTokens + estimate.outputTokens,
  };
  return undefined;
}

/** The end user a call is made for: `x-sluice-end-user`, the body's `user`, or Anthropic's `metadata.user_id`. */
export function endUserOf(request: FastifyRequest, body: Record<string, unknown> | null): string | null {
  const h = request.headers['x-sluice-end-user'];
  if (typeof h === 'string' && h.length > 0) return h.slice(0, 256);
  const u = body?.user;
  if (typeof u === 'string' && u.length > 0) return u.slice(0, 256);
  const meta = body?.metadata as { user_id?: unknown } | undefined;
  if (meta && typeof meta.user_id === 'string') return meta.user_id.slice(0, 256);
  return null;
}
